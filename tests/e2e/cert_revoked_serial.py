#!/usr/bin/env python3
"""A certificate whose serial is revoked in the KRL (ssh-keygen -k, "serial:") is refused with
cert_revoked; another serial from the same CA for the same key gets through."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_revoked_serial") as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        krl = env.make_krl("revoked", ca=ca, serials=[42])
        target = env.start_target([ca])
        gw = env.start_gateway([ca], targets=[target], revoked=krl)

        revoked = env.sign(key, ca, serial=42)
        r = env.ssh(env.client_config(gw, key, revoked, target=target), "target", "echo no")
        assert_refused(r, "cert_revoked", gw)

        fine = env.sign(key, ca, serial=43)
        r = env.ssh(env.client_config(gw, key, fine, target=target), "target", "echo serial-43")
        harness.assert_ok(r, "serial-43\n")


if __name__ == "__main__":
    harness.scenario(main)
