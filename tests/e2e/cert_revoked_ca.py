#!/usr/bin/env python3
"""Two CAs are trusted, the KRL revokes the second CA's key itself: its certificates are refused
with cert_ca_revoked; certificates of the first CA get through."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_revoked_ca") as env:
        ca = env.make_ca("sso")
        old = env.make_ca("sso-old")
        key = env.make_user_key("alice")
        krl = env.make_krl("revoked", keys=[old.pub])
        target = env.start_target([ca, old])
        gw = env.start_gateway([ca, old], targets=[target], revoked=krl)

        revoked = env.sign(key, old)
        r = env.ssh(env.client_config(gw, key, revoked, target=target), "target", "echo no")
        assert_refused(r, "cert_ca_revoked", gw)

        fine = env.sign(key, ca)
        r = env.ssh(env.client_config(gw, key, fine, target=target), "target", "echo good-ca")
        harness.assert_ok(r, "good-ca\n")


if __name__ == "__main__":
    harness.scenario(main)
