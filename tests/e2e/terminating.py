#!/usr/bin/env python3
"""Terminating mode: `ssh gw db9 COMMAND` and `ssh -tt gw db9` — the gateway logs in to the
target itself with a certificate it mints (signed by its own CA, here a key file), after the
policy for the action and a touch. The command's stdout, stderr and exit status come back; the
user's agent never reaches the target; the target's log shows the minted certificate's key id
touchgate:<conn>:alice; an interactive shell under a pty is recorded (asciicast) with its
SHA-256 in the audit log, and altering the recording makes `touchgate audit verify` report it.
Refusals: an action the rule does not grant, a target host key that does not match the pinned
one, a target that is down."""

import json
import os
import re
import types

import harness
from harness import check


def main():
    with harness.Env("terminating", deadline=110) as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        # The gateway's own CA (a key file: the explicit fallback to a token).
        gwca_key = env.path("gwca", "ca")
        os.makedirs(os.path.dirname(gwca_key), exist_ok=True)
        env.run(["ssh-keygen", "-q", "-t", "ecdsa", "-m", "PEM", "-N", "", "-C", "gw-ca",
                 "-f", gwca_key], check=True)
        gwca = types.SimpleNamespace(pub=gwca_key + ".pub", name="gwca")
        target = env.start_target([ca, gwca], name="db9")
        host_pub = harness.read_text(os.path.join(os.path.dirname(target.log),
                                                  "ssh_host_ed25519_key.pub")).strip()
        other = env.make_user_key("not-the-host-key")
        wrong_pub = harness.read_text(other.pub).strip()
        rules = f'''[[rule]]
id = "ops"
principals = ["alice"]
targets = ["db9", "db8", "down"]
actions = ["jump", "shell", "exec"]
remote_user = "{env.login}"
'''
        extra = f'''[ca]
key_file = "{gwca_key}"

[[target]]
name = "db9"
address = "{target.address}"
host_key = "{host_pub}"

[[target]]
name = "db8"
address = "{target.address}"
host_key = "{wrong_pub}"

[[target]]
name = "down"
address = "127.0.0.1:{harness.free_port()}"
host_key = "{host_pub}"
'''
        gw = env.start_gateway([ca], rules=rules, extra=extra)
        agent = env.touch_agent_for(gw, "alice")
        config = env.client_config(gw, key, cert, name="ssh_config")
        agent_env = {"SSH_AUTH_SOCK": agent.sock}

        # -- exec: output, stderr and exit status come back ----------------------------------
        r = env.ssh(config, "gw", "db9 echo out; echo err >&2; echo agent=${SSH_AUTH_SOCK:-none}; "
                    "exit 3", jump=None, extra_env=agent_env)
        check(r.returncode == 3, "the target's exit status does not come back", r)
        check(r.stdout == "out\nagent=none\n", "stdout (and no agent on the target)", r)
        check("err" in r.stderr, "stderr does not come back", r)
        sshd_log = target.log_text()
        check(re.search(r"ID touchgate:[0-9a-f]{16}-\d+:alice \(serial \d+\)", sshd_log),
              "the target did not see the minted certificate's key id", sshd_log[-2000:])
        decision = gw.wait_for_audit("policy_decision", outcome="allow", action="exec")
        check(decision["target"] == "db9" and decision["remote_user"] == env.login,
              f"policy_decision: {decision}")
        opened = gw.wait_for_audit("channel_open", action="exec")
        check(opened["upstream_key_id"].startswith("touchgate:") and opened["upstream_serial"] > 0
              and opened["command"].startswith("echo out"), f"channel_open: {opened}")

        # -- an interactive shell under a pty, recorded ----------------------------------------
        r = env.run(env.ssh_argv(config, "gw", "db9", jump=None)[:1] + ["-tt"] +
                    env.ssh_argv(config, "gw", "db9", jump=None)[1:],
                    input=b"echo hello-$((6*7))\nexit 0\n", extra_env=agent_env)
        check(r.returncode == 0 and "hello-42" in r.stdout, "the shell did not run", r)
        harness.wait_until(lambda: len(gw.audit_records("recording_closed")) == 2, 10,
                           "the recordings of the exec and the shell")
        exec_rec, rec = gw.audit_records("recording_closed")
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

        # -- refusals -------------------------------------------------------------------------
        r = env.ssh(config, "gw", "db8 true", jump=None, extra_env=agent_env)
        check(r.returncode == 255 and "(upstream_host_key_mismatch)" in r.stderr,
              "a target with another host key must be refused", r)
        r = env.ssh(config, "gw", "down true", jump=None, extra_env=agent_env)
        check(r.returncode == 255 and "(target_connect_failed)" in r.stderr,
              "a target that is down", r)
        check(gw.alive(), "touchgated died")


if __name__ == "__main__":
    harness.scenario(main)
