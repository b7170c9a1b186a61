#!/usr/bin/env python3
"""`touchgate audit replay` on recordings written by the real writer (tests/tools/recording_write)
and their recording_closed records in a log written by the real writer (tests/tools/audit_fill),
no gateway: --no-wait prints the output events in order (never the input, markers on stderr, a
banner naming user and target); the pace follows the recording with pauses cut to --idle-limit;
a connection with two recordings lists both and asks for ID:CHANNEL, a number alone matching two
gateway runs too; a file path plays the recording its record names; a recording changed after it
was recorded is refused (exit 1) and played with --force; an unknown id, a file no record names
and a bad ID are refused; a line longer than 1 MiB is skipped with a warning; SIGINT stops a
replay with exit status 0."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import harness
from harness import check

INSTANCE_A = "0123456789abcdef"
INSTANCE_B = "fedcba9876543210"
A1, A2, B1 = f"{INSTANCE_A}-1", f"{INSTANCE_A}-2", f"{INSTANCE_B}-1"

# The shell of A1 channel 2: prompt, typed input (never replayed), a resize, a long pause.
SHELL_EVENTS = [
    [0.1, "o", "$ "],
    [0.5, "i", "echo secret-input\r"],
    [0.6, "o", "echo hi\r\n"],
    [0.7, "r", "132x43"],
    [0.8, "o", "hi \u00e9\u2603\r\n\x1b[1mbold\x1b[0m\r\n"],
    [60.0, "o", "$ exit\r\n"],
]
EXEC_EVENTS = [[0.0, "o", "line 1\n"], [0.01, "o", "line 2\n"]]


def main():
    with harness.Env("audit_replay") as env:
        tg = harness.touchgate_path()
        fill = harness.built_program("AUDIT_FILL", "tests", "tools", "audit_fill")
        write_rec = harness.built_program("RECORDING_WRITE", "tests", "tools", "recording_write")
        ca = env.make_ca("sso")
        config = env.write_gateway_config([ca], listen=["127.0.0.1:2222"])
        state = os.path.join(os.path.dirname(config), "state")
        log = os.path.join(state, "audit")
        key = os.path.join(state, "audit_key")
        recordings = env.path("recordings")
        os.makedirs(recordings)

        def record(name, conn, target, events, max_bytes=None):
            header = {"width": 100, "height": 30, "timestamp": 1764496800, "term": "xterm",
                      "target": target, "user": "alice", "connection": conn}
            text = "".join(json.dumps(x) + "\n" for x in [header, *events])
            path = os.path.join(recordings, name)
            opts = ["--max-bytes", str(max_bytes)] if max_bytes else []
            r = env.run([write_rec, *opts, path], input=text.encode(), check=True)
            return json.loads(r.stdout)

        def closed(conn, channel, target, rec):
            return {"event": "recording_closed", "conn": conn, "user": "alice",
                    "channel": channel, "target": target, "file": rec["file"],
                    "sha256": rec["sha256"], "size": rec["size"], "input": True,
                    "capped": rec["capped"]}

        exec_rec = record("a1-1.cast", A1, "db1", EXEC_EVENTS)
        shell_rec = record("a1-2.cast", A1, "db1", SHELL_EVENTS)
        a2_rec = record("a2-1.cast", A2, "web1",
                        [[0.0, "o", "x" * 2000], [0.2, "o", "y" * 2000 + "after the cap"]], max_bytes=4096)
        check(a2_rec["capped"], "the a2 recording should reach its 4096-byte cap")
        b1_rec = record("b1-1.cast", B1, "db2", [[0.0, "o", "run B\n"]])
        # A hand-written file with a line over 1 MiB between two events.
        long_path = os.path.join(recordings, "long.cast")
        with open(long_path, "w", encoding="utf-8") as f:
            f.write(json.dumps({"version": 2, "width": 80, "height": 24,
                                "timestamp": 1764496800}) + "\n")
            f.write('[0.000000, "o", "before\\n"]\n')
            f.write('[0.100000, "o", "' + "y" * (1 << 20) + '"]\n')
            f.write('[0.200000, "o", "after\\n"]\n')
        with open(long_path, "rb") as f:
            data = f.read()
        long_rec = {"file": long_path, "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data), "capped": False}
        recs = [
            {"event": "gateway_started", "instance": INSTANCE_A, "version": "0.1.0",
             "listen": "127.0.0.1:2222"},
            closed(A1, 1, "db1", exec_rec),
            closed(A1, 2, "db1", shell_rec),
            closed(A2, 1, "web1", a2_rec),
            {"event": "gateway_started", "instance": INSTANCE_B, "version": "0.1.0",
             "listen": "127.0.0.1:2222"},
            closed(B1, 1, "db2", b1_rec),
            closed(f"{INSTANCE_B}-7", 1, "db3", long_rec),
        ]
        env.run([fill, log, key], input="".join(json.dumps(r) + "\n" for r in recs).encode(),
                check=True)

        def replay(*args, **kw):
            return env.run([tg, "-f", config, "audit", "replay", *args], **kw)

        shell_output = "".join(e[2] for e in SHELL_EVENTS if e[1] == "o")

        # -- the output, in order, and nothing else --------------------------------------------
        r = replay(f"{A1}:2", "--no-wait")
        harness.assert_ok(r)
        check(r.stdout == shell_output, "replay prints the output events in order, as recorded", r)
        check("secret-input" not in r.stdout + r.stderr, "the user's input must not be shown", r)
        check(f"touchgate: replaying {A1}:2: user alice, target db1, recorded "
              "2025-11-30T10:00:00Z, 100x30" in r.stderr, "the banner names the recording", r)
        r = replay(f"{A1}:1", "--speed", "0", "--dir", log)
        harness.assert_ok(r, "line 1\nline 2\n")
        # A connection with one recording needs no channel; nor does its number when it is the
        # only gateway run with that connection.
        r = replay(A2, "--no-wait")
        harness.assert_ok(r)
        check(r.stdout == "x" * 2000,
              "the capped recording plays up to its cap", r)
        check("marker at 0.200s: touchgate: recording size limit reached" in r.stderr and
              "stopped at its size cap" in r.stderr, "the cap marker goes to stderr", r)
        r = replay("2", "--no-wait")
        harness.assert_ok(r)
        check(r.stdout.startswith("xxx"), "a connection number alone", r)
        # The file itself.
        r = replay(shell_rec["file"], "--no-wait")
        harness.assert_ok(r, shell_output)
        r = replay("recordings/a1-2.cast", "--no-wait", cwd=env.path())
        harness.assert_ok(r, shell_output)

        # -- pace: real pauses, long ones cut to --idle-limit, --speed scales ------------------
        paced = replay(f"{A1}:2", "--idle-limit", "0.5")
        harness.assert_ok(paced, shell_output)
        check(1.3 <= paced.elapsed < 6, f"0.8 s of events plus one pause cut to 0.5 s, not 60 s "
              f"(took {paced.elapsed:.2f} s)", paced)
        r = replay(f"{A1}:2", "--idle-limit", "0.5", "--speed", "4")
        harness.assert_ok(r, shell_output)
        check(r.elapsed < paced.elapsed - 0.6, f"four times as fast: 0.33 s of pauses, not 1.3 s "
              f"(took {r.elapsed:.2f} s, {paced.elapsed:.2f} s at speed 1)", r)

        # -- several recordings match: listed, none played -------------------------------------
        r = replay(A1, "--no-wait")
        check(r.returncode == 1 and r.stdout == "", "an ambiguous id plays nothing", r)
        check("matches 2 recordings; replay one of them by ID:CHANNEL" in r.stderr and
              f"{A1}:1" in r.stderr and f"{A1}:2" in r.stderr and exec_rec["file"] in r.stderr,
              "the choices are listed", r)
        r = replay("1", "--no-wait")
        check(r.returncode == 1 and "matches 3 recordings" in r.stderr and f"{B1}:1" in r.stderr,
              "a number alone over two gateway runs", r)

        # -- unknown ids and files -------------------------------------------------------------
        r = replay(f"{A1}:9")
        check(r.returncode == 1 and f"no recording of connection {A1}:9" in r.stderr,
              "an unknown channel", r)
        r = replay("nosuchinstance-99")
        check(r.returncode == 1 and "no recording of connection nosuchinstance-99" in r.stderr,
              "an unknown connection", r)
        stray = os.path.join(recordings, "stray.cast")
        shutil.copy(exec_rec["file"], stray)
        r = replay(stray, "--no-wait")
        check(r.returncode == 1 and "(recording_no_record)" in r.stderr and r.stdout == "",
              "a file no record names cannot be checked: refused", r)
        r = replay(stray, "--no-wait", "--force")
        check(r.returncode == 0 and r.stdout == "line 1\nline 2\n" and "unchecked" in r.stderr,
              "--force plays a file no record names, with a warning", r)
        r = replay(f"{A1}:x")
        check(r.returncode == 2 and "must be a number" in r.stderr, "a bad channel", r)
        r = replay(A2, "--speed", "-1")
        check(r.returncode == 2, "a negative speed is a usage error", r)

        # -- a line over 1 MiB is skipped, the rest plays -------------------------------------
        r = replay(f"{INSTANCE_B}-7", "--no-wait")
        harness.assert_ok(r, "before\nafter\n")
        check(":3: skipped, longer than 1048576 bytes" in r.stderr, "the long line is reported", r)

        # -- tampering: refused, shown with --force -------------------------------------------
        with open(shell_rec["file"], "r+", encoding="utf-8") as f:
            text = f.read()
            f.seek(0)
            f.write(text.replace("echo hi", "echo HI"))
        r = replay(f"{A1}:2", "--no-wait")
        check(r.returncode == 1 and r.stdout == "", "an altered recording must not play", r)
        check("the recording was altered since it was recorded" in r.stderr and
              "(recording_altered)" in r.stderr, "the refusal says why", r)
        r = replay(f"{A1}:2", "--no-wait", "--force")
        check(r.returncode == 0 and "echo HI" in r.stdout, "--force plays it", r)
        check("altered" in r.stderr and "--force" in r.stderr, "with a warning", r)
        with open(exec_rec["file"], "a", encoding="utf-8") as f:
            f.write('[9.0, "o", "forged"]\n')
        r = replay(exec_rec["file"], "--no-wait")
        check(r.returncode == 1 and "bytes, " in r.stderr and "when it was recorded" in r.stderr,
              "a longer file is refused, naming the sizes", r)

        # -- SIGINT stops a replay cleanly ----------------------------------------------------
        p = subprocess.Popen([tg, "-f", config, "audit", "replay", f"{A1}:2",
                              "--force", "--idle-limit", "100"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            harness.wait_until(lambda: p.poll() is not None or os.path.exists(f"/proc/{p.pid}"),
                               5, "the replay to start")
            time.sleep(1.5)  # past the 0.8 s of events, into the 59 s pause
            check(p.poll() is None, "the replay should be waiting in the long pause")
            start = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=5)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        out, err = out.decode(), err.decode()
        check(p.returncode == 0, f"SIGINT: exit status {p.returncode}, stderr {err!r}")
        check(time.monotonic() - start < 2, "SIGINT stops the replay at once")
        check(out.startswith("$ echo HI") and "$ exit" not in out,
              f"the output up to the pause, not after it: {out!r}")
        check("replay stopped at 0.8s" in err, f"the stop is reported: {err!r}")


if __name__ == "__main__":
    harness.scenario(main)
