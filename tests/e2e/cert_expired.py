#!/usr/bin/env python3
"""A certificate whose validity ended an hour ago is refused with cert_expired; a valid one
still gets through afterwards."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_expired") as env:
        w = env.world()
        expired = env.sign(w.key, w.ca, validity="-2h:-1h")
        config = env.client_config(w.gw, w.key, expired, target=w.target)
        r = env.ssh(config, "target", "echo should-not-run")
        assert_refused(r, "cert_expired", w.gw)
        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
