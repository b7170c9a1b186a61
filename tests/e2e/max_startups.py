#!/usr/bin/env python3
"""[server] max_startups: with 2 unauthenticated connections held open (TCP clients that send
nothing), a third is closed at once by the gateway, before any SSH banner; the refusals are in
the daemon's log one by one (event=connection_dropped) and in the audit log as a summary
(event=connections_dropped: at most one record per 10 s, with the count, the reason and the last
client), so that a flood cannot flood the audit log. Once the held connections are gone, logins
work again."""

import socket
import time

import harness
from harness import check


def held_connection(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def refused_at_once(port):
    """A connection the gateway closes without a word: EOF (or a reset), no SSH banner."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        how, received = harness.read_until_closed(s, 5)
        if how == "timeout":
            return False, b"still open after 5 s"
        return not received.startswith(b"SSH-"), received[:80]


def main():
    with harness.Env("max_startups", deadline=90) as env:
        w = env.world(login_grace_time="60s", server_extra="max_startups = 2")
        port = w.gw.port
        held = [held_connection(port) for _ in range(2)]
        # The gateway counts them as unauthenticated once its workers adopted them.
        w.gw.wait_for_log(r"event=connection_accepted\b.*", timeout=5)
        time.sleep(0.5)

        ok, got = refused_at_once(port)
        check(ok, f"a third connection with 2 unauthenticated ones held must be closed at once, "
                  f"got {got!r}")
        w.gw.wait_for_log(r"event=connection_dropped\b.*code=too_many_connections")
        first = w.gw.wait_for_audit("connections_dropped")
        check(first["count"] == 1 and first["reason"] == "max_startups" and
              first["last_client"].startswith("127.0.0.1:") and first["max_startups"] == 2,
              f"the first refusal is audited at once: {first}")

        # Four more within the next seconds: one summary record later, not four.
        for _ in range(4):
            ok, got = refused_at_once(port)
            check(ok, f"a refused connection got {got!r}")
        time.sleep(1)
        check(len(w.gw.audit_records("connections_dropped")) == 1,
              "refusals within 10 s of the last record must wait for the summary")
        harness.wait_until(lambda: len(w.gw.audit_records("connections_dropped")) == 2, 15,
                           "the summary of the next four refusals")
        summary = w.gw.audit_records("connections_dropped")[1]
        check(summary["count"] == 4 and summary["reason"] == "max_startups",
              f"the summary counts the four refusals: {summary}")
        log = w.gw.log_text()
        check(log.count("event=connection_dropped") == 5,
              "the daemon's log has every refusal")

        for s in held:
            s.close()
        # The gateway notices the closed connections and logins work again.
        harness.wait_until(lambda: env.ssh(w.config, "target", "echo back").returncode == 0, 10,
                           "a login once the held connections are closed")
        check(w.gw.alive(), "touchgated died")
        r = env.touchgate(w.gw, "audit", "verify")
        check(r.returncode == 0, "the audit log verifies", r)


if __name__ == "__main__":
    harness.scenario(main)
