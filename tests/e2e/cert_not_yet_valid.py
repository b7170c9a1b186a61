#!/usr/bin/env python3
"""A certificate valid only from an hour from now is refused with cert_not_yet_valid; one that
starts 20 s from now is within the 60 s clock_skew and gets through."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_not_yet_valid") as env:
        w = env.world(clock_skew="60s")
        future = env.sign(w.key, w.ca, validity="+1h:+2h")
        config = env.client_config(w.gw, w.key, future, target=w.target)
        r = env.ssh(config, "target", "echo should-not-run")
        assert_refused(r, "cert_not_yet_valid", w.gw)

        # Starts in 20 s: within clock_skew at the gateway. The target sshd has no skew
        # allowance, so it logs in with the always-valid certificate.
        soon = env.sign(w.key, w.ca, validity="+20s:+1h")
        config = env.client_config(w.gw, w.key, soon, target=w.target, target_cert=w.cert)
        r = env.ssh(config, "target", "echo within-skew")
        harness.assert_ok(r, "within-skew\n")


if __name__ == "__main__":
    harness.scenario(main)
