#!/usr/bin/env python3
"""A certificate restricted to source-address=10.9.9.0/24 used from 127.0.0.1 is refused with
cert_source_address; one restricted to 127.0.0.0/8 gets through."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_source_address") as env:
        w = env.world()
        elsewhere = env.sign(w.key, w.ca, options=["source-address=10.9.9.0/24"])
        r = env.ssh(env.client_config(w.gw, w.key, elsewhere, target=w.target,
                                      target_cert=w.cert), "target", "echo no")
        assert_refused(r, "cert_source_address", w.gw)

        here = env.sign(w.key, w.ca, options=["source-address=10.9.9.0/24,127.0.0.0/8"])
        r = env.ssh(env.client_config(w.gw, w.key, here, target=w.target), "target",
                    "echo from-loopback")
        harness.assert_ok(r, "from-loopback\n")


if __name__ == "__main__":
    harness.scenario(main)
