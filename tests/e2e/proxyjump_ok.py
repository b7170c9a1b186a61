#!/usr/bin/env python3
"""A valid SSO certificate reaches the target through `ssh -J gw target`: the remote command runs
as the target login; a second connection works too; the target is also reachable by its configured
name; and the gateway's [::1] listener works when ::1 exists."""

import harness
from harness import assert_ok, check


def main():
    ipv6 = harness.ipv6_loopback_available()
    with harness.Env("proxyjump_ok") as env:
        w = env.world(ipv6=ipv6)

        r = env.ssh(w.config, "target", "echo hello-from-target")
        assert_ok(r, "hello-from-target\n")
        r = env.ssh(w.config, "target", "id -un")
        assert_ok(r, f"{env.login}\n")

        # By [[target]] name: the client asks the gateway for "db1:22".
        r = env.ssh(w.config, "db1", "echo by-name")
        assert_ok(r, "by-name\n")

        # Exit status and stderr of the remote command come back unchanged (end-to-end SSH).
        r = env.ssh(w.config, "target", "echo out; echo err >&2; exit 7")
        check(r.returncode == 7 and r.stdout == "out\n" and "err" in r.stderr,
              "expected the remote exit status 7, stdout and stderr", r)

        if ipv6:
            r = env.ssh(w.config, "target", "echo via-ipv6", jump="gw6")
            assert_ok(r, "via-ipv6\n")
        else:
            print("::1 not available: IPv6 listener not tested")

        check(w.gw.alive(), "touchgated is no longer running")


if __name__ == "__main__":
    harness.scenario(main)
