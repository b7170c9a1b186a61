#!/usr/bin/env python3
"""A plain key without certificate is refused: the client ends with its own
"Permission denied (publickey)"; nothing runs on the target; the gateway stays up. At the
client's default log level (INFO) the user also sees why, once however many plain keys were
offered: the gateway's banner naming auth_not_certificate, before "Permission denied"."""

import harness
from harness import assert_permission_denied, check

BANNER = ("touchgate: only OpenSSH user certificates from the SSO CA are accepted here; "
          "plain public keys and passwords are refused (auth_not_certificate)")


def main():
    with harness.Env("plain_key") as env:
        w = env.world()
        config = env.client_config(w.gw, w.key, None, target=w.target, target_cert=w.cert)
        r = env.ssh(config, "target", "echo no")
        assert_permission_denied(r, w.gw)
        w.gw.wait_for_log(r"event=auth_refused\b.*\bcode=auth_not_certificate\b")

        # The harness's LogLevel ERROR hides banners (OpenSSH prints them from INFO on, its
        # default): the user's view is that of `Host gw` at INFO. Two plain keys, one banner.
        other = env.make_user_key("other")
        config = env.client_config(w.gw, w.key, None, target=w.target, target_cert=w.cert,
                                   gw_extra=f"  IdentityFile {other.key}\n  LogLevel INFO\n")
        r = env.ssh(config, "target", "echo no")
        assert_permission_denied(r, w.gw)
        check(r.stderr.count(BANNER) == 1,
              "expected the gateway's auth_not_certificate banner once in the client's stderr", r)
        check(r.stderr.index(BANNER) < r.stderr.index("Permission denied (publickey)"),
              "expected the banner before 'Permission denied'", r)
        tries = [e for e in w.gw.events("auth_refused") if e.get("code") == "auth_not_certificate"]
        check(len(tries) == 3, f"expected 3 plain-key tries in the gateway's log, got {tries}")

        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
