#!/usr/bin/env python3
"""Terminating mode's refusals and policy reloads, with the real ssh client:
- `ssh gw nosuch ls`, `ssh gw nosuch` and the login alice+nosuch: a word that is neither a
  target nor a gateway command is refused with target_unknown (exit status 255, a message that
  names the word and says that `ssh gw` lists the targets), audited as a policy_decision deny;
  a gateway command with a stray argument is still an unknown command;
- a reload with [policy] reevaluate = true applies to running terminating sessions as to
  ProxyJump channels: a new max_session ends a session that has run longer (session_time_limit),
  and a rule that now wants a stronger factor than the session's touch closes it
  (policy_revoked, naming the rule and the factor, audited);
- a gateway without [ca] lists only what works: jump, not shell or exec, and says why."""

import re
import select

import harness
from harness import check, read_text


def read_line(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def main():
    with harness.Env("terminating_refusals", deadline=80) as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        token = env.gateway_ca_token("tg-pin-Rf3")
        target = env.start_target([ca], name="db9")
        rules = f'''[[rule]]
id = "ops"
principals = ["alice"]
targets = ["db9"]
actions = ["jump", "shell", "exec"]
remote_user = "{env.login}"

[[rule]]
id = "runner"
principals = ["alice"]
targets = ["db7"]
actions = ["exec"]
remote_user = "{env.login}"
'''
        targets = target.pinned_toml("db9", "db7")
        gw = env.start_gateway([ca], rules=rules,
                               extra=token.config + targets + "\n[policy]\nreevaluate = true\n")
        agent_env = {"SSH_AUTH_SOCK": env.touch_agent_for(gw, "alice").sock}
        config = env.client_config(gw, key, cert, name="ssh_config")
        r = env.trust_gateway_ca(gw, target)
        check(r.returncode == 0, "touchgate ca pubkey", r)

        # -- a word that is neither a target nor a gateway command ----------------------------
        decisions = []
        for command, action in (("nosuch ls -l", "exec"), ("nosuch", "shell")):
            r = env.ssh(config, "gw", command, jump=None)
            check(r.returncode == 255 and r.stdout == "" and
                  '"nosuch" is neither a target of this gateway nor one of its commands '
                  "(whoami, mfa-test, help); 'ssh gw' lists the targets open to you "
                  "(target_unknown)" in r.stderr,
                  f"ssh gw {command}: an unknown target must be refused as target_unknown", r)
            denied = gw.wait_for_audit("policy_decision", outcome="deny", action=action,
                                       target="nosuch")
            check(denied["reason"] == "target_unknown" and denied["rule"] == "" and
                  denied["factor_used"] == "none", f"policy_decision: {denied}")
            decisions.append(denied)
        first, second = decisions
        r = env.run(["ssh", "-F", config, "alice+nosuch@gw", "true"])
        check(r.returncode == 255 and
              "the login alice+nosuch names no target of this gateway; 'ssh gw' lists the "
              "targets open to you (target_unknown)" in r.stderr,
              "the login alice+nosuch must be refused as target_unknown", r)
        denied = harness.wait_until(
            lambda: [d for d in gw.audit_records("policy_decision")
                     if d["outcome"] == "deny" and d["target"] == "nosuch"][2:], 10,
            "the login's policy_decision")
        check(len(denied) == 1 and denied[0]["action"] == "exec" and
              denied[0]["conn"] not in (first["conn"], second["conn"]) and
              denied[0]["reason"] == "target_unknown", f"the login's policy_decision: {denied}")
        check(not gw.audit_records("mfa_challenge"), "an unknown target must not ask for a touch")
        r = env.ssh(config, "gw", "whoami extra", jump=None)
        check(r.returncode == 2 and 'unknown command "whoami extra"' in r.stderr,
              "a gateway command with an argument is an unknown command", r)

        # -- reevaluate: a shorter max_session ends a running session -------------------------
        original = read_text(gw.config)
        generation = [1]

        def reload(text):
            with open(gw.config, "w") as f:
                f.write(text)
            r = env.touchgate(gw, "reload")
            check(r.returncode == 0, "touchgate reload failed", r)
            generation[0] += 1
            gw.wait_for_log(rf"event=reload_ok generation={generation[0]} ")

        def start_session():
            s = env.spawn(env.ssh_argv(config, "gw", "db9 echo started; read word; "
                                       "echo got-$word", jump=None), extra_env=agent_env)
            line = read_line(s.stdout, 20)
            check(line == b"started\n", f"the session did not start (read {line!r})")
            return s

        session = start_session()
        shorter = original.replace('id = "ops"\n', 'id = "ops"\nmax_session = "1s"\n', 1)
        check(shorter != original, "the test's policy text did not change")
        reload(shorter)
        # Its stdin stays open until the gateway has ended it (read would return at EOF).
        gw.wait_for_log(r"event=channel_failed .*target=db9 code=session_time_limit ")
        out, err = session.communicate(timeout=15)
        err = err.decode(errors="replace")
        check(session.returncode == 255 and b"got-" not in out and
              "rule ops allows sessions to db9 of at most 1s (session_time_limit)" in err,
              f"the reloaded max_session must end the session: {session.returncode} {out!r} "
              f"{err!r}")
        gw.wait_for_audit("channel_closed", reason="session_time_limit", target="db9")

        # -- reevaluate: a rule that wants a stronger factor than the touch -------------------
        reload(original)
        session = start_session()
        stronger = original.replace('id = "ops"\n', 'id = "ops"\nfactor = ["touch+pin"]\n', 1)
        reload(stronger)
        gw.wait_for_log(r"event=channel_revoked .*target=db9 .*rule=ops ")
        out, err = session.communicate(timeout=15)
        err = err.decode(errors="replace")
        check(session.returncode == 255 and b"got-" not in out and
              re.search(r"touchgate: the reloaded policy no longer allows this session: rule ops "
                        r"now requires touch\+pin \(policy_revoked\)", err),
              f"a touch too weak for the reloaded rule must end the session: "
              f"{session.returncode} {out!r} {err!r}")
        revoked = gw.wait_for_audit("policy_decision", reason="policy_revoked")
        check(revoked["outcome"] == "deny" and revoked["target"] == "db9" and
              revoked["action"] == "exec" and revoked["rule"] == "ops" and
              revoked["factors_required"] == "touch+pin" and
              revoked["message"] == "rule ops now requires touch+pin", f"revocation: {revoked}")
        gw.wait_for_audit("channel_closed", reason="policy_revoked", target="db9")
        check(gw.alive(), "touchgated died")

        # -- without [ca]: `ssh gw` lists jump only, and says why -----------------------------
        gw2 = env.start_gateway([ca], rules=rules, name="gw2", extra=targets)
        config2 = env.client_config(gw2, key, cert, name="ssh_config-gw2")
        r = env.ssh(config2, "gw", None, jump=None)
        check(r.returncode == 0 and re.search(r"(?m)^\s+db9\s+jump\s+\S", r.stdout) and
              not re.search(r"(?m)^\s+db7\s", r.stdout) and "shell" not in r.stdout.split(
                  "Reach a target")[0] and "ssh -t gw2" not in r.stdout and
              "The policy also allows you shell, exec or sftp on db9, db7, but this gateway "
              "cannot log in to targets itself (no [ca] key is configured)" in r.stdout,
              "without [ca] the listing must show only jump and say why", r)


if __name__ == "__main__":
    harness.scenario(main)
