#!/usr/bin/env python3
"""What sk-dummy cannot show, with our own test authenticator behind a real ssh-agent: a
signature without the touch flag is refused (touch_not_present); a key enrolled as PIN-required
is refused without the user-verification flag (touch_pin_missing) and accepted with it; a
corrupted signature is refused (touch_sig_invalid); an authenticator that fails makes the agent
refuse (mfa_agent_refused). Counters that increase are accepted."""

import harness
from harness import assert_ok, assert_refused


def control(path, **values):
    with open(path, "w") as f:
        for k, v in values.items():
            f.write(f"{k}={v}\n")


def main():
    with harness.Env("mfa_touch_flags") as env:
        w = env.world(touch_agent=False)
        provider = harness.test_sk_path()
        ctl = env.path("sk", "control")
        control(ctl, flags=1, counter="increment")
        sk = env.make_sk_key("alice-test", "ecdsa-sk", provider=provider,
                             provider_env={"TG_TEST_SK_CONTROL": ctl})
        agent = env.start_sk_agent("agent", sk, provider=provider, control=ctl)
        env.enroll(w.gw, "alice", sk, "fido2", label="test-key")
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=agent,
                                   name="ssh_config-sk")

        assert_ok(env.ssh(config, "target", "echo one"), "one\n")
        w.gw.wait_for_log(r"event=mfa_verified .*flags=0x01 counter=1\b")
        assert_ok(env.ssh(config, "target", "echo two"), "two\n")
        w.gw.wait_for_log(r"event=mfa_verified .*flags=0x01 counter=2\b")

        control(ctl, flags=0, counter="increment")
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "touch_not_present", w.gw)

        control(ctl, flags=1, counter="increment", corrupt=1)
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "touch_sig_invalid", w.gw)

        control(ctl, flags=1, counter="increment", fail=1)
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "mfa_agent_refused", w.gw)

        # A second key, enrolled as PIN-required.
        ctl2 = env.path("sk2", "control")
        control(ctl2, flags=1, counter="increment")
        sk2 = env.make_sk_key("alice-pin", "ed25519-sk", provider=provider,
                              provider_env={"TG_TEST_SK_CONTROL": ctl2})
        agent2 = env.start_sk_agent("agent2", sk2, provider=provider, control=ctl2)
        env.enroll(w.gw, "alice", sk2, "fido2", label="pin-key", pin_required=True)
        config2 = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=agent2,
                                    name="ssh_config-pin")
        r = env.ssh(config2, "target", "echo must-not-run")
        assert_refused(r, "touch_pin_missing", w.gw)
        control(ctl2, flags=5, counter="increment")
        assert_ok(env.ssh(config2, "target", "echo with-pin"), "with-pin\n")
        w.gw.wait_for_log(r"event=mfa_verified .*flags=0x05")


if __name__ == "__main__":
    harness.scenario(main)
