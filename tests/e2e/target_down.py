#!/usr/bin/env python3
"""A configured target whose port is closed: the client is told target_connect_failed with the
reason ("connection refused"); the gateway stays up and the live target still works."""

import re

import harness
from harness import assert_refused, check


def main():
    with harness.Env("target_down") as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        target = env.start_target([ca])
        closed = harness.free_port()  # nothing listens there
        gw = env.start_gateway([ca], targets=[target, ("db2", f"127.0.0.1:{closed}")])
        config = env.client_config(gw, key, cert, target=target)

        r = env.ssh(config, "db2", "echo no")
        assert_refused(r, "target_connect_failed", gw)
        check(re.search(r"connection refused", r.stderr, re.I),
              "expected the reason 'connection refused' in the client's stderr", r)

        r = env.ssh(config, "target", "echo still-fine")
        harness.assert_ok(r, "still-fine\n")


if __name__ == "__main__":
    harness.scenario(main)
