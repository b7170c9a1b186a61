#!/usr/bin/env python3
"""`touchgate audit verify|search|show|tail|export|stats` on a log written by the real writer
(tests/tools/audit_fill, no gateway): verify says clean (0) with the configured key pinned, and
tampered (1) naming file:line and `modified` after one byte of a record changed, and `truncated`
when the log was cut back past audit.head; search filters by user, event, outcome and --since;
show finds a connection by full id and by number (several gateway runs); tail -n prints the last
records and tail -f prints a record appended while it runs, then ends on SIGTERM with 0; export
writes the stored lines (jsonl) or RFC 4180 CSV; stats counts; a line that does not parse is
skipped with a warning; bad input (unknown --format, bad --since, missing directory) is refused
with a clear message."""

import csv
import datetime
import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

import harness
from harness import check

INSTANCE_A = "0123456789abcdef"
INSTANCE_B = "fedcba9876543210"


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def records(now):
    """The log: gateway run A, a few hours ago and just now; gateway run B just now."""
    old = rfc3339(now - datetime.timedelta(hours=5))
    new = rfc3339(now - datetime.timedelta(minutes=10))
    a1, a2, b1 = f"{INSTANCE_A}-1", f"{INSTANCE_A}-2", f"{INSTANCE_B}-1"
    return [
        {"event": "gateway_started", "ts": old, "instance": INSTANCE_A, "version": "0.1.0",
         "listen": "127.0.0.1:2222"},
        {"event": "connection_accepted", "conn": a1, "client": "192.0.2.1", "client_port": 40000,
         "local": "127.0.0.1:2222"},
        {"event": "auth_accepted", "conn": a1, "user": "alice", "outcome": "allow", "ca": "sso",
         "key_id": "alice@corp", "serial": 7},
        {"event": "mfa_verified", "conn": a1, "user": "alice", "outcome": "allow", "channel": 1,
         "target": "db1", "key_fp": "SHA256:alicekey", "kind": "fido2", "up": True, "uv": False,
         "counter": 12, "proof": "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n"
                                 "-----END SSH SIGNATURE-----\n"},
        {"event": "policy_decision", "conn": a1, "user": "alice", "outcome": "allow",
         "channel": 1, "target": "db1", "action": "jump", "rule": "prod", "reason": "allowed"},
        {"event": "connection_accepted", "ts": new, "conn": a2, "client": "192.0.2.2",
         "client_port": 40001, "local": "127.0.0.1:2222"},
        {"event": "auth_refused", "conn": a2, "user": 'mal, "lory"', "outcome": "deny",
         "reason": "cert_expired", "message": "the certificate expired"},
        {"event": "gateway_started", "instance": INSTANCE_B, "version": "0.1.0",
         "listen": "127.0.0.1:2222"},
        {"event": "policy_decision", "conn": b1, "user": "bob", "outcome": "deny", "channel": 1,
         "target": "web1", "action": "jump", "rule": "", "reason": "policy_no_match"},
        {"event": "suspected_clone", "conn": b1, "user": "bob", "outcome": "deny",
         "key_fp": "SHA256:bobkey", "counter": 3, "last_counter": 9},
    ]


def main():
    with harness.Env("audit_cli") as env:
        tg = harness.touchgate_path()
        fill = harness.built_program("AUDIT_FILL", "tests", "tools", "audit_fill")
        ca = env.make_ca("sso")
        config = env.write_gateway_config([ca], listen=["127.0.0.1:2222"])
        state = os.path.join(os.path.dirname(config), "state")
        log = os.path.join(state, "audit")
        key = os.path.join(state, "audit_key")

        def touchgate(*args, **kw):
            return env.run([tg, "-f", config, "audit", *args], timeout=20, **kw)

        def write(recs, directory=log, options=()):
            text = "".join(json.dumps(r) + "\n" for r in recs)
            return env.run([fill, *options, directory, key], input=text.encode(), check=True)

        now = datetime.datetime.now(datetime.timezone.utc)
        recs = records(now)
        write(recs)
        segments = sorted(f for f in os.listdir(log) if f.startswith("audit-"))
        check(segments == ["audit-00000000000000000001.jsonl"], f"segments: {segments}")
        segment = os.path.join(log, segments[0])
        total = len(recs) + 1  # the final checkpoint

        # -- verify ----------------------------------------------------------------------------
        r = touchgate("verify")
        harness.assert_ok(r)
        check("verdict: clean" in r.stdout, "expected 'verdict: clean'", r)
        check("key: pinned" in r.stdout, "expected the configured key to be pinned", r)
        check(f"1 segment, {total} records" in r.stdout, "expected the counts", r)
        r = touchgate("verify", "--json")
        harness.assert_ok(r)
        report = json.loads(r.stdout)
        check(report["verdict"] == "clean" and report["records"] == total and
              report["key_pinned"] and report["checkpoints"] == 1, "verify --json report", r)
        # Without a configuration and a key: unpinned, still clean, with a warning.
        r = env.run([tg, "audit", "verify", log], extra_env={"TOUCHGATE_CONFIG": "/nonexistent"})
        harness.assert_ok(r)
        check("not pinned" in r.stdout and "warning" in r.stderr, "expected an unpinned run", r)

        # One byte of record 3 changed: modified, at file:line 3.
        tampered = env.path("tampered")
        shutil.copytree(log, tampered)
        tampered_segment = os.path.join(tampered, segments[0])
        with open(tampered_segment, "rb") as f:
            lines = f.read().split(b"\n")
        check(b'"user":"alice"' in lines[2], "line 3 is alice's auth_accepted")
        lines[2] = lines[2].replace(b'"user":"alice"', b'"user":"alicf"')
        with open(tampered_segment, "wb") as f:
            f.write(b"\n".join(lines))
        r = env.run([tg, "audit", "verify", "--key", key + ".pub", tampered])
        check(r.returncode == 1, "expected exit status 1 for a tampered log", r)
        check(re.search(rf"^modified  {re.escape(segments[0])}:3  seq 3  ", r.stdout, re.M),
              "expected 'modified  FILE:3  seq 3'", r)
        check("verdict: tampered" in r.stdout, "expected 'verdict: tampered'", r)
        r = env.run([tg, "audit", "verify", "--json", "--dir", tampered, "--key", key + ".pub"])
        check(r.returncode == 1, "expected exit status 1", r)
        kinds = [(f["kind"], f["file"], f["line"]) for f in json.loads(r.stdout)["findings"]]
        check(("modified", segments[0], 3) in kinds, f"findings: {kinds}", r)

        # Cut back before the checkpoint audit.head names: truncated.
        cut = env.path("cut")
        shutil.copytree(log, cut)
        with open(os.path.join(cut, segments[0]), "rb") as f:
            lines = f.read().split(b"\n")
        with open(os.path.join(cut, segments[0]), "wb") as f:
            f.write(b"\n".join(lines[:5]) + b"\n")
        r = env.run([tg, "audit", "verify", "--key", key + ".pub", cut])
        check(r.returncode == 1, "expected exit status 1 for a truncated log", r)
        check(re.search(r"^truncated  ", r.stdout, re.M), "expected a 'truncated' finding", r)

        # -- search ----------------------------------------------------------------------------
        def search_json(*args):
            r = touchgate("search", "--json", *args)
            harness.assert_ok(r)
            return [json.loads(line) for line in r.stdout.splitlines()]

        got = search_json("--user", "alice")
        check([x["seq"] for x in got] == [3, 4, 5], f"search --user alice: {got}")
        got = search_json("--event", "gateway_started", "--event", "suspected_clone")
        check([x["seq"] for x in got] == [1, 8, 10], f"search --event: {got}")
        got = search_json("--event", "gateway_started,auth_refused")
        check([x["seq"] for x in got] == [1, 7, 8], f"search --event a,b: {got}")
        got = search_json("--outcome", "deny")
        check([x["seq"] for x in got] == [7, 9, 10], f"search --outcome deny: {got}")
        got = search_json("--since", "2h")
        check([x["seq"] for x in got] == list(range(6, total + 1)), f"search --since 2h: {got}")
        got = search_json("--until", "2h", "--user", "alice", "--target", "db1")
        check([x["seq"] for x in got] == [4, 5], f"search --until 2h: {got}")
        got = search_json("--limit", "2")
        check([x["seq"] for x in got] == [1, 2], f"search --limit 2: {got}")
        # --json prints the lines exactly as stored.
        with open(segment) as f:
            stored = f.read().splitlines()
        r = touchgate("search", "--json", "--conn", f"{INSTANCE_A}-1")
        check(r.stdout.splitlines() == stored[1:5], "expected the stored lines", r)
        r = touchgate("search", "--outcome", "deny")
        harness.assert_ok(r)
        rows = r.stdout.splitlines()
        check(rows[0].split() == ["TIME", "EVENT", "CONN", "USER", "TARGET", "OUTCOME", "REASON"],
              "expected the table header", r)
        check(len(rows) == 4 and "policy_no_match" in rows[2] and "bob" in rows[2],
              "expected three rows", r)

        # -- show ------------------------------------------------------------------------------
        r = touchgate("show", f"{INSTANCE_A}-1")
        harness.assert_ok(r)
        for event in ("connection_accepted", "auth_accepted", "mfa_verified", "policy_decision"):
            check(event in r.stdout, f"expected {event} in show", r)
        check("    -----BEGIN SSH SIGNATURE-----\n    U1NIU0lH\n" in r.stdout,
              "expected the proof as it is, on lines of its own", r)
        check("auth_refused" not in r.stdout, "expected only connection 1", r)
        r = touchgate("show", "--json", f"{INSTANCE_A}-1")
        check(r.stdout.splitlines() == stored[1:5], "show --json: the stored lines", r)
        r = touchgate("show", "1", "--json")
        harness.assert_ok(r)
        check([json.loads(x)["seq"] for x in r.stdout.splitlines()] == [2, 3, 4, 5, 9, 10],
              "show 1: both runs' connection 1", r)
        check("2 gateway runs" in r.stderr, "expected a note about several gateway runs", r)
        r = touchgate("show", "2")
        harness.assert_ok(r)
        check("gateway runs" not in r.stderr, "one run only", r)
        r = touchgate("show", "99")
        check(r.returncode == 1 and "no record of connection 99" in r.stderr,
              "expected exit status 1 when nothing matched", r)

        # -- tail ------------------------------------------------------------------------------
        r = touchgate("tail", "-n", "3", "--json")
        harness.assert_ok(r)
        check([json.loads(x)["seq"] for x in r.stdout.splitlines()] == [total - 2, total - 1,
                                                                         total], "tail -n 3", r)
        r = touchgate("tail")
        harness.assert_ok(r)
        check(len(r.stdout.splitlines()) == 11, "tail: a header and 10 records", r)

        follower = env.spawn([tg, "-f", config, "audit", "tail", "-f", "-n", "1", "--json"],
                             stdin=subprocess.DEVNULL)
        out = b""

        def read_until(pattern, timeout=10):
            nonlocal out
            deadline = time.monotonic() + timeout
            while re.search(pattern, out) is None:
                left = deadline - time.monotonic()
                check(left > 0, f"tail -f: timed out waiting for {pattern!r}; got {out!r}")
                ready, _, _ = select.select([follower.stdout], [], [], left)
                if ready:
                    chunk = os.read(follower.stdout.fileno(), 65536)
                    check(chunk, f"tail -f ended early: {out!r}")
                    out += chunk

        read_until(rb'"seq":%d,' % total)
        write([{"event": "admin_key_revoked", "admin": "root", "uid": 0, "via": "direct",
                "key_fp": "SHA256:alicekey"}])
        read_until(rb'"event":"admin_key_revoked"')
        read_until(rb'"seq":%d,' % (total + 2))  # and the closing checkpoint
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=10)
        err = follower.stderr.read().decode()
        check(follower.returncode == 0, f"tail -f: exit status {follower.returncode}, {err}")
        seqs = [json.loads(x)["seq"] for x in out.decode().splitlines()]
        check(seqs == [total, total + 1, total + 2], f"tail -f printed {seqs}")
        total += 2

        # -- export ----------------------------------------------------------------------------
        r = touchgate("export", "--format", "jsonl")
        harness.assert_ok(r)
        with open(segment) as f:
            stored = f.read().splitlines()
        check(r.stdout.splitlines() == stored, "export jsonl: the stored lines", r)
        r = touchgate("export", "--format", "csv", "--outcome", "deny")
        harness.assert_ok(r)
        rows = list(csv.reader(io.StringIO(r.stdout, newline="")))
        check(rows[0] == ["seq", "ts", "event", "conn", "user", "target", "outcome", "reason",
                          "fields"], f"csv header: {rows[0]}")
        check(len(rows) == 4, f"csv rows: {rows}")
        check(rows[1][:3] == ["7", rows[1][1], "auth_refused"] and rows[1][4] == 'mal, "lory"'
              and rows[1][7] == "cert_expired", f"csv row: {rows[1]}")
        check(json.loads(rows[1][8]) == {"message": "the certificate expired"},
              f"csv fields: {rows[1][8]}")
        check(json.loads(rows[3][8]) == {"key_fp": "SHA256:bobkey", "counter": 3,
                                         "last_counter": 9}, f"csv fields: {rows[3][8]}")
        r = touchgate("export", "--format", "csv", "--conn", f"{INSTANCE_A}-1",
                      "--event", "mfa_verified")
        rows = list(csv.reader(io.StringIO(r.stdout, newline="")))
        fields = json.loads(rows[1][8])
        check(fields["proof"].startswith("-----BEGIN SSH SIGNATURE-----\n") and
              fields["up"] is True and fields["counter"] == 12, f"csv fields: {fields}")

        # -- stats -----------------------------------------------------------------------------
        r = touchgate("stats", "--json")
        harness.assert_ok(r)
        s = json.loads(r.stdout)
        check(s["records"] == total and s["first_seq"] == 1 and s["last_seq"] == total,
              f"stats records: {s}")
        check(s["events"]["gateway_started"] == 2 and s["events"]["checkpoint"] == 2,
              f"stats events: {s['events']}")
        users = {u["user"]: u for u in s["users"]}
        check(users["alice"] == {"user": "alice", "records": 3, "allow": 3, "deny": 0},
              f"stats alice: {users}")
        check(users["bob"]["deny"] == 2, f"stats bob: {users}")
        check(s["deny_reasons"] == {"cert_expired": 1, "policy_no_match": 1, "(none)": 1},
              f"stats reasons: {s['deny_reasons']}")
        check(s["suspected_clones"] == [{"key_fp": "SHA256:bobkey", "user": "bob",
                                         "records": 1}], f"stats clones: {s}")
        r = touchgate("stats", "--user", "alice")
        harness.assert_ok(r)
        check(re.search(r"^records: 3 \(seq 3\.\.5\)$", r.stdout, re.M), "stats text", r)
        check(re.search(r"^alice +3 +3 +0$", r.stdout, re.M), "stats user row", r)

        # -- a line that does not parse is skipped with a warning ------------------------------
        broken = env.path("broken")
        shutil.copytree(log, broken)
        with open(os.path.join(broken, segments[0]), "rb") as f:
            lines = f.read().split(b"\n")
        lines[1] = b"garbage"
        with open(os.path.join(broken, segments[0]), "wb") as f:
            f.write(b"\n".join(lines))
        r = env.run([tg, "audit", "search", "--json", "--dir", broken])
        harness.assert_ok(r)
        check(len(r.stdout.splitlines()) == total - 1, "expected every other record", r)
        check(re.search(rf"warning: {re.escape(segments[0])}: 1 line skipped.*line 2",
                        r.stderr), "expected one warning naming the file", r)

        # -- bad input -------------------------------------------------------------------------
        r = touchgate("export", "--format", "xml")
        check(r.returncode == 2 and "--format" in r.stderr, "unknown --format: exit 2", r)
        r = touchgate("search", "--since", "yesterday")
        check(r.returncode == 2 and "--since: not a time" in r.stderr, "bad --since: exit 2", r)
        r = touchgate("search", "--outcome", "maybe")
        check(r.returncode == 2, "bad --outcome: exit 2", r)
        missing = env.path("missing")
        r = env.run([tg, "audit", "search", "--dir", missing])
        check(r.returncode == 1 and re.fullmatch(
            r"touchgate: .*missing: cannot read the audit directory: No such file or directory "
            r"\(audit_dir_unreadable\)\n", r.stderr), "missing dir: exit 1 and why", r)
        r = env.run([tg, "audit", "verify", missing])
        check(r.returncode == 2 and "cannot read the audit directory" in r.stderr,
              "verify of a missing dir: exit 2", r)
        os.makedirs(env.path("empty", "x"))
        r = env.run([tg, "audit", "stats", "--dir", env.path("empty")])
        check(r.returncode == 1 and "no audit log here" in r.stderr, "empty dir: exit 1", r)
        r = touchgate()
        check(r.returncode == 2 and "an audit command is required" in r.stderr,
              "audit without a command: exit 2", r)
        r = touchgate("show")
        check(r.returncode == 2, "show without an id: exit 2", r)


if __name__ == "__main__":
    harness.scenario(main)
