#!/usr/bin/env python3
"""Logging in to the gateway as alice with a certificate issued to bob is refused with
cert_principal_mismatch; bob's certificate works when logging in as bob."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_wrong_principal") as env:
        w = env.world()
        bob = env.sign(w.key, w.ca, principals=["bob", env.login])
        r = env.ssh(env.client_config(w.gw, w.key, bob, user="alice", target=w.target),
                    "target", "echo no")
        assert_refused(r, "cert_principal_mismatch", w.gw)

        r = env.ssh(env.client_config(w.gw, w.key, bob, user="bob", target=w.target),
                    "target", "echo as-bob")
        harness.assert_ok(r, "as-bob\n")


if __name__ == "__main__":
    harness.scenario(main)
