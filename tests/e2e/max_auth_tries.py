#!/usr/bin/env python3
"""[server] max_auth_tries = 3: a client offering two plain keys gets the ordinary
"Permission denied (publickey)" and no disconnect; a client offering four is cut after the third
with auth_too_many_tries, each of the three tries logged and audited as auth_not_certificate, the
fourth key never asked about and the target never contacted. The next client with a valid
certificate gets through."""

import re

import harness
from harness import assert_permission_denied, assert_refused, check


def offering(env, w, keys, name):
    """An ssh_config whose `Host gw` offers exactly `keys` (plain keys, in this order)."""
    extra = "".join(f"  IdentityFile {k.key}\n" for k in keys[1:])
    return env.client_config(w.gw, keys[0], None, target=w.target, target_cert=w.cert,
                             gw_extra=extra, name=name)


def refused_tries(gw, conn):
    return [e for e in gw.events("auth_refused") if e.get("conn") == conn]


def main():
    with harness.Env("max_auth_tries") as env:
        w = env.world(server_extra="max_auth_tries = 3")
        plain = [env.make_user_key(f"plain{i}") for i in range(4)]

        # Below the limit: the client runs out of keys first and says so itself.
        r = env.ssh(offering(env, w, plain[:2], "ssh_config-two"), "target", "echo no")
        assert_permission_denied(r, w.gw)
        check("auth_too_many_tries" not in r.stderr,
              "two tries with max_auth_tries = 3 must not be cut", r)

        # Above it: cut after the third try, with the reason.
        r = env.ssh(offering(env, w, plain, "ssh_config-four"), "target", "echo no")
        assert_refused(r, "auth_too_many_tries", w.gw)
        check(re.search(r"touchgate: too many authentication failures \(3\) "
                        r"\(auth_too_many_tries\)", r.stderr),
              "expected the count of failures in the client's reason", r)
        cut = harness.wait_until(
            lambda: [e for e in w.gw.events("disconnect")
                     if e.get("code") == "auth_too_many_tries"],
            5, "event=disconnect code=auth_too_many_tries in the gateway's log")
        conn = cut[0]["conn"]
        tries = refused_tries(w.gw, conn)
        check(len(tries) == 3 and all(t.get("code") == "auth_not_certificate" for t in tries),
              f"expected 3 auth_refused (auth_not_certificate) on connection {conn}, got {tries}")
        check(not any(e.get("conn") == conn for e in w.gw.events("channel_open")),
              "the target was contacted by a connection that never authenticated")
        def audited():
            return [r for r in w.gw.audit_records("auth_refused")
                    if r.get("conn", "").endswith(f"-{conn}")]
        harness.wait_until(lambda: len(audited()) >= 3, 10, "3 audited auth_refused records")
        records = audited()
        check(len(records) == 3 and all(r["reason"] == "auth_not_certificate" for r in records),
              f"expected 3 audited auth_refused on connection {conn}, got {records}")

        # The gateway keeps serving.
        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
