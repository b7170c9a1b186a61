#!/usr/bin/env python3
"""A misbehaving forwarded agent (a fault-injecting proxy in front of a real ssh-agent): a
malformed answer (mfa_agent_malformed), a refusal to sign (mfa_agent_refused), an empty key
list (mfa_no_enrolled_key), a corrupted signature (touch_sig_invalid) and no answer at all to
the key listing (mfa_agent_timeout, after [mfa] touch_timeout) are each refused with their own
reason, never reaching the target, and the gateway keeps serving; junk key blobs before the
enrolled key are skipped."""

import re
import time

import harness
from harness import assert_ok, assert_refused, check

TOUCH_TIMEOUT = 3


def main():
    with harness.Env("mfa_agent_faults") as env:
        w = env.world(mfa_extra=f'touch_timeout = "{TOUCH_TIMEOUT}s"')
        cases = [("garbage", "mfa_agent_malformed"), ("refuse-sign", "mfa_agent_refused"),
                 ("no-identities", "mfa_no_enrolled_key"), ("corrupt-sign", "touch_sig_invalid"),
                 ("hang-identities", "mfa_agent_timeout")]
        for mode, code in cases:
            sock = env.start_agent_proxy(w.touch, mode)
            config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=sock,
                                       name=f"ssh_config-{mode}")
            start = time.monotonic()
            r = env.ssh(config, "target", "echo must-not-run")
            elapsed = time.monotonic() - start
            assert_refused(r, code, w.gw)
            if mode == "hang-identities":
                check(f"did not answer within {TOUCH_TIMEOUT} s" in r.stderr,
                      "expected the agent timeout in the message", r)
                check(elapsed >= TOUCH_TIMEOUT - 0.5,
                      f"refused after {elapsed:.1f} s, before the touch timeout")
        check(not re.search(r"event=channel_open\b", w.gw.log_text()),
              "the gateway connected to the target without a verified touch")

        sock = env.start_agent_proxy(w.touch, "extra-identities")
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=sock,
                                   name="ssh_config-extra")
        assert_ok(env.ssh(config, "target", "echo skipped-junk"), "skipped-junk\n")


if __name__ == "__main__":
    harness.scenario(main)
