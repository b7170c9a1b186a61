#!/usr/bin/env python3
"""Clone detection by the signature counter, with our test authenticator behind a real
ssh-agent: increasing counters pass; a repeated or lower counter is refused and suspends the
key (suspected clone, loud log line, visible in `touchgate keys list`); after `keys clear-clone`
a key that never counts (counter 0) is accepted repeatedly until it reports a real counter."""

import re

import harness
from harness import assert_ok, assert_refused, check


def control(path, **values):
    with open(path, "w") as f:
        for k, v in values.items():
            f.write(f"{k}={v}\n")


def main():
    with harness.Env("mfa_counter") as env:
        w = env.world(touch_agent=False)
        provider = harness.test_sk_path()
        ctl = env.path("sk", "control")
        control(ctl, flags=1, counter="sequence:10,20,15")
        sk = env.make_sk_key("alice-ctr", "ed25519-sk", provider=provider,
                             provider_env={"TG_TEST_SK_CONTROL": ctl})
        agent = env.start_sk_agent("agent", sk, provider=provider, control=ctl)
        env.enroll(w.gw, "alice", sk, "fido2")
        fp = env.keys_json(w.gw, "alice")[0]["fingerprint"]
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=agent,
                                   name="ssh_config-sk")

        assert_ok(env.ssh(config, "target", "echo ten"), "ten\n")
        assert_ok(env.ssh(config, "target", "echo twenty"), "twenty\n")
        r = env.ssh(config, "target", "echo must-not-run")  # 15 after 20: went back
        assert_refused(r, "mfa_counter_regression", w.gw)
        check("15 after 20" in r.stderr, "expected both counters in the message", r)
        w.gw.wait_for_log(rf"level=error event=suspected_clone .*key_fp={re.escape(fp)}")
        key = env.keys_json(w.gw, "alice")[0]
        check(key["status"] == "suspected-clone", f"expected suspected-clone: {key}")

        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "mfa_key_suspended", w.gw)

        check(env.touchgate(w.gw, "keys", "clear-clone", fp).returncode == 0, "clear-clone")
        control(ctl, flags=1, counter="fixed:0")
        assert_ok(env.ssh(config, "target", "echo zero-1"), "zero-1\n")
        assert_ok(env.ssh(config, "target", "echo zero-2"), "zero-2\n")
        control(ctl, flags=1, counter="fixed:7")
        assert_ok(env.ssh(config, "target", "echo seven"), "seven\n")
        r = env.ssh(config, "target", "echo must-not-run")  # 7 again: repeated
        assert_refused(r, "mfa_counter_regression", w.gw)


if __name__ == "__main__":
    harness.scenario(main)
