#!/usr/bin/env python3
"""With max_cert_lifetime = "12h", a currently valid 24 h certificate is refused with
cert_lifetime_exceeded; an 11 h one gets through."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_lifetime_exceeded") as env:
        w = env.world(max_cert_lifetime="12h")
        long_lived = env.sign(w.key, w.ca, validity="-1m:+24h")
        r = env.ssh(env.client_config(w.gw, w.key, long_lived, target=w.target), "target",
                    "echo no")
        assert_refused(r, "cert_lifetime_exceeded", w.gw)

        short = env.sign(w.key, w.ca, validity="-1m:+11h")
        r = env.ssh(env.client_config(w.gw, w.key, short, target=w.target), "target",
                    "echo eleven-hours")
        harness.assert_ok(r, "eleven-hours\n")


if __name__ == "__main__":
    harness.scenario(main)
