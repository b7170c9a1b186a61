#!/usr/bin/env python3
"""The audit log of a live gateway (docs/audit-format.md, section 8). An allowed `ssh -J` session
leaves, in order, connection_accepted, auth_accepted, mfa_challenge, mfa_verified, the allowing
policy_decision, channel_open (with the resolved address), channel_closed (with bytes each way)
and connection_closed; the target is connected only after the decision is on record. The
stored touch proof re-verifies with stock `ssh-keygen -Y verify` (and an altered message does
not). Refusals leave auth_refused / policy_decision deny records with their reason codes.
Admin actions name the admin: `touchgate keys add|revoke` through the running gateway
(via=control, uid from the kernel) and directly when no gateway runs (via=direct); reload and
sessions kill too. After shutdown the last checkpoint verifies with ssh-keygen alone, and the
hash chain holds record by record. With [audit] syslog = true every record also reaches the
syslog socket as an RFC 5424 message."""

import fcntl
import json
import os
import re
import socket
import threading
import time

import harness
from harness import assert_ok, assert_refused, check


def events_of(records):
    return [r["event"] for r in records]


def verify_with_ssh_keygen(env, pub_line, ns, message, armoured, name):
    d = env.path("verify")
    os.makedirs(d, exist_ok=True)
    allowed = os.path.join(d, f"{name}.allowed")
    with open(allowed, "w") as f:
        f.write("signer " + " ".join(pub_line.split()[:2]) + "\n")
    sig = os.path.join(d, f"{name}.sig")
    with open(sig, "w") as f:
        f.write(armoured)
    return env.run(["ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "signer", "-n", ns,
                    "-s", sig], input=message.encode())


def main():
    with harness.Env("audit_gateway") as env:
        syslog_path = env.path("syslog.sock")
        syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        syslog.bind(syslog_path)
        syslog.settimeout(0.2)
        messages = []
        done = threading.Event()

        def drain():  # a syslog daemon reads at once (the kernel queues only a few datagrams)
            while not done.is_set():
                try:
                    messages.append(syslog.recv(65536).decode())
                except socket.timeout:
                    pass
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        w = env.world(extra=f'[audit]\nsyslog = true\nsyslog_socket = "{syslog_path}"\n'
                            'syslog_facility = "local3"\n')
        gw = w.gw

        started = gw.wait_for_audit("gateway_started")
        check(re.fullmatch(r"[0-9a-f]{16}", started["instance"]) is not None,
              "gateway_started names the instance")

        # -- an allowed session ------------------------------------------------------------
        r = env.ssh(w.config, "target", "echo audited")
        assert_ok(r, "audited\n")
        auth = gw.wait_for_audit("auth_accepted", user="alice")
        conn = auth["conn"]
        check(conn.startswith(started["instance"] + "-"), "conn is <instance>-<n>")
        check(auth["outcome"] == "allow" and auth["key_id"] == "alice@sso" and
              auth["key_fp"].startswith("SHA256:") and auth["cert_fp"].startswith("SHA256:") and
              "alice" in auth["principals"].split(",") and auth["ca"] == "ca-sso" and
              auth["valid_before"].endswith("Z"),
              f"auth_accepted lacks the certificate's identity: {auth}")
        gw.wait_for_audit("connection_closed", conn=conn)
        story = gw.audit_records(conn=conn)
        names = events_of(story)
        expected = ["connection_accepted", "auth_accepted", "mfa_challenge", "mfa_verified",
                    "policy_decision", "channel_open", "channel_closed", "connection_closed"]
        check(names == expected, f"the connection's story is {names}, expected {expected}")
        by = {r["event"]: r for r in story}
        acc = by["connection_accepted"]
        check(acc["client"] == "127.0.0.1" and acc["client_port"] > 0 and
              acc["local"] == f"127.0.0.1:{gw.port}", f"connection_accepted: {acc}")
        dec = by["policy_decision"]
        check(dec["outcome"] == "allow" and dec["rule"] == "e2e-everyone" and
              dec["target"] == "db1" and dec["factor_used"] == "piv" and
              dec["channel"] == 1 and dec["action"] == "jump" and dec["from"] == "127.0.0.1",
              f"policy_decision: {dec}")
        opened = by["channel_open"]
        check(opened["address"] == w.target.address and opened["target"] == "db1",
              f"channel_open: {opened}")
        closed = by["channel_closed"]
        check(closed["bytes_up"] > 0 and closed["bytes_down"] > 0 and
              closed["address"] == w.target.address, f"channel_closed: {closed}")
        check(by["connection_closed"]["channels"] == 1 and
              by["connection_closed"]["user"] == "alice", "connection_closed")

        # -- the touch proof re-verifies with stock ssh-keygen -----------------------------
        touch = by["mfa_verified"]
        check(touch["outcome"] == "allow" and touch["kind"] == "piv" and
              touch["proof"].startswith("-----BEGIN SSH SIGNATURE-----\n") and
              f"connection: {conn}\n" in touch["signed_message"] and
              "target: db1 " in touch["signed_message"], f"mfa_verified: {touch}")
        keys = {k["fingerprint"]: k for k in env.keys_json(gw, "alice")}
        pub = keys[touch["key_fp"]]["public_key"]
        v = verify_with_ssh_keygen(env, pub, touch["namespace"], touch["signed_message"],
                                   touch["proof"], "touch")
        check(v.returncode == 0 and "Good" in v.stdout + v.stderr,
              "ssh-keygen -Y verify does not accept the stored touch proof", v)
        v = verify_with_ssh_keygen(env, pub, touch["namespace"],
                                   touch["signed_message"].replace("alice", "mallory"),
                                   touch["proof"], "touch-altered")
        check(v.returncode != 0, "ssh-keygen -Y verify accepts an altered message", v)

        # -- refusals -----------------------------------------------------------------------
        bad = env.sign(w.key, w.ca, principals=["bob"])
        config = env.client_config(gw, w.key, bad, target=w.target, name="ssh_config-bob")
        r = env.ssh(config, "target", "echo no")
        assert_refused(r, "cert_principal_mismatch", gw)
        refused = gw.wait_for_audit("auth_refused", reason="cert_principal_mismatch")
        check(refused["outcome"] == "deny" and refused["user"] == "alice" and
              refused["key_id"] == "alice@sso" and refused["principals"] == "bob" and
              refused["cert_fp"].startswith("SHA256:") and refused["ca"] == "ca-sso",
              f"auth_refused: {refused}")

        r = env.ssh(w.config, "nosuch", "echo no")
        assert_refused(r, "target_unknown", gw)
        denied = gw.wait_for_audit("policy_decision", outcome="deny")
        check(denied["reason"] == "target_unknown" and denied["factor_used"] == "none" and
              denied["target"] == "nosuch", f"policy_decision deny: {denied}")

        # -- admin actions ----------------------------------------------------------------------
        extra = env.make_user_key("spare")
        fp = env.run(["ssh-keygen", "-lf", extra.pub], check=True).stdout.split()[1]
        env.enroll(gw, "alice", extra, "piv", label="spare")
        added = gw.wait_for_audit("admin_key_added", key_fp=fp)
        check(added["via"] == "control" and added["admin"] == "root" and added["uid"] == 0 and
              added["user"] == "alice" and added["kind"] == "piv" and added["label"] == "spare",
              f"admin_key_added: {added}")
        r = env.touchgate(gw, "keys", "revoke", fp)
        check(r.returncode == 0, "keys revoke", r)
        revoked = gw.wait_for_audit("admin_key_revoked", key_fp=fp)
        check(revoked["status"] == "revoked" and revoked["via"] == "control",
              f"admin_key_revoked: {revoked}")
        r = env.touchgate(gw, "reload")
        check(r.returncode == 0, "reload", r)
        reload = gw.wait_for_audit("admin_reload")
        check(reload["outcome"] == "allow" and reload["via"] == "control" and
              reload["generation"] == 2, f"admin_reload: {reload}")
        r = env.touchgate(gw, "sessions", "kill", "--user", "nobody-here")
        check(r.returncode != 0, "killing no session fails", r)
        kill = gw.wait_for_audit("admin_session_kill")
        check(kill["outcome"] == "deny" and kill["killed"] == 0 and
              kill["request"] == "--user nobody-here", f"admin_session_kill: {kill}")

        # -- shutdown: the final checkpoint, checked with ssh-keygen alone ----------------------
        gw.stop()
        records = gw.audit_records()
        check(records[-1]["event"] == "checkpoint" and
              records[-2]["event"] == "gateway_stopped",
              f"the log does not end in gateway_stopped + checkpoint: {events_of(records[-3:])}")
        cp = records[-1]
        check(cp["head_seq"] == records[-2]["seq"] and cp["head"] == records[-2]["hash"],
              "the checkpoint does not sign the record before it")
        message = f"touchgate-audit-v1\nseq: {cp['head_seq']}\nhash: {cp['head']}\n"
        b64 = cp["sig"]
        armoured = ("-----BEGIN SSH SIGNATURE-----\n" +
                    "\n".join(b64[i:i + 70] for i in range(0, len(b64), 70)) +
                    "\n-----END SSH SIGNATURE-----\n")
        audit_pub = harness.read_text(os.path.join(os.path.dirname(gw.config), "state",
                                                   "audit_key.pub"))
        v = verify_with_ssh_keygen(env, audit_pub, "touchgate-audit", message, armoured, "cp")
        check(v.returncode == 0 and "Good" in v.stdout + v.stderr,
              "ssh-keygen -Y verify does not accept the checkpoint", v)
        n = harness.check_audit_chain(gw.audit_dir())
        check(n == len(records), "chain check read every record")
        r = env.touchgate(gw, "audit", "verify")
        check(r.returncode == 0 and "clean" in r.stdout, "touchgate audit verify: not clean", r)
        r = env.touchgate(gw, "audit", "show", conn, "--json")
        check(r.returncode == 0 and
              [json.loads(line)["event"] for line in r.stdout.splitlines()] == expected,
              "touchgate audit show does not tell the connection's story", r)
        r = env.touchgate(gw, "audit", "search", "--outcome", "deny", "--json")
        check(r.returncode == 0 and
              {json.loads(line)["event"] for line in r.stdout.splitlines()} ==
              {"auth_refused", "policy_decision", "admin_session_kill"},
              "touchgate audit search --outcome deny", r)

        # -- with no gateway running, the CLI writes the record itself --------------------------
        other = env.make_user_key("offline")
        ofp = env.run(["ssh-keygen", "-lf", other.pub], check=True).stdout.split()[1]
        env.enroll(gw, "alice", other, "piv", label="offline")
        records = gw.audit_records()
        direct = [r for r in records if r["event"] == "admin_key_added" and r["key_fp"] == ofp]
        check(len(direct) == 1 and direct[0]["via"] == "direct" and direct[0]["uid"] == 0,
              f"no direct admin_key_added record: {events_of(records[-3:])}")
        check(records[-1]["event"] == "checkpoint", "the CLI closes the log with a checkpoint")

        # -- the syslog copy: one RFC 5424 message per record the gateway wrote ----------------
        time.sleep(0.5)
        done.set()
        reader.join()
        gateway_records = [r for r in records if r["seq"] <= cp["seq"]]
        check(len(messages) == len(gateway_records),
              f"{len(messages)} syslog messages for {len(gateway_records)} records")
        for m, r in zip(messages, gateway_records):
            pri = 19 * 8 + (4 if r.get("outcome") == "deny" else
                            6 if r["event"] in ("checkpoint", "segment_start") else 5)
            head = (f"<{pri}>1 {r['ts']} ")
            check(m.startswith(head) and f" touchgated {w.gw.pid} {r['event']} " in m and
                  f'[touchgate@32473 seq="{r["seq"]}" hash="{r["hash"]}"]' in m,
                  f"syslog message does not frame record {r['seq']}: {m[:200]}")
        check(harness.check_audit_chain(gw.audit_dir()) == len(records), "the chain still holds")

        # -- a change that cannot be recorded does not stand (fail closed) ----------------------
        locked = env.make_user_key("locked")
        lfp = env.run(["ssh-keygen", "-lf", locked.pub], check=True).stdout.split()[1]
        with open(os.path.join(gw.audit_dir(), "audit.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another writer would
            r = env.touchgate(gw, "keys", "add", "--user", "alice", "--kind", "piv", locked.pub)
        check(r.returncode == 1 and "was not enrolled" in r.stderr and
              "revoked at once" in r.stderr and "(audit_locked)" in r.stderr,
              "keys add without an audit record must fail and undo the enrollment", r)
        status = {k["fingerprint"]: k["status"] for k in env.keys_json(gw, "alice")}
        check(status.get(lfp) == "revoked", f"the unrecorded key is {status.get(lfp)}")


if __name__ == "__main__":
    harness.scenario(main)
