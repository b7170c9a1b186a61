#!/usr/bin/env python3
"""A target configured by DNS name (`localhost:PORT`) is resolved off the worker thread and
reached: `ssh -J gw db1` runs a command on it; the gateway then stops cleanly."""

import harness
from harness import assert_ok


def main():
    with harness.Env("dns_target") as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        target = env.start_target([ca])
        gw = env.start_gateway([ca], targets=[("db1", f"localhost:{target.port}")])
        config = env.client_config(gw, key, cert, target=target)
        r = env.ssh(config, "db1", "echo via-dns")
        assert_ok(r, "via-dns\n")
        gw.wait_for_log(r"event=channel_open .*target=db1 address=(127\.0\.0\.1|\[::1\]):")


if __name__ == "__main__":
    harness.scenario(main)
