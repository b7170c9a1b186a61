#!/usr/bin/env python3
"""touchgate sessions list | kill against a live ProxyJump session: the session is listed with
its user, its channels with their target and the rule that allowed them, and its factor; killing
it by ID ends it and the client prints why ("ended by an administrator ... (session_killed)");
killing a user without sessions fails with no_such_session. On a multiplexed connection with two
channels, `sessions kill ID/CHANNEL` ends one and the other carries on; a channel that is not
open gives no_such_channel. The control socket serves only root and the daemon's user: another uid cannot
even reach the socket (mode 0600 in a 0700 directory), and when the file system lets it through,
the daemon refuses it (SO_PEERCRED). A malformed request gets control_bad_request."""

import json
import os
import re
import select
import socket
import stat

import harness
from harness import check


def read_line(stream, timeout):
    """One line from a pipe, or b'' after timeout."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def raw_request(path, data):
    """Sends bytes on the control socket and returns everything the daemon answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(data)
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return reply.decode(errors="replace")
            reply += chunk


def as_nobody(argv):
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]


def main():
    with harness.Env("sessions_cli") as env:
        w = env.world()
        sock = os.path.join(os.path.dirname(w.gw.config), "state", "control.sock")
        mode = os.lstat(sock).st_mode
        check(stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600,
              f"the control socket {sock} is not a socket of mode 0600 ({oct(mode)})")

        session = env.spawn(env.ssh_argv(w.config, "target", "echo started; read x; echo $x"))
        line = read_line(session.stdout, 20)
        check(line == b"started\n", f"the session did not start (read {line!r})")

        # Listed as JSON lines: who, from where, to which target, with which factor.
        r = env.touchgate(w.gw, "sessions", "list", "--json")
        check(r.returncode == 0, "touchgate sessions list --json failed", r)
        sessions = [json.loads(line) for line in r.stdout.splitlines()]
        check(len(sessions) == 1, "expected exactly one session", r)
        s = sessions[0]
        check(s["user"] == "alice" and s["source"].startswith("127.0.0.1:"),
              "the session does not name alice from 127.0.0.1", r)
        check([c["target"] for c in s["channels"]] == ["db1"] and
              s["channels"][0]["address"] == w.target.address and
              s["channels"][0]["rule"] == "e2e-everyone",
              "the session does not show its channel to db1 and the rule that allowed it", r)
        check(s["bytes_down"] > 0 and s["bytes_down"] == s["channels"][0]["bytes_down"],
              "the session's byte counts are missing", r)
        check(s["factor"] == "piv" and s["key_fp"].startswith("SHA256:"),
              "the session does not show the touch (a PIV-kind key) and its key", r)
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["since"]),
              "since is not an RFC 3339 UTC time", r)

        # The same as a table.
        r = env.touchgate(w.gw, "sessions", "list")
        check(r.returncode == 0, "touchgate sessions list failed", r)
        lines = r.stdout.splitlines()
        check(re.match(r"ID\s+USER\s+SOURCE\s+SINCE\s+CHANNELS\s+TARGETS\s+RULES\s+BYTES\s+"
                       r"FACTOR$", lines[0]) and
              re.match(rf"{s['id']}\s+alice\s+127\.0\.0\.1:\d+\s+\S+\s+"
                       rf"{s['channels'][0]['channel']}\s+db1\s+e2e-everyone\s+\S+\s+piv$",
                       lines[1]),
              "the table does not show the session", r)

        # Killed by its ID: the client learns why.
        r = env.touchgate(w.gw, "sessions", "kill", str(s["id"]))
        check(r.returncode == 0 and r.stdout == "killed 1\n", "sessions kill ID failed", r)
        session.wait(timeout=15)
        err = session.stderr.read().decode(errors="replace")
        check(session.returncode == 255, f"the killed session exited {session.returncode}: {err}")
        check(re.search(r"touchgate: ended by an administrator \(uid \d+\) \(session_killed\)",
                        err), f"the client did not print why it was ended: {err!r}")
        w.gw.wait_for_log(rf"event=session_killed conn={s['id']} .*by_uid=\d+")
        r = env.touchgate(w.gw, "sessions", "list", "--json")
        check(r.returncode == 0 and r.stdout == "", "a killed session is still listed", r)

        # Nothing to kill.
        r = env.touchgate(w.gw, "sessions", "kill", "--user", "nobody")
        check(r.returncode == 1 and "(no_such_session)" in r.stderr and "nobody" in r.stderr,
              "killing a user without sessions did not fail with no_such_session", r)
        r = env.touchgate(w.gw, "sessions", "kill", "99999")
        check(r.returncode == 1 and "(no_such_session)" in r.stderr,
              "killing an unknown connection id did not fail with no_such_session", r)

        # One channel of a multiplexed connection: it ends, the other one carries on.
        cm = env.path("cm")
        mux = env.client_config(w.gw, w.key, w.cert, target=w.target, name="ssh_config-mux",
                                gw_extra=f"  ControlMaster auto\n  ControlPath {cm}\n"
                                         "  ControlPersist 60\n")
        try:
            first = env.spawn(env.ssh_argv(mux, "target", "echo started; read x; echo one-$x"))
            line = read_line(first.stdout, 20)
            check(line == b"started\n", f"the first channel did not start (read {line!r})")
            second = env.spawn(env.ssh_argv(mux, "target", "echo started; read x; echo two-$x"))
            line = read_line(second.stdout, 20)
            check(line == b"started\n", f"the second channel did not start (read {line!r})")
            r = env.touchgate(w.gw, "sessions", "list", "--json")
            sessions = [json.loads(line) for line in r.stdout.splitlines()]
            check(r.returncode == 0 and len(sessions) == 1 and
                  len(sessions[0]["channels"]) == 2,
                  "expected one connection with two channels", r)
            conn = sessions[0]["id"]
            one, two = sorted(c["channel"] for c in sessions[0]["channels"])
            r = env.touchgate(w.gw, "sessions", "kill", f"{conn}/{one}")
            check(r.returncode == 0 and r.stdout == "killed 1\n", "sessions kill ID/CHANNEL failed",
                  r)
            w.gw.wait_for_log(rf"event=channel_killed conn={conn} channel={one} .*by_uid=\d+")
            first.wait(timeout=15)
            check(first.returncode != 0, f"the killed channel's ssh exited {first.returncode}")
            r = env.touchgate(w.gw, "sessions", "list", "--json")
            sessions = [json.loads(line) for line in r.stdout.splitlines()]
            check(r.returncode == 0 and len(sessions) == 1 and
                  [c["channel"] for c in sessions[0]["channels"]] == [two],
                  "after the kill, expected the connection with the other channel alone", r)
            second.stdin.write(b"on\n")
            second.stdin.close()
            out = second.stdout.read()
            second.wait(timeout=15)
            check(second.returncode == 0 and out == b"two-on\n",
                  f"the other channel did not carry on: {second.returncode} {out!r}")
            r = env.touchgate(w.gw, "sessions", "kill", f"{conn}/{one}")
            check(r.returncode == 1 and "(no_such_channel)" in r.stderr,
                  "killing a channel that is not open did not fail with no_such_channel", r)
            r = env.touchgate(w.gw, "sessions", "kill", f"{conn}/0")
            check(r.returncode == 2 and "is not a connection ID or ID/CHANNEL" in r.stderr,
                  "channel 0: expected a usage error", r)
        finally:
            env.run([harness.SSH, "-F", mux, "-O", "exit", "gw"], timeout=10)

        # A malformed request.
        reply = raw_request(sock, b"GET / HTTP/1.0\r\n\r\n")
        check(reply.startswith("error control_bad_request ") and reply.count("\n") == 1,
              f"garbage on the control socket got {reply!r}")
        reply = raw_request(sock, b"sessions kill --user alice,bob\n")
        check(reply.startswith("error control_bad_request the principal"),
              f"a bad principal got {reply!r}")

        # Another user.
        if os.geteuid() == 0:
            argv = as_nobody([harness.touchgate_path(), "sessions", "list", "--socket", sock])
            r = env.run(argv)
            check(r.returncode == 1 and
                  f"touchgate: cannot reach touchgated at {sock}: Permission denied "
                  "(control_unreachable)" in r.stderr,
                  "a user other than root and the daemon's reached the control socket", r)
            # Even when the file system lets it through, the daemon refuses the peer.
            d = sock
            while d != env.dir:
                d = os.path.dirname(d)
                os.chmod(d, os.stat(d).st_mode | 0o005)
            os.chmod(sock, 0o666)
            r = env.run(argv)
            check(r.returncode == 1 and
                  re.search(r"touchgate: uid 65534 may not control touchgated: .*"
                            r"\(control_refused\)", r.stderr),
                  "the daemon did not refuse a peer that is not an administrator", r)
            w.gw.wait_for_log(r"event=control_refused uid=65534 ")
        else:
            print("[sessions_cli] not root: the refusal of another uid is not exercised")

        # The gateway still serves.
        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
