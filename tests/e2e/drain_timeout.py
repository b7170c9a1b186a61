#!/usr/bin/env python3
"""SIGTERM with a session that does not finish (`ssh -J gw target sleep 600`) and drain_timeout
= 6s: the gateway stops listening at once and closes a connection that has not authenticated at
once, keeps the session until the drain deadline, then disconnects it with shutting_down (the
client prints the reason and exits 255), records it, and exits 0."""

import datetime
import select
import signal
import socket
import threading
import time

import harness
from harness import check

DRAIN = 6.0


def read_line(stream, timeout):
    """One line from a pipe, or b'' after timeout."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def log_time(event):
    """The time of a gateway log line (its ts= field), in seconds."""
    return datetime.datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def main():
    with harness.Env("drain_timeout") as env:
        w = env.world(drain_timeout=f"{DRAIN:.0f}s")
        session = env.spawn(env.ssh_argv(w.config, "target", "echo started; exec sleep 600"))
        line = read_line(session.stdout, 20)
        check(line == b"started\n", f"the session did not start (read {line!r})")
        # A connection still authenticating (a TCP client that sends nothing).
        silent = socket.create_connection(("127.0.0.1", w.gw.port), timeout=5)
        harness.wait_until(lambda: len(w.gw.events("connection_accepted")) == 2, 10,
                           "the gateway to take the silent connection")
        ended = []
        waiter = threading.Thread(target=lambda: ended.append((session.wait(),
                                                               time.monotonic())), daemon=True)
        waiter.start()

        w.gw.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        w.gw.wait_for_log(r"event=shutdown_requested\b.*drain_timeout_s=6\b")

        # No new connections: the listener is closed, not merely ignored.
        harness.wait_until(lambda: refused(w.gw.port), 3, "connections to be refused")
        check(time.monotonic() - signalled < DRAIN / 2,
              "the gateway kept its listener open after SIGTERM")
        r = env.ssh(w.config, "target", "echo new-session")
        check(r.returncode == 255 and "new-session" not in r.stdout and
              "Connection refused" in r.stderr, "a new login after SIGTERM must be refused", r)

        # The unauthenticated connection is closed at once, not at the deadline.
        how, _ = harness.read_until_closed(silent, DRAIN / 2)
        silent.close()
        check(how in ("eof", "reset"), f"a connection still authenticating was left open ({how})")
        check(time.monotonic() - signalled < DRAIN - 1,
              "a connection still authenticating waited for the drain deadline")

        # The session stays until the deadline, then is cut with the reason.
        waiter.join(timeout=DRAIN + 20)
        check(ended, f"the session was still open {DRAIN + 20:.0f} s after SIGTERM")
        after = ended[0][1] - signalled
        out = session.stdout.read()
        err = session.stderr.read().decode(errors="replace")
        r = harness.Result(session.args, session.returncode, out.decode(errors="replace"), err,
                           after)
        env.results.append(r)
        check(after >= DRAIN - 0.5, f"the session ended {after:.1f} s after SIGTERM, before the "
              f"drain deadline of {DRAIN:.0f} s", r)
        harness.assert_refused(r, "shutting_down")
        check("touchgate: the gateway is shutting down (shutting_down)" in r.stderr,
              "expected the plain reason in the client's stderr", r)

        try:
            status = w.gw.popen.wait(timeout=15)
        except Exception:
            raise AssertionError("touchgated did not exit within 15 s after the drain deadline")
        check(status == 0, f"touchgated exited with status {status}, expected 0")
        gone = time.monotonic() - signalled
        check(gone < DRAIN + 15, f"touchgated exited only {gone:.1f} s after SIGTERM")

        # By the gateway's clock: the silent connection went at once, the session at the deadline.
        asked = log_time(w.gw.events("shutdown_requested")[0])
        cut = {e.get("user", "").strip('"'): log_time(e) - asked for e in w.gw.events("disconnect")
               if e.get("code") == "shutting_down"}
        check(sorted(cut) == ["", "alice"],
              f"expected disconnects with shutting_down of the silent connection and of alice's, "
              f"got {cut}")
        check(cut[""] < DRAIN / 2,
              f"the silent connection was closed {cut['']:.2f} s after SIGTERM")
        check(DRAIN - 0.05 <= cut["alice"] < DRAIN + 3.0,
              f"alice's session was closed {cut['alice']:.2f} s after SIGTERM, drain_timeout "
              f"is {DRAIN:.0f} s")
        closed = w.gw.events("channel_closed")
        check(len(closed) == 1 and closed[0].get("target") == "db1"
              and closed[0].get("reason") == "shutting_down",
              f"expected the session's channel to db1 closed with shutting_down, got {closed}")
        check(w.gw.events("stopped"), "expected event=stopped in the gateway's log")
        stopped = w.gw.audit_records("gateway_stopped")
        check(len(stopped) == 1 and stopped[0]["reason"] == "signal",
              f"expected one gateway_stopped record, got {stopped}")
        conns = w.gw.audit_records("connection_closed")
        check(sum(1 for c in conns if c["reason"] == "shutting_down") == 2,
              f"expected 2 connection_closed records with shutting_down, got {conns}")


if __name__ == "__main__":
    harness.scenario(main)
