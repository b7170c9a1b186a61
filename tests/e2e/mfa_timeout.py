#!/usr/bin/env python3
"""A touch that never comes: the gateway gives up after [mfa] touch_timeout with mfa_timeout,
and while it waits, other users' connections go through unaffected."""

import time

import harness
from harness import assert_ok, check


def main():
    with harness.Env("mfa_timeout") as env:
        w = env.world(mfa_extra='touch_timeout = "4s"')  # bob's world: the default touch agent
        provider = harness.test_sk_path()
        ctl = env.path("sk", "control")
        with open(ctl, "w") as f:
            f.write("flags=1\ncounter=increment\ndelay_ms=30000\n")
        sk = env.make_sk_key("slow", "ecdsa-sk", provider=provider,
                             provider_env={"TG_TEST_SK_CONTROL": ctl})
        agent = env.start_sk_agent("slow-agent", sk, provider=provider, control=ctl)
        carol = env.make_user_key("carol")
        carol_cert = env.sign(carol, w.ca)
        env.enroll(w.gw, "carol", sk, "fido2")
        config = env.client_config(w.gw, carol, carol_cert, user="carol", target=w.target,
                                   target_key=w.key, target_cert=w.cert, forward_agent=agent,
                                   name="ssh_config-carol")
        start = time.monotonic()
        slow = env.spawn(env.ssh_argv(config, "target", "echo must-not-run"))
        w.gw.wait_for_log(r"event=mfa_sign_request .*user=carol", timeout=10)

        # Meanwhile alice gets through, twice, on the same gateway.
        for i in range(2):
            assert_ok(env.ssh(w.config, "target", f"echo alice-{i}"), f"alice-{i}\n")
        check(slow.poll() is None, "carol's connection ended before her touch timeout")

        out, err = slow.communicate(timeout=30)
        elapsed = time.monotonic() - start
        err = err.decode(errors="replace")
        check(slow.returncode == 255 and "(mfa_timeout)" in err,
              f"expected mfa_timeout, got status {slow.returncode}: {err}")
        check(out == b"", "expected no output from the target")
        check(3.5 <= elapsed <= 20, f"the refusal came after {elapsed:.1f} s, not ~4 s")


if __name__ == "__main__":
    harness.scenario(main)
