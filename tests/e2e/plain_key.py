#!/usr/bin/env python3
"""A plain key without certificate is refused: the client ends with its own
"Permission denied (publickey)"; nothing runs on the target; the gateway stays up."""

import harness
from harness import assert_permission_denied


def main():
    with harness.Env("plain_key") as env:
        w = env.world()
        config = env.client_config(w.gw, w.key, None, target=w.target, target_cert=w.cert)
        r = env.ssh(config, "target", "echo no")
        assert_permission_denied(r, w.gw)
        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
