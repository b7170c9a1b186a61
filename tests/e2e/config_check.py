#!/usr/bin/env python3
"""`touchgated -t -f FILE` checks a config and exits: 0 for a good file (without listening), 1
with "FILE:LINE:..." naming the offending line for: an unknown key, a bad listen address, a
missing CA file; 1 also for a file that does not exist."""

import os
import socket

import harness
from harness import check

GOOD = """\
[server]
listen = ["127.0.0.1:{port}"]
host_keys = ["hostkey"]
state_dir = "state"
login_grace_time = "30s"

[trust]
user_ca_keys = ["ca.pub"]
max_cert_lifetime = "12h"
clock_skew = "60s"

[[target]]
name = "db1"
address = "127.0.0.1:22"
tags = ["prod"]
"""


def main():
    with harness.Env("config_check") as env:
        ca = env.make_ca("sso")
        os.rename(ca.pub, env.path("ca.pub"))
        binary = harness.touchgated_path()
        port = harness.free_port()
        good = GOOD.format(port=port)

        def check_config(name, text):
            with open(env.path(name), "w") as f:
                f.write(text)
            return env.run([binary, "-t", "-f", name], cwd=env.dir, timeout=10)

        r = check_config("good.toml", good)
        check(r.returncode == 0, "expected exit status 0 for a good config", r)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            check(False, "touchgated -t must not listen", r)
        except ConnectionRefusedError:
            pass

        bad = {
            # file name: (text, line number of the offending key)
            "unknown-key.toml": (good.replace('login_grace_time = "30s"',
                                              'login_grace_time = "30s"\nlisten_backlog = 5'), 6),
            "bad-listen.toml": (good.replace(f'"127.0.0.1:{port}"', '"127.0.0.1:99999"'), 2),
            "bad-listen-host.toml": (good.replace(f'"127.0.0.1:{port}"', '"not an address"'), 2),
            "missing-ca.toml": (good.replace('"ca.pub"', '"no-such-ca.pub"'), 8),
        }
        for name, (text, line) in bad.items():
            r = check_config(name, text)
            output = r.stdout + r.stderr
            check(r.returncode == 1, f"{name}: expected exit status 1", r)
            check(f"{name}:{line}:" in output,
                  f"{name}: expected the message to start with '{name}:{line}:'", r)

        r = env.run([binary, "-t", "-f", "does-not-exist.toml"], cwd=env.dir, timeout=10)
        check(r.returncode == 1, "a missing config file: expected exit status 1", r)
        check("does-not-exist.toml" in r.stdout + r.stderr,
              "a missing config file: expected its name in the message", r)


if __name__ == "__main__":
    harness.scenario(main)
