#!/usr/bin/env python3
"""The audit key in a PKCS#11 token (SoftHSM2), `[audit] pkcs11_uri`. A gateway whose token
refuses the PIN does not start (pkcs11_login_failed, the PIN in no message). With the right PIN
it starts, records the token key's public line in state/audit_key.pub, and after a real `ssh -J`
`touchgate audit verify` (which trusts that file by default) finds the log clean and stock
`ssh-keygen -Y verify` accepts the last checkpoint. The token pulled out while the gateway runs:
logins still work and are recorded, each checkpoint meanwhile is written unsigned and logged as
event=audit_checkpoint_unsigned (reason pkcs11_token_missing); once the token is back, signing
resumes (event=audit_checkpoint_signed_again) and verify reports exactly those unsigned
checkpoints."""

import json
import os
import re
import shutil

import harness
from harness import assert_ok, check

PIN = "246810"


def checkpoint_verifies(env, pub_line, cp, name):
    """Checks checkpoint record cp with ssh-keygen -Y verify as docs/audit-format.md section 4
    does; returns the Result."""
    d = env.path("verify")
    os.makedirs(d, exist_ok=True)
    allowed = os.path.join(d, f"{name}.allowed")
    with open(allowed, "w") as f:
        f.write("audit " + " ".join(pub_line.split()[:2]) + "\n")
    b64 = cp["sig"]
    sig = os.path.join(d, f"{name}.sig")
    with open(sig, "w") as f:
        f.write("-----BEGIN SSH SIGNATURE-----\n" +
                "\n".join(b64[i:i + 70] for i in range(0, len(b64), 70)) +
                "\n-----END SSH SIGNATURE-----\n")
    message = f"touchgate-audit-v1\nseq: {cp['head_seq']}\nhash: {cp['head']}\n"
    return env.run(["ssh-keygen", "-Y", "verify", "-n", "touchgate-audit", "-f", allowed, "-I",
                    "audit", "-s", sig], input=message.encode())


def main():
    with harness.Env("audit_pkcs11") as env:
        hsm = env.softhsm_token(env.path("audit-hsm"), "gw-audit", PIN, "audit")
        os.environ["SOFTHSM2_CONF"] = hsm.conf  # the gateways started below find the token
        pin_file = os.path.join(hsm.dir, "pin")
        with open(os.open(pin_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(PIN + "\n")
        wrong_pin = os.path.join(hsm.dir, "wrong-pin")
        with open(os.open(wrong_pin, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("135791\n")

        def audit_section(pin):
            return ('[audit]\npkcs11_uri = "pkcs11:token=gw-audit;object=audit;type=private"\n'
                    f'pkcs11_module = "{harness.SOFTHSM_MODULE}"\npin_file = "{pin}"\n'
                    'checkpoint_interval = "1s"\n')

        # -- a token that refuses the PIN: no start ------------------------------------------
        ca = env.make_ca("badpin")
        config = env.write_gateway_config([ca], [("db1", "127.0.0.1:22")], name="gw-badpin",
                                          extra=audit_section(wrong_pin),
                                          listen=[f"127.0.0.1:{harness.free_port()}"])
        r = env.run([harness.touchgated_path(), "-f", config], timeout=20,
                    cwd=os.path.dirname(config))
        check(r.returncode != 0 and "pkcs11_login_failed" in r.stderr and
              "audit key" in r.stderr, "touchgated starts although the token refuses the PIN", r)
        check("135791" not in r.stdout + r.stderr and PIN not in r.stdout + r.stderr,
              "a PIN reached touchgated's output", r)

        # -- the right PIN: the token signs, verify and ssh-keygen agree ---------------------
        w = env.world(extra=audit_section(pin_file))
        gw = w.gw
        ready = gw.events("audit_key_ready")
        check(len(ready) == 1 and ready[0]["key"].strip('"').startswith(
            "pkcs11:token=gw-audit;object=audit"), f"event=audit_key_ready: {ready}")
        pub_path = os.path.join(os.path.dirname(gw.config), "state", "audit_key.pub")
        pub_line = harness.read_text(pub_path)
        check(pub_line.startswith("ecdsa-sha2-nistp256 ") and
              pub_line.endswith(" touchgate-audit\n"), f"{pub_path}: {pub_line!r}")
        fp = env.run(["ssh-keygen", "-lf", pub_path], check=True).stdout.split()[1]
        started = gw.wait_for_audit("gateway_started")
        check(started["audit_key_fp"] == fp, f"gateway_started names another key: {started}")

        env.login_works(w)
        closed = gw.wait_for_audit("connection_closed", user="alice")
        # The next checkpoint (at most 1 s later) signs the chain up to the session's end.
        cp = harness.wait_until(
            lambda: next((c for c in gw.audit_records("checkpoint")
                          if c["head_seq"] >= closed["seq"]), None), 10,
            "a checkpoint after the session")
        check(cp["key_fp"] == fp and cp["sig"], f"checkpoint: {cp}")
        v = checkpoint_verifies(env, pub_line, cp, "session")
        check(v.returncode == 0 and "Good \"touchgate-audit\" signature" in v.stdout + v.stderr,
              "ssh-keygen -Y verify does not accept the token's checkpoint", v)
        r = env.touchgate(gw, "audit", "verify")
        check(r.returncode == 0 and "clean" in r.stdout and f"key: pinned, {fp}" in r.stdout,
              "touchgate audit verify (trusting state/audit_key.pub) is not clean", r)

        # -- the token pulled out: records go on, checkpoints unsigned and logged ------------
        away = hsm.tokens + "-away"
        os.rename(hsm.tokens, away)
        os.makedirs(hsm.tokens)
        env.login_works(w)
        gw.wait_for_log(r"event=audit_checkpoint_unsigned\b.*code=pkcs11_token_missing",
                        timeout=10)
        shutil.rmtree(hsm.tokens)
        os.rename(away, hsm.tokens)
        env.login_works(w)
        gw.wait_for_log(r"event=audit_checkpoint_signed_again\b", timeout=10)
        gw.stop()
        check(PIN not in gw.log_text() and "135791" not in gw.log_text(),
              "a PIN reached the gateway's log")

        unsigned_logged = {int(e["seq"]) for e in gw.events("audit_checkpoint_unsigned")}
        records = gw.audit_records()
        unsigned = {c["seq"] for c in records if c["event"] == "checkpoint" and not c["sig"]}
        check(unsigned and unsigned == unsigned_logged,
              f"unsigned checkpoints {unsigned}, logged {unsigned_logged}")
        check(len([c for c in records if c["event"] == "connection_closed"]) == 3,
              "a login while the token was out was not recorded")
        check(records[-1]["event"] == "checkpoint" and records[-1]["sig"],
              "the last checkpoint is not signed")
        check(harness.check_audit_chain(gw.audit_dir()) == len(records), "the chain")
        v = checkpoint_verifies(env, pub_line, records[-1], "last")
        check(v.returncode == 0, "ssh-keygen -Y verify does not accept the last checkpoint", v)
        r = env.touchgate(gw, "audit", "verify", "--json")
        report = json.loads(r.stdout)
        kinds = {f["kind"] for f in report["findings"]}
        seqs = {f["seq"] for f in report["findings"]}
        check(r.returncode == 1 and kinds == {"bad_checkpoint"} and seqs == unsigned,
              f"verify should report exactly the unsigned checkpoints {unsigned}", r)


if __name__ == "__main__":
    main()
