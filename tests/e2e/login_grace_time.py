#!/usr/bin/env python3
"""Unauthenticated connections are cut after login_grace_time (2 s here): a TCP client that
sends nothing, and one that sends only its SSH banner, both see EOF within ~5 s. An
authenticated session that lasts longer than the grace time is not affected."""

import socket
import threading
import time

import harness
from harness import check


def silent_client(port, payload, outcome):
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            if payload:
                s.sendall(payload)
            how, received = harness.read_until_closed(s, 8)
            outcome["result"] = "still open after 8 s" if how == "timeout" else how
            outcome["received"] = received[:100]
    except OSError as e:
        outcome["result"] = f"error: {e}"
    outcome["elapsed"] = time.monotonic() - start


def main():
    with harness.Env("login_grace_time") as env:
        w = env.world(login_grace_time="2s")
        cases = {"nothing": b"", "banner only": b"SSH-2.0-OpenSSH_9.2 e2e\r\n"}
        outcomes = {name: {} for name in cases}
        threads = [threading.Thread(target=silent_client,
                                    args=(w.gw.port, payload, outcomes[name]))
                   for name, payload in cases.items()]
        for t in threads:
            t.start()

        # Meanwhile, an authenticated session outlives the grace time.
        r = env.ssh(w.config, "target", "sleep 4; echo still-here", timeout=20)
        harness.assert_ok(r, "still-here\n")

        for t in threads:
            t.join(timeout=15)
        for name, o in outcomes.items():
            check(o.get("result") in ("eof", "reset"),
                  f"client sending {name}: expected the gateway to close the connection, "
                  f"got {o}")
            check(1.5 <= o["elapsed"] <= 5.0,
                  f"client sending {name}: closed after {o['elapsed']:.2f} s, expected about "
                  f"2 s (login_grace_time)")
            check(o["received"].startswith(b"SSH-2.0-"),
                  f"client sending {name}: expected the gateway's SSH banner first, got {o}")
        check(w.gw.alive(), "touchgated is no longer running")
        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
