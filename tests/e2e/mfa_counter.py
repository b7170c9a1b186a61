#!/usr/bin/env python3
"""Clone detection by the signature counter, with our test authenticator behind a real
ssh-agent: increasing counters pass; a repeated or lower counter is refused and suspends the
key (suspected clone: a loud log line, a suspected_clone audit record with both counters
followed by mfa_refused, visible in `touchgate keys list`); after `keys clear-clone`
a key that never counts (counter 0) is accepted repeatedly until it reports a real counter."""

import re

import harness
from harness import assert_ok, assert_refused, check, write_sk_control


def main():
    with harness.Env("mfa_counter") as env:
        w = env.world(touch_agent=False)
        ctl, config = env.test_sk_setup(w, "sk", "ed25519-sk", flags=1,
                                        counter="sequence:10,20,15")
        fp = env.keys_json(w.gw, "alice")[0]["fingerprint"]

        assert_ok(env.ssh(config, "target", "echo ten"), "ten\n")
        assert_ok(env.ssh(config, "target", "echo twenty"), "twenty\n")
        r = env.ssh(config, "target", "echo must-not-run")  # 15 after 20: went back
        assert_refused(r, "mfa_counter_regression", w.gw)
        check("15 after 20" in r.stderr, "expected both counters in the message", r)
        w.gw.wait_for_log(rf"level=error event=suspected_clone .*key_fp={re.escape(fp)}")
        clone = w.gw.wait_for_audit("suspected_clone", key_fp=fp)
        check(clone.get("outcome") == "deny" and clone.get("reason") == "mfa_counter_regression"
              and clone.get("counter") == 15 and clone.get("last_counter") == 20,
              f"suspected_clone audit record: {clone}")
        story = [r["event"] for r in w.gw.audit_records(conn=clone["conn"])]
        i = story.index("suspected_clone")
        check(story[i + 1:i + 2] == ["mfa_refused"], f"expected mfa_refused to follow: {story}")
        refused = w.gw.audit_records("mfa_refused", conn=clone["conn"])[0]
        check(refused.get("reason") == "mfa_counter_regression", f"mfa_refused: {refused}")
        key = env.keys_json(w.gw, "alice")[0]
        check(key["status"] == "suspected-clone", f"expected suspected-clone: {key}")

        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "mfa_key_suspended", w.gw)

        check(env.touchgate(w.gw, "keys", "clear-clone", fp).returncode == 0, "clear-clone")
        write_sk_control(ctl, flags=1, counter="fixed:0")
        assert_ok(env.ssh(config, "target", "echo zero-1"), "zero-1\n")
        assert_ok(env.ssh(config, "target", "echo zero-2"), "zero-2\n")
        write_sk_control(ctl, flags=1, counter="fixed:7")
        assert_ok(env.ssh(config, "target", "echo seven"), "seven\n")
        r = env.ssh(config, "target", "echo must-not-run")  # 7 again: repeated
        assert_refused(r, "mfa_counter_regression", w.gw)


if __name__ == "__main__":
    harness.scenario(main)
