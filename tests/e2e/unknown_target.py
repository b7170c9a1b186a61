#!/usr/bin/env python3
"""Jumping to anything that is not a configured [[target]] is refused with target_unknown: an
unknown name, and a live sshd's address that is not configured (the gateway is not an open
relay); the configured target still works."""

import harness
from harness import assert_refused


def main():
    with harness.Env("unknown_target") as env:
        w = env.world()
        other = env.start_target([w.ca], name="other")  # up, reachable, not configured

        r = env.ssh(w.config, "nosuch", "echo no")
        assert_refused(r, "target_unknown", w.gw)

        config = env.client_config(w.gw, w.key, w.cert, target=other)
        r = env.ssh(config, "target", "echo no")
        assert_refused(r, "target_unknown", w.gw)

        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
