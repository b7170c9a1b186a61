#!/usr/bin/env python3
"""Reload to a stricter policy while a session runs:
- without [policy] reevaluate, the running session carries on; a new connection is decided by
  the new policy (production now needs touch+pin, which the user's PIV-kind key cannot give:
  factor_too_weak before any touch);
- with [policy] reevaluate = true, the reload re-checks the running channel and closes it with
  policy_revoked, and the client is told why;
- a reload that removes the user's rule altogether denies new connections (policy_no_match);
- a reload with a revocation list that lists the user's certificate (and reevaluate) ends the
  running session with cert_revoked, and new logins are refused."""

import re
import select

import harness
from harness import assert_refused, check, read_text

RULE = """
[[rule]]
id = "prod"
principals = ["alice"]
targets = ["db1"]
factor = {factor}
"""


def read_line(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def main():
    with harness.Env("policy_reload") as env:
        w = env.world(rules=RULE.format(factor='"touch"'))
        config = w.gw.config
        original = read_text(config)

        def reload(text, generation):
            with open(config, "w") as f:
                f.write(text)
            r = env.touchgate(w.gw, "reload")
            check(r.returncode == 0, "touchgate reload failed", r)
            w.gw.wait_for_log(rf"event=reload_ok generation={generation} ")

        session = env.spawn(env.ssh_argv(w.config, "target",
                                         "echo started; read word; echo got-$word"))
        line = read_line(session.stdout, 20)
        check(line == b"started\n", f"the session did not start (read {line!r})")

        # Stricter, without reevaluate: the session stays; new connections need touch+pin.
        stricter = original.replace('factor = "touch"', 'factor = ["touch+pin"]', 1)
        check(stricter != original, "the test's policy text did not change")
        reload(stricter, 2)
        r = env.ssh(w.config, "target", "echo must-not-run")
        assert_refused(r, "factor_too_weak", w.gw)
        check("rule prod requires touch+pin" in r.stderr, "expected the rule and factor", r)
        check(session.poll() is None, "the running session was closed without reevaluate")

        # The same policy with reevaluate: the running channel is re-checked and closed.
        reload(stricter + "\n[policy]\nreevaluate = true\n", 3)
        w.gw.wait_for_log(r"event=channel_revoked .*rule=prod .*reason=\"rule prod now requires "
                          r"touch\+pin\"")
        out, err = session.communicate(timeout=20)
        err = err.decode(errors="replace")
        check(session.returncode != 0 and b"got-" not in out,
              f"the revoked session went on: {session.returncode} {out!r} {err!r}")
        check(re.search(r"touchgate: the reloaded policy no longer allows this channel: rule prod "
                        r"now requires touch\+pin \(policy_revoked\)", err),
              f"the client was not told why its session ended: {err!r}")

        # No rule for alice at all: deny by default for new connections.
        reload(original.replace('principals = ["alice"]', 'principals = ["bob"]', 1), 4)
        r = env.ssh(w.config, "target", "echo must-not-run")
        assert_refused(r, "policy_no_match", w.gw)

        # Back to the first policy, with reevaluate; a session; then the certificate revoked.
        allowing = original + "\n[policy]\nreevaluate = true\n"
        reload(allowing, 5)
        session = env.spawn(env.ssh_argv(w.config, "target",
                                         "echo started; read word; echo got-$word"))
        line = read_line(session.stdout, 20)
        check(line == b"started\n", f"the second session did not start (read {line!r})")
        krl = env.make_krl("revoked", ca=w.ca, key_ids=["alice@sso"])
        reload(allowing.replace("[trust]\n", f'[trust]\nrevoked_keys = "{krl}"\n', 1), 6)
        out, err = session.communicate(timeout=20)
        err = err.decode(errors="replace")
        check(session.returncode != 0 and b"got-" not in out and "(cert_revoked)" in err,
              f"the session of a revoked certificate went on: {session.returncode} {out!r} "
              f"{err!r}")
        w.gw.wait_for_log(r"event=certificate_no_longer_valid .*code=cert_revoked")
        r = env.ssh(w.config, "target", "echo must-not-run")
        assert_refused(r, "cert_revoked", w.gw)
        check(w.gw.alive(), "touchgated exited")


if __name__ == "__main__":
    harness.scenario(main)
