#!/usr/bin/env python3
"""A touch that never comes: the gateway gives up after [mfa] touch_timeout with mfa_timeout,
and while it waits, other users' connections go through unaffected, on the same worker thread
(the gateway runs one worker, so a dialog that blocked its worker would hold them up)."""

import time

import harness
from harness import assert_ok, check


def main():
    with harness.Env("mfa_timeout") as env:
        # alice's world (the default touch agent); one worker serves every connection.
        w = env.world(mfa_extra='touch_timeout = "10s"', server_extra="workers = 1")
        w.gw.wait_for_log(r"event=ready .*workers=1\b")
        provider = harness.test_sk_path()
        ctl = env.path("sk", "control")
        with open(ctl, "w") as f:
            f.write("flags=1\ncounter=increment\ndelay_ms=40000\n")
        sk = env.make_sk_key("slow", "ecdsa-sk", provider=provider,
                             provider_env={"TG_TEST_SK_CONTROL": ctl})
        agent = env.start_sk_agent("slow-agent", sk, provider=provider, control=ctl)
        carol = env.make_user_key("carol")
        carol_cert = env.sign(carol, w.ca)
        env.enroll(w.gw, "carol", sk, "fido2")
        config = env.client_config(w.gw, carol, carol_cert, user="carol", target=w.target,
                                   target_key=w.key, target_cert=w.cert, forward_agent=agent,
                                   name="ssh_config-carol",
                                   # ConnectTimeout covers the target's banner, which waits for
                                   # the touch: it must be longer than the touch timeout.
                                   target_extra="  ConnectTimeout 60\n")
        start = time.monotonic()
        slow = env.spawn(env.ssh_argv(config, "target", "echo must-not-run"))
        w.gw.wait_for_log(r"event=mfa_sign_request .*user=carol", timeout=10)

        # Meanwhile alice gets through on the same gateway.
        assert_ok(env.ssh(w.config, "target", "echo alice"), "alice\n")
        check(slow.poll() is None, "carol's connection ended before her touch timeout")
        workers = {e.get("worker") for e in w.gw.events("connection_accepted")}
        check(workers == {"0"}, f"expected both connections on worker 0, saw {workers}")

        out, err = slow.communicate(timeout=30)
        elapsed = time.monotonic() - start
        err = err.decode(errors="replace")
        check(slow.returncode == 255 and "(mfa_timeout)" in err,
              f"expected mfa_timeout, got status {slow.returncode}: {err}")
        check(out == b"", "expected no output from the target")
        check(9.5 <= elapsed <= 30, f"the refusal came after {elapsed:.1f} s, not ~10 s")


if __name__ == "__main__":
    harness.scenario(main)
