#!/usr/bin/env python3
"""Terminating mode: `ssh gw db9 COMMAND` and `ssh -tt gw db9` — the gateway logs in to the
target itself with a certificate it mints (signed by its own CA, a key in a SoftHSM2 token whose
public key `touchgate ca pubkey` prints for the target's TrustedUserCAKeys), after the policy for
the action and a touch. The command's stdout, stderr and exit status come back; the
user's agent never reaches the target; the target's log shows the minted certificate's key id
touchgate:<conn>:alice; an interactive shell under a pty is recorded (asciicast) with its
SHA-256 in the audit log, and altering the recording makes `touchgate audit verify` report it.
Only the environment variables [terminating] env allows reach the target.
Refusals: an action the rule does not grant (sftp), a target host key that does not match the
pinned one (audited as upstream_refused; a pinned key of another type than the target has is a
mismatch naming both types), a target that is down, the token pulled out (ProxyJump still works;
terminating mode again once it is back), a wrong PIN."""

import hashlib
import json
import os
import re
import time

import harness
from harness import check


def main():
    with harness.Env("terminating", deadline=110) as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        # The gateway's own CA: a P-256 key in a SoftHSM2 token.
        token = env.gateway_ca_token("tg-pin-Qx7")
        hsm, pin_file = token.dir, token.pin_file
        wrong_pin = os.path.join(hsm, "wrong-pin")
        with open(os.open(wrong_pin, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("tg-wrong-Zk4\n")
        target = env.start_target([ca], name="db9", sshd_extra="AcceptEnv TG_*\n")
        host_pub = harness.read_text(os.path.join(os.path.dirname(target.log),
                                                  "ssh_host_ed25519_key.pub")).strip()
        other = env.make_user_key("not-the-host-key")
        wrong_pub = harness.read_text(other.pub).strip()
        other_type = env.make_user_key("an-ecdsa-host-key", key_type="ecdsa")
        ecdsa_pub = harness.read_text(other_type.pub).strip()
        rules = f'''[[rule]]
id = "ops"
principals = ["alice"]
targets = ["db9", "db8", "db10", "down"]
actions = ["jump", "shell", "exec"]
remote_user = "{env.login}"

[[rule]]
id = "brief"
principals = ["alice"]
targets = ["db5", "db6"]
actions = ["exec"]
max_session = "2s"
remote_user = "{env.login}"

[[rule]]
id = "files"
principals = ["alice"]
targets = ["db7"]
actions = ["sftp"]
remote_user = "{env.login}"
'''
        ca_section = token.config
        extra = ca_section + f'''
[terminating]
env = ["TG_ALLOWED", "TG_PREFIX_*"]

[[target]]
name = "db9"
address = "{target.address}"
host_key = "{host_pub}"

[[target]]
name = "db7"
address = "{target.address}"
host_key = "{host_pub}"

[[target]]
name = "db6"
address = "{target.address}"
trust_on_first_use = true

[[target]]
name = "db5"
address = "{target.address}"
host_key = "{host_pub}"

[[target]]
name = "db8"
address = "{target.address}"
host_key = "{wrong_pub}"

[[target]]
name = "db10"
address = "{target.address}"
host_key = "{ecdsa_pub}"

[[target]]
name = "down"
address = "127.0.0.1:{harness.free_port()}"
host_key = "{host_pub}"
'''
        gw = env.start_gateway([ca], rules=rules, extra=extra)
        agent = env.touch_agent_for(gw, "alice")
        config = env.client_config(gw, key, cert, target=target, name="ssh_config")
        agent_env = {"SSH_AUTH_SOCK": agent.sock}

        # The target trusts the gateway's CA: the line `touchgate ca pubkey` prints.
        r = env.trust_gateway_ca(gw, target)
        check(r.returncode == 0 and r.stdout.startswith("ecdsa-sha2-nistp256 ") and
              r.stdout.rstrip().endswith(" touchgate-ca@gw") and "pkcs11:" in r.stderr,
              "touchgate ca pubkey", r)

        # -- exec: output, stderr and exit status come back ----------------------------------
        r = env.ssh(config, "gw", "db9 echo out; echo err >&2; echo agent=${SSH_AUTH_SOCK:-none}; "
                    "exit 3", jump=None, extra_env=agent_env)
        check(r.returncode == 3, "the target's exit status does not come back", r)
        check(r.stdout == "out\nagent=none\n", "stdout (and no agent on the target)", r)
        check("err" in r.stderr, "stderr does not come back", r)
        sshd_log = target.log_text()
        check(re.search(r"ID touchgate:[0-9a-f]{16}-\d+:alice \(serial \d+\)", sshd_log),
              "the target did not see the minted certificate's key id", sshd_log[-2000:])
        # The gateway's own connection to the target ends with the session.
        def gateway_to_target():
            r = env.run(["ss", "-Htnp", "state", "established", "dst", target.address])
            return [l for l in r.stdout.splitlines() if f"pid={gw.pid}," in l]
        harness.wait_until(lambda: not gateway_to_target(), 5,
                           "the gateway to close its connection to the target")
        decision = gw.wait_for_audit("policy_decision", outcome="allow", action="exec")
        check(decision["target"] == "db9" and decision["remote_user"] == env.login,
              f"policy_decision: {decision}")
        opened = gw.wait_for_audit("channel_open", action="exec")
        check(opened["upstream_key_id"].startswith("touchgate:") and opened["upstream_serial"] > 0
              and opened["command"].startswith("echo out"), f"channel_open: {opened}")

        # -- bulk both ways: an upload larger than any window, and a download ------------------
        blob = os.urandom(12 * 1024 * 1024)
        r = env.run(env.ssh_argv(config, "gw", "db9 sha256sum; head -c 6000000 /dev/zero | wc -c",
                                 jump=None), input=blob, extra_env=agent_env, binary=True,
                    timeout=60)
        check(r.returncode == 0 and
              r.stdout.decode().split()[0] == hashlib.sha256(blob).hexdigest(),
              "a 12 MiB upload through terminating mode arrives whole", r)

        # -- an interactive shell under a pty, recorded ----------------------------------------
        r = env.run(env.ssh_argv(config, "gw", "db9", jump=None)[:1] + ["-tt"] +
                    env.ssh_argv(config, "gw", "db9", jump=None)[1:],
                    input=b"echo hello-$((6*7))\nexit 0\n", extra_env=agent_env)
        check(r.returncode == 0 and "hello-42" in r.stdout, "the shell did not run", r)
        harness.wait_until(lambda: len(gw.audit_records("recording_closed")) == 3, 10,
                           "the recordings of the two execs and the shell")
        exec_rec, _, rec = gw.audit_records("recording_closed")
        with open(exec_rec["file"], encoding="utf-8") as f:
            check("out" in f.read(), "the exec's output is recorded too")
        check(rec["size"] > 0 and re.fullmatch(r"[0-9a-f]{64}", rec["sha256"]),
              f"recording_closed: {rec}")
        with open(rec["file"], encoding="utf-8") as f:
            lines = f.read().splitlines()
        header = json.loads(lines[0])
        check(header["version"] == 2 and header["touchgate"]["target"] == "db9" and
              header["touchgate"]["user"] == "alice", f"recording header: {lines[0]}")
        output = "".join(json.loads(l)[2] for l in lines[1:] if json.loads(l)[1] == "o")
        check("hello-42" in output, f"the recording does not hold the session's output: {lines[:6]}")
        r = env.touchgate(gw, "audit", "verify")
        check(r.returncode == 0, "verify with an intact recording", r)
        with open(rec["file"], "a", encoding="utf-8") as f:
            f.write('[99.0, "o", "forged"]\n')
        r = env.touchgate(gw, "audit", "verify")
        check(r.returncode == 1 and "recording_modified" in r.stdout,
              "verify does not catch an altered recording", r)

        # -- [terminating] env: only the variables it allows reach the target -----------------
        argv = env.ssh_argv(config, "gw", "db9 echo ${TG_ALLOWED:-unset} ${TG_PREFIX_X:-unset} "
                            "${TG_DENIED:-unset}", jump=None)
        argv[1:1] = ["-o", "SetEnv=TG_ALLOWED=yes TG_PREFIX_X=prefixed TG_DENIED=leaked"]
        r = env.run(argv, extra_env=agent_env)
        check(r.returncode == 0 and r.stdout == "yes prefixed unset\n",
              "TG_ALLOWED and TG_PREFIX_* are allowed, TG_DENIED is not", r)

        # -- refusals -------------------------------------------------------------------------
        r = env.ssh(config, "gw", "db8 true", jump=None, extra_env=agent_env)
        check(r.returncode == 255 and "(upstream_host_key_mismatch)" in r.stderr,
              "a target with another host key must be refused", r)
        host_fp = env.run(["ssh-keygen", "-lf", "-"], input=host_pub.encode(),
                          check=True).stdout.split()[1]
        wrong_fp = env.run(["ssh-keygen", "-lf", other.pub], check=True).stdout.split()[1]
        refused = gw.wait_for_audit("upstream_refused", target="db8")
        check(refused["outcome"] == "deny" and refused["reason"] == "upstream_host_key_mismatch"
              and host_fp in refused["message"] and wrong_fp in refused["message"],
              f"upstream_refused must name the presented and the pinned key: {refused}")
        check(not [o for o in gw.audit_records("channel_open") if o["target"] == "db8"],
              "a refused target must have no channel_open")
        # A pinned key of another type than the target has: a mismatch naming both types.
        r = env.ssh(config, "gw", "db10 true", jump=None, extra_env=agent_env)
        check(r.returncode == 255 and "(upstream_host_key_mismatch)" in r.stderr and
              "has no ecdsa-sha2-nistp256 host key" in r.stderr and
              f"presented ssh-ed25519 {host_fp}" in r.stderr,
              "a pinned ECDSA key for an Ed25519-only target must be a host key mismatch", r)
        r = env.ssh(config, "gw", "down true", jump=None, extra_env=agent_env)
        check(r.returncode == 255 and "(target_connect_failed)" in r.stderr,
              "a target that is down", r)
        r = env.run(["sftp", "-F", config, "-b", "-", "alice+db9@gw"], input=b"ls\n",
                    extra_env=agent_env)
        check(r.returncode != 0, "sftp is not an action of the rule: refused", r)
        denied = gw.wait_for_audit("policy_decision", outcome="deny", action="sftp")
        check(denied["reason"] == "policy_no_match", f"sftp decision: {denied}")

        # -- sftp (login PRINCIPAL+TARGET) over a ControlMaster that forwards the agent: sftp
        # itself never forwards one ---------------------------------------------------------
        payload = os.urandom(300000)
        src = env.path("payload.bin")
        with open(src, "wb") as f:
            f.write(payload)
        sock = env.path("mux.sock")
        r = env.run(["ssh", "-F", config, "-M", "-S", sock, "-N", "-f", "alice+db7@gw"],
                    extra_env=agent_env)
        check(r.returncode == 0, "the ControlMaster did not start", r)
        batch = f"put {src} tg-sftp-test.bin\nget tg-sftp-test.bin {src}.back\nrm tg-sftp-test.bin\n"
        r = env.run(["sftp", "-F", config, "-o", f"ControlPath={sock}", "-b", "-",
                     "alice+db7@gw"], input=batch.encode(), extra_env=agent_env)
        check(r.returncode == 0, "sftp put/get through the gateway", r)
        with open(src + ".back", "rb") as f:
            check(f.read() == payload, "the file came back altered")
        env.run(["ssh", "-F", config, "-S", sock, "-O", "exit", "alice+db7@gw"])
        sftp_open = gw.wait_for_audit("channel_open", action="sftp")
        check(sftp_open["target"] == "db7", f"sftp channel_open: {sftp_open}")
        closed = gw.wait_for_audit("channel_closed", action="sftp", target="db7")
        check(closed["bytes_up"] > 300000 and closed["bytes_down"] > 300000,
              f"sftp bytes: {closed}")
        # The operation log: one record per file handle and per change, not a byte dump.
        ops = [r for r in gw.audit_records("sftp_op") if r["target"] == "db7"]
        writes = [o for o in ops if o["op"] == "open" and o["path"].endswith("/tg-sftp-test.bin")
                  and o["bytes_written"] == len(payload)]
        reads = [o for o in ops if o["op"] == "open" and o["path"].endswith("/tg-sftp-test.bin")
                 and o["bytes_read"] == len(payload)]
        removed = [o for o in ops if o["op"] == "remove" and o["ok"]]
        check(writes and reads and removed and all(o["ok"] for o in writes + reads),
              f"sftp operation log: {ops}")
        check("open=" in closed.get("sftp_requests", ""), f"sftp summary: {closed}")

        # -- client-config tells users how to reach terminating mode, sftp included -----------
        r = env.touchgate(gw, "client-config", "--gateway", "gw.example.com")
        check(r.returncode == 0 and "# Terminating mode" in r.stdout and
              "#   ssh -t gw TARGET" in r.stdout and
              "#   ssh -fNM -S ~/.ssh/tg-%C PRINCIPAL+TARGET@gw\n" in r.stdout and
              "#   sftp -o ControlPath=~/.ssh/tg-%C PRINCIPAL+TARGET@gw\n" in r.stdout,
              "client-config with a [ca] and terminating rules", r)

        # -- sftp on its own forwards no agent (even with ForwardAgent yes): the refusal says
        # what works instead -----------------------------------------------------------------
        r = env.run(["sftp", "-F", config, "-b", "-", "alice+db7@gw"], input=b"ls\n",
                    extra_env=agent_env)
        check(r.returncode != 0 and "(mfa_no_agent)" in r.stderr and
              "sftp and scp never forward one" in r.stderr and
              "ssh -fNM -S ~/.ssh/tg-%C alice+db7@GATEWAY" in r.stderr,
              "sftp without an agent: the refusal must explain the ControlMaster way", r)

        # -- `ssh gw`: the targets open to this user and how to reach them ------------------------
        r = env.ssh(config, "gw", None, jump=None)
        check(r.returncode == 0 and re.search(r"db9\s+jump shell exec\s", r.stdout) and
              re.search(r"db7\s+sftp\s", r.stdout) and "ssh -t gw TARGET" in r.stdout and
              "sftp alice+TARGET@gw" in r.stdout and "down" in r.stdout,
              "ssh gw lists the targets open to alice", r)

        # -- a rule's max_session ends a terminating session too --------------------------------
        r = env.ssh(config, "gw", "db5 sleep 20", jump=None, extra_env=agent_env, timeout=15)
        check(r.returncode == 255 and "(session_time_limit)" in r.stderr and r.elapsed < 10,
              "max_session must end the session", r)

        # -- trust on first use: the first key is recorded, a different one later refused -------
        r = env.ssh(config, "gw", "db6 echo tofu", jump=None, extra_env=agent_env)
        check(r.returncode == 0 and r.stdout == "tofu\n", "first use of db6", r)
        known = os.path.join(os.path.dirname(gw.config), "state", "known_hosts")
        line = harness.read_text(known).strip()
        check(line == "db6 " + " ".join(host_pub.split()[:2]), f"known_hosts: {line!r}")
        first = gw.wait_for_audit("host_key_first_use", target="db6")
        check(first["key_fp"].startswith("SHA256:"), f"host_key_first_use: {first}")
        with open(known, "w") as f:
            f.write("db6 " + " ".join(wrong_pub.split()[:2]) + "\n")
        r = env.ssh(config, "gw", "db6 true", jump=None, extra_env=agent_env)
        check(r.returncode == 255 and "(upstream_host_key_mismatch)" in r.stderr,
              "a changed host key after first use", r)

        # -- the token pulled out: terminating mode refused, ProxyJump goes on ----------------
        os.rename(os.path.join(hsm, "tokens"), os.path.join(hsm, "tokens-away"))
        r = env.ssh(config, "gw", "db9 true", jump=None, extra_env=agent_env)
        check(r.returncode == 255 and "(pkcs11_token_missing)" in r.stderr,
              "a missing token must be named", r)
        r = env.ssh(config, "target", "echo jump-still-works")
        check(r.returncode == 0 and r.stdout == "jump-still-works\n", "ProxyJump without token", r)
        os.rename(os.path.join(hsm, "tokens-away"), os.path.join(hsm, "tokens"))
        r = env.ssh(config, "gw", "db9 echo back", jump=None, extra_env=agent_env)
        check(r.returncode == 0 and r.stdout == "back\n", "the token is back", r)
        check(gw.alive(), "touchgated died")

        # -- the recording size limit with on_cap = "end" ends the session ----------------------
        gw3 = env.start_gateway([ca], rules=rules, name="gw3",
                                extra=extra + '\n[recording]\nmax_size = "1M"\non_cap = "end"\n')
        agent3 = env.touch_agent_for(gw3, "alice")
        config3 = env.client_config(gw3, key, cert, name="ssh_config-gw3")
        r = env.ssh(config3, "gw", "db9 head -c 3000000 /dev/zero | base64", jump=None,
                    extra_env={"SSH_AUTH_SOCK": agent3.sock})
        check(r.returncode != 0 and "(recording_cap)" in r.stderr and len(r.stdout) < 2000000,
              "a session past the recording limit must end", r)
        capped = gw3.wait_for_audit("recording_closed")
        check(capped["capped"] is True and capped["size"] <= 1 << 20, f"capped: {capped}")

        # -- a wrong PIN: the gateway starts, terminating mode is refused with the reason ------
        gw2 = env.start_gateway([ca], rules=rules, name="gw2",
                                extra=extra.replace(pin_file, wrong_pin))
        gw2.wait_for_log(r"event=ca_unavailable\b.*code=pkcs11_login_failed")
        check("tg-wrong-Zk4" not in gw2.log_text() and "tg-pin-Qx7" not in gw2.log_text(),
              "a PIN reached the log")
        env.touch_agent_for(gw2, "alice")
        agent2 = env.touch_agent_for(gw2, "alice")
        config2 = env.client_config(gw2, key, cert, name="ssh_config-gw2")
        r = env.ssh(config2, "gw", "db9 true", jump=None, extra_env={"SSH_AUTH_SOCK": agent2.sock})
        check(r.returncode == 255 and "(pkcs11_login_failed)" in r.stderr
              and "CKR_PIN_INCORRECT" in r.stderr, "wrong PIN", r)
        # A refused PIN is not tried again by itself (each try counts towards the token's
        # lockout): even with the right PIN in the file now, past the retry interval, the login
        # is refused until a restart.
        with open(wrong_pin, "w") as f:
            f.write("tg-pin-Qx7\n")
        time.sleep(5.5)
        r = env.ssh(config2, "gw", "db9 true", jump=None, extra_env={"SSH_AUTH_SOCK": agent2.sock})
        check(r.returncode == 255 and "(pkcs11_login_failed)" in r.stderr, "wrong PIN again", r)
        check("event=ca_ready" not in gw2.log_text(), "a refused PIN was tried again", r)


if __name__ == "__main__":
    harness.scenario(main)
