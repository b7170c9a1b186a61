#!/usr/bin/env python3
"""A certificate whose key id is revoked in the KRL (ssh-keygen -k, "id:") is refused with
cert_revoked; a certificate with another key id gets through."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_revoked_key_id") as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        krl = env.make_krl("revoked", ca=ca, key_ids=["alice-laptop-stolen"])
        target = env.start_target([ca])
        gw = env.start_gateway([ca], targets=[target], revoked=krl)

        revoked = env.sign(key, ca, key_id="alice-laptop-stolen", serial=7)
        r = env.ssh(env.client_config(gw, key, revoked, target=target), "target", "echo no")
        assert_refused(r, "cert_revoked", gw)

        fine = env.sign(key, ca, key_id="alice-laptop-new", serial=7)
        r = env.ssh(env.client_config(gw, key, fine, target=target), "target", "echo new-id")
        harness.assert_ok(r, "new-id\n")


if __name__ == "__main__":
    harness.scenario(main)
