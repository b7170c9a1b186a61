#!/usr/bin/env python3
"""What sk-dummy cannot show, with our own test authenticator behind a real ssh-agent: a
signature without the touch flag is refused (touch_not_present); a key enrolled as PIN-required
is refused without the user-verification flag (touch_pin_missing) and accepted with it; a
corrupted signature is refused (touch_sig_invalid); an authenticator that fails makes the agent
refuse (mfa_agent_refused); a certificate with the verify-required option demands the PIN of any
FIDO2 key, and so does a gateway with [mfa] require_pin = true. Counters that increase are
accepted. Every refusal leaves an mfa_refused audit record with its reason code."""

import harness
from harness import assert_ok, assert_refused, check, write_sk_control


def main():
    with harness.Env("mfa_touch_flags") as env:
        w = env.world(touch_agent=False)
        ctl, config = env.test_sk_setup(w, "sk", "ecdsa-sk", flags=1, counter="increment")
        key = env.keys_json(w.gw, "alice")[0]
        fp = key["fingerprint"]

        assert_ok(env.ssh(config, "target", "echo one"), "one\n")
        w.gw.wait_for_log(r"event=mfa_verified .*flags=0x01 counter=1\b")
        assert_ok(env.ssh(config, "target", "echo two"), "two\n")
        w.gw.wait_for_log(r"event=mfa_verified .*flags=0x01 counter=2\b")

        write_sk_control(ctl, flags=0, counter="increment")
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "touch_not_present", w.gw)

        write_sk_control(ctl, flags=1, counter="increment", corrupt=1)
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "touch_sig_invalid", w.gw)

        write_sk_control(ctl, flags=1, counter="increment", fail=1)
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "mfa_agent_refused", w.gw)
        check(f"{fp} (fido2) refused" in r.stderr, "expected the refused key in the message", r)

        # The SSO says verify-required: the same key (not enrolled as PIN-required) now needs UV.
        write_sk_control(ctl, flags=1, counter="increment")
        strict = env.sign(w.key, w.ca, options=("verify-required",))
        with open(config) as f:
            text = f.read()
        strict_config = env.path("ssh_config-verify-required")
        with open(strict_config, "w") as f:
            f.write(text.replace(w.cert.path, strict.path, 1))
        r = env.ssh(strict_config, "target", "echo must-not-run")
        assert_refused(r, "touch_pin_missing", w.gw)
        check("verify-required" in r.stderr, "expected the reason: the certificate's option", r)
        write_sk_control(ctl, flags=5, counter="increment")
        assert_ok(env.ssh(strict_config, "target", "echo verified"), "verified\n")

        # The refusals above, as the audit log has them.
        for code, words in (("touch_not_present", "without a touch"),
                            ("touch_sig_invalid", "does not verify"),
                            ("mfa_agent_refused", "refused to sign"),
                            ("touch_pin_missing", "verify-required")):
            rec = w.gw.wait_for_audit("mfa_refused", reason=code)
            check(rec.get("outcome") == "deny" and rec.get("key_fp") == fp
                  and words in rec.get("message", ""), f"audit record of {code}: {rec}")

        # A second key, enrolled as PIN-required.
        ctl2, config2 = env.test_sk_setup(w, "pin", "ed25519-sk", pin_required=True, flags=1,
                                          counter="increment")
        r = env.ssh(config2, "target", "echo must-not-run")
        assert_refused(r, "touch_pin_missing", w.gw)
        write_sk_control(ctl2, flags=5, counter="increment")
        assert_ok(env.ssh(config2, "target", "echo with-pin"), "with-pin\n")
        w.gw.wait_for_log(r"event=mfa_verified .*flags=0x05")

        # A gateway with [mfa] require_pin = true: the first key (not PIN-required) needs UV.
        gw = env.start_gateway([w.ca], targets=[w.target], name="gw-pin",
                               mfa_extra="require_pin = true")
        pub = env.path("gw-pin", "sk.pub")
        with open(pub, "w") as f:
            f.write(key["public_key"] + "\n")
        env.enroll(gw, "alice", pub, "fido2", label="sk")
        pin_config = env.client_config(gw, w.key, w.cert, target=w.target,
                                       forward_agent=env.path("agent-sk", "agent.sock"),
                                       name="ssh_config-require-pin")
        write_sk_control(ctl, flags=1, counter="increment")
        r = env.ssh(pin_config, "target", "echo must-not-run")
        assert_refused(r, "touch_pin_missing", gw)
        check("the gateway requires a PIN" in r.stderr, "expected the reason: require_pin", r)
        gw.wait_for_audit("mfa_refused", reason="touch_pin_missing", key_fp=fp)
        write_sk_control(ctl, flags=5, counter="increment")
        assert_ok(env.ssh(pin_config, "target", "echo pin-required"), "pin-required\n")
        rec = gw.wait_for_audit("mfa_verified", key_fp=fp)
        check(rec.get("uv") is True and rec.get("up") is True, f"expected up and uv: {rec}")


if __name__ == "__main__":
    harness.scenario(main)
