#!/usr/bin/env python3
"""SIGTERM while a session is open: the gateway stops accepting new connections, lets the open
session finish (its command completes and exits 0), then exits 0 itself."""

import select
import signal
import time

import harness
from harness import check


def read_line(stream, timeout):
    """One line from a pipe, or b'' after timeout."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def main():
    with harness.Env("sigterm_drain") as env:
        w = env.world(drain_timeout="20s")
        session = env.spawn(env.ssh_argv(w.config, "target",
                                         "echo started; read word; echo got-$word"))
        line = read_line(session.stdout, 15)
        check(line == b"started\n", f"the session did not start (read {line!r})")

        w.gw.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        # New connections are no longer served (allow the daemon a moment to see the signal).
        while True:
            started = time.monotonic()
            r = env.ssh(w.config, "target", "echo new-session", timeout=30)
            if r.returncode != 0:
                break
            check(started - signalled < 1.0,
                  "a connection made 1 s after SIGTERM was still served", r)
        check("new-session" not in r.stdout, "a new session ran after SIGTERM", r)

        # The open session carries on to its end.
        check(w.gw.alive(), "touchgated exited while a session was still open")
        session.stdin.write(b"drained\n")
        session.stdin.close()
        out = session.stdout.read()
        session.wait(timeout=15)
        err = session.stderr.read().decode(errors="replace")
        check(session.returncode == 0 and out == b"got-drained\n",
              f"the open session did not finish: exit status {session.returncode}, "
              f"stdout {out!r}, stderr {err!r}")

        try:
            status = w.gw.popen.wait(timeout=10)
        except Exception:
            raise AssertionError("touchgated did not exit within 10 s after its last session")
        check(status == 0, f"touchgated exited with status {status}, expected 0")


if __name__ == "__main__":
    harness.scenario(main)
