#!/usr/bin/env python3
"""Terminating mode's recordings as the gateway makes them, with the real ssh client and a real
sshd target:
- a session that cannot be recorded ([recording] dir is a regular file) is refused with
  recording_unavailable before the target sees anything: an exec without a pty, an exec with
  one, and a shell fed a command never run (the marker files they would create do not exist,
  and sshd logs no connection); the audit log says why (channel_closed), and no channel_open
  or recording is left. Once the file is gone the next session is recorded (the directory is
  made, mode 0700);
- the header of a gateway-made recording names the certificate's key id and serial, the
  connection and the fingerprint of the key that was touched, as the audit log does;
- `touchgate audit replay CONN --speed 100` plays the recording of a live shell: what was
  typed (echoed by the pty) and what was printed;
- [recording] on_cap = "stop": the session goes on past the size limit with all its output,
  the recording stops at the limit with its marker, and recording_closed says capped."""

import json
import os
import stat

import harness
from harness import check


def recording(path):
    """(header, events) of a recording file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return json.loads(lines[0]), [json.loads(l) for l in lines[1:]]


def main():
    with harness.Env("terminating_recording", deadline=60) as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca, serial=4711, key_id="alice@corp")
        token = env.gateway_ca_token("tg-pin-Rc5")
        target = env.start_target([ca], name="db9")
        recordings = env.path("recordings")
        rules = f'''[[rule]]
id = "ops"
principals = ["alice"]
targets = ["db9"]
actions = ["shell", "exec"]
remote_user = "{env.login}"
'''
        extra = token.config + f'''
[recording]
dir = "{recordings}"
max_size = "1M"
on_cap = "stop"
''' + target.pinned_toml("db9")
        gw = env.start_gateway([ca], rules=rules, extra=extra)
        agent = env.touch_agent_for(gw, "alice")
        config = env.client_config(gw, key, cert, name="ssh_config")
        agent_env = {"SSH_AUTH_SOCK": agent.sock}
        r = env.trust_gateway_ca(gw, target)
        check(r.returncode == 0, "touchgate ca pubkey", r)

        def tty_argv(dest):
            argv = env.ssh_argv(config, "gw", dest, jump=None)
            return argv[:1] + ["-tt"] + argv[1:]

        # -- a recording that cannot be made: nothing reaches the target ------------------------
        with open(recordings, "w") as f:
            f.write("a file where the recordings' directory should be\n")
        markers = [env.path(f"marker-{n}") for n in range(3)]
        seen_by_sshd = target.log_text().count("Connection from")
        attempts = [
            ("exec without a pty", env.ssh_argv(config, "gw", f"db9 touch {markers[0]}",
                                                jump=None), None),
            ("exec with a pty", tty_argv(f"db9 touch {markers[1]}"), None),
            ("shell with a pty", tty_argv("db9"), f"touch {markers[2]}\nexit 0\n".encode()),
        ]
        for what, argv, typed in attempts:
            r = env.run(argv, input=typed, extra_env=agent_env)
            check(r.returncode == 255 and "(recording_unavailable)" in r.stderr and
                  "the session cannot be recorded" in r.stderr and "it is not started" in r.stderr,
                  f"{what}: a session that cannot be recorded must be refused", r)
        refused = harness.wait_until(
            lambda: [c for c in gw.audit_records("channel_closed")
                     if c["reason"] == "recording_unavailable"][2:] and
            [c for c in gw.audit_records("channel_closed")
             if c["reason"] == "recording_unavailable"], 10, "the refused sessions' records")
        check(len(refused) == 3 and all(c["target"] == "db9" and c["bytes_up"] == 0 and
                                         "cannot create" in c["message"] for c in refused),
              f"channel_closed of the refused sessions: {refused}")
        check([c["action"] for c in refused] == ["exec", "exec", "shell"],
              f"the refused sessions' actions: {refused}")
        check(not gw.audit_records("channel_open") and not gw.audit_records("recording_closed"),
              "a refused session must have no channel_open and no recording")
        check(not any(os.path.exists(m) for m in markers),
              "a command ran on the target although its session could not be recorded")
        check(target.log_text().count("Connection from") == seen_by_sshd,
              "the gateway connected to the target although the session could not be recorded",
              target.log_text()[-1500:])

        # -- the file gone: recorded again, into a directory the gateway makes ------------------
        os.unlink(recordings)
        r = env.ssh(config, "gw", "db9 echo recorded-again", jump=None, extra_env=agent_env)
        check(r.returncode == 0 and r.stdout == "recorded-again\n", "the session after the fix", r)
        check(stat.S_IMODE(os.stat(recordings).st_mode) == 0o700,
              f"the recordings' directory: mode {oct(os.stat(recordings).st_mode)}")

        # -- a live shell: the header matches the audit log; replay shows it -------------------
        r = env.run(tty_argv("db9"), input=b"echo replay-$((6*7))\nexit 0\n",
                    extra_env=agent_env)
        check(r.returncode == 0 and "replay-42" in r.stdout, "the shell did not run", r)
        opened = gw.wait_for_audit("channel_open", action="shell")
        conn = opened["conn"]
        rec = gw.wait_for_audit("recording_closed", conn=conn)
        check(rec["file"] == opened["recording"] and rec["file"].startswith(recordings + "/"),
              f"recording_closed {rec} and channel_open {opened}")
        header, events = recording(rec["file"])
        meta = header["touchgate"]
        accepted = [a for a in gw.audit_records("auth_accepted", conn=conn)]
        touched = [t for t in gw.audit_records("mfa_verified", conn=conn)]
        check(len(accepted) == 1 and len(touched) == 1,
              f"one auth_accepted and one mfa_verified for {conn}: {accepted} {touched}")
        check(meta["key_id"] == accepted[0]["key_id"] == "alice@corp" and
              meta["serial"] == accepted[0]["serial"] == 4711 and
              meta["connection"] == conn and meta["user"] == "alice" and
              meta["target"] == "db9" and meta["touch_key_fp"] == touched[0]["key_fp"] and
              meta["touch_key_fp"].startswith("SHA256:"),
              f"the recording's header {header} against auth_accepted {accepted[0]} and "
              f"mfa_verified key_fp {touched[0]['key_fp']}")
        check(any(e[1] == "o" and "replay-42" in e[2] for e in events),
              "the recording lacks the shell's output")
        r = env.touchgate(gw, "audit", "replay", conn, "--speed", "100", timeout=20)
        printed = "".join(e[2] for e in events if e[1] == "o")
        check(r.returncode == 0 and r.stdout == printed and
              "echo replay-$((6*7))" in r.stdout and "replay-42\r\n" in r.stdout and
              "user alice, target db9" in r.stderr,
              "touchgate audit replay must show what was typed and printed", r)

        # -- on_cap = "stop": the session goes on, the recording stops at the limit -----------
        r = env.ssh(config, "gw", "db9 head -c 3000000 /dev/zero | base64 -w 0; echo; "
                    "echo after-the-cap", jump=None, extra_env=agent_env, timeout=30)
        check(r.returncode == 0 and r.stdout.endswith("\nafter-the-cap\n") and
              len(r.stdout) == 4000000 + len("\nafter-the-cap\n"),
              f"the session must go on past the recording limit: exit {r.returncode}, "
              f"{len(r.stdout)} bytes, stderr {r.stderr[-300:]!r}")
        opened = gw.wait_for_audit("channel_open", command="head -c 3000000 /dev/zero | base64 "
                                   "-w 0; echo; echo after-the-cap")
        capped = gw.wait_for_audit("recording_closed", conn=opened["conn"])
        check(capped["capped"] is True and capped["size"] <= 1 << 20 and
              capped["size"] > 1000000, f"recording_closed of the capped session: {capped}")
        closed = gw.wait_for_audit("channel_closed", conn=opened["conn"])
        check(closed["reason"] == "target_closed" and closed["bytes_down"] > 4000000,
              f"channel_closed of the capped session: {closed}")
        _, events = recording(capped["file"])
        check(events[-1][1] == "m" and "recording size limit reached" in events[-1][2] and
              not any("after-the-cap" in e[2] for e in events),
              f"the capped recording must end with its marker: {events[-1]}")
        check(os.path.getsize(capped["file"]) == capped["size"], "the capped file's size")
        r = env.touchgate(gw, "audit", "verify")
        check(r.returncode == 0, "verify with a capped recording", r)
        check(gw.alive(), "touchgated died")


if __name__ == "__main__":
    harness.scenario(main)
