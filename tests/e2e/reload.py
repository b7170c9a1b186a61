#!/usr/bin/env python3
"""Configuration reload without dropping sessions. A target added to the file is refused
(target_unknown) until `touchgate reload`, then reachable, also on a multiplexed connection
opened before the reload; a file with a syntax error is refused with its line number (by touchgate
itself, by the daemon when asked through --socket, and on SIGHUP), logged as reload_failed, and
the running configuration keeps serving; so is a file whose rule names an unknown group, and one
that `policy check` rejects (a rule that never matches: policy_invalid, the rule's line, by
`touchgate reload` and on SIGHUP; `touchgated -t` exits 1 and touchgated does not start with it);
a lint warning does not stop a reload but is logged and printed, a note is counted; SIGHUP reloads too (the target
is gone again); restart-only settings ([server] workers, an [audit] key, the [ca] key) are named
and kept; a session running across all of it carries on to its end."""

import os
import re
import select
import signal

import harness
from harness import assert_ok, assert_refused, check, read_text


def read_line(stream, timeout):
    """One line from a pipe, or b'' after timeout."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def accepted(gw):
    return len(gw.events("connection_accepted"))


def main():
    with harness.Env("reload") as env:
        w = env.world()
        other = env.start_target([w.ca], name="db2")
        config = w.gw.config
        sock = os.path.join(os.path.dirname(config), "state", "control.sock")
        original = read_text(config)
        db2 = f'\n[[target]]\nname = "db2"\naddress = "{other.address}"\n'

        # A multiplexed connection and a session, both from before any reload.
        cm = env.path("cm")
        mux = env.client_config(w.gw, w.key, w.cert, target=w.target, name="ssh_config-mux",
                                gw_extra=f"  ControlMaster auto\n  ControlPath {cm}\n"
                                         "  ControlPersist 60\n")
        try:
            assert_ok(env.ssh(mux, "target", "echo first"), "first\n")
            session = env.spawn(env.ssh_argv(w.config, "target",
                                             "echo started; read word; echo got-$word"))
            line = read_line(session.stdout, 20)
            check(line == b"started\n", f"the session did not start (read {line!r})")

            r = env.ssh(w.config, "db2", "echo no")
            assert_refused(r, "target_unknown", w.gw)

            # A broken file: refused with its line number; nothing changes. touchgate reads the
            # file first (to find the socket) and stops there; with --socket the daemon is asked
            # and answers the same; SIGHUP fails the same way.
            write(config, original + '\n[[target]]\nname = "db2"\naddress = \n')
            line_error = rf"^touchgate: {re.escape(config)}:\d+:\d+: .+ \(config_invalid\)$"
            r = env.touchgate(w.gw, "reload")
            check(r.returncode == 1 and re.search(line_error, r.stderr, re.M) and
                  "touchgated was not asked to reload" in r.stderr,
                  "a broken configuration was not refused with its line number", r)
            r = env.touchgate(w.gw, "reload", "--socket", sock)
            check(r.returncode == 1 and re.search(line_error, r.stderr, re.M),
                  "touchgated did not refuse a broken configuration with its line number", r)
            failed = rf'code=config_invalid error="{re.escape(config)}:\d+:\d+: '
            w.gw.wait_for_log(rf"event=reload_failed by=control generation=1 {failed}")
            w.gw.popen.send_signal(signal.SIGHUP)
            w.gw.wait_for_log(rf"event=reload_failed by=SIGHUP generation=1 {failed}")
            env.login_works(w)
            assert_refused(env.ssh(w.config, "db2", "echo no"), "target_unknown", w.gw)

            # A rule naming a group that does not exist: the loader refuses it; the daemon, asked
            # through --socket, says so with the line, and keeps its configuration.
            write(config, original + db2 + '\n[[rule]]\nid = "db2-team"\ngroups = ["nosuch"]\n'
                                          'targets = ["db2"]\n')
            r = env.touchgate(w.gw, "reload", "--socket", sock)
            check(r.returncode == 1 and re.search(line_error, r.stderr, re.M) and
                  'unknown group "nosuch"' in r.stderr and
                  "touchgated refused the file and keeps its running configuration" in r.stderr,
                  "touchgated did not refuse a rule with an unknown group", r)
            w.gw.wait_for_log(r"event=reload_failed by=control generation=1 code=config_invalid "
                              r'error=".*unknown group \\"nosuch\\"')

            # A rule that `touchgate policy check` rejects (its ports exclude db2's): the file
            # parses, so touchgate asks, and touchgated refuses it with the rule's line; the
            # target the same file adds stays unknown: the old policy keeps deciding.
            odd = ('\n[[rule]]\nid = "db2-odd-port"\nprincipals = ["alice"]\ntargets = ["db2"]\n'
                   'ports = [1]\n')
            write(config, original + db2 + odd)
            odd_line = (original + db2 + odd).splitlines().index('id = "db2-odd-port"')
            lint_error = (f"{config}:{odd_line}: [db2-odd-port] never matches: ports 1 exclude the "
                          f"port of every target it selects (db2:{other.port}) "
                          "(rule_never_matches)")
            r = env.touchgate(w.gw, "reload")
            check(r.returncode == 1 and
                  f"touchgate: {lint_error} (policy_invalid)\n" in r.stderr and
                  "touchgated refused the file and keeps its running configuration" in r.stderr,
                  "touchgated did not refuse a policy with a lint error", r)
            w.gw.wait_for_log(rf"event=policy_lint by=control file={re.escape(config)} "
                              rf"line={odd_line} rule=db2-odd-port severity=error "
                              r"code=rule_never_matches ")
            w.gw.wait_for_log(r"event=reload_failed by=control generation=1 code=policy_invalid "
                              rf'error="{re.escape(lint_error)}"')
            w.gw.popen.send_signal(signal.SIGHUP)
            w.gw.wait_for_log(r"event=reload_failed by=SIGHUP generation=1 code=policy_invalid ")
            assert_refused(env.ssh(w.config, "db2", "echo no"), "target_unknown", w.gw)
            env.login_works(w)
            # touchgated -t and a start refuse the same file.
            r = env.run([harness.touchgated_path(), "-t", "-f", config], timeout=10)
            check(r.returncode == 1 and f"touchgated: {config}:{odd_line}: error: [db2-odd-port] "
                  "never matches: " in r.stderr and
                  f"touchgated: configuration {config} is invalid: 1 error in its rules "
                  "(policy_invalid)" in r.stderr,
                  "touchgated -t did not refuse a policy with a lint error", r)
            r = env.run([harness.touchgated_path(), "-f", config], timeout=10)
            check(r.returncode == 1 and "(policy_invalid)" in r.stderr and
                  "event=policy_lint by=start " in r.stderr,
                  "touchgated started with a policy with a lint error", r)

            # The target added, a rule that never decides (a warning: the reload goes on), and
            # settings that need a restart changed: [server] workers, an [audit] key, the CA key.
            shadowed = '\n[[rule]]\nid = "db2-again"\nprincipals = ["*"]\ntargets = ["db2"]\n'
            # Two groups from one extension may share members: a note, counted.
            shadowed += ('\n[[group]]\nname = "dev"\nextension = "groups@corp.example"\n'
                         '\n[[group]]\nname = "contractors"\nextension = "groups@corp.example"\n'
                         '\n[[rule]]\nid = "dev-db2"\ngroups = ["dev"]\ntargets = ["db2"]\n'
                         '\n[[rule]]\nid = "no-contractors-db2"\neffect = "deny"\n'
                         'groups = ["contractors"]\ntargets = ["db2"]\n')
            text = (original.replace("[server]\n", "[server]\nworkers = 3\n", 1) + db2 +
                    shadowed + '\n[audit]\ncheckpoint_every = 7\n\n[ca]\nkey_file = "ca.key"\n')
            write(config, text)
            shadowed_line = text.splitlines().index('id = "db2-again"')
            r = env.run([harness.touchgated_path(), "-t", "-f", config], timeout=10)
            check(r.returncode == 0 and f"touchgated: {config}:{shadowed_line}: warning: "
                  "[db2-again] never decides: " in r.stderr and
                  "touchgated: 1 note on the rules (touchgate policy check lists them)\n"
                  in r.stderr and f"touchgated: configuration {config} is valid\n" in r.stderr,
                  "touchgated -t did not accept a file with a warning and a note and say so", r)
            r = env.touchgate(w.gw, "reload")
            check(r.returncode == 0 and
                  r.stdout == "touchgated reloaded its configuration (generation 2)\n",
                  "touchgate reload failed", r)
            restart = "server.workers,audit.checkpoint_every,ca.key_file"
            check("touchgate: warning: changed settings that keep their running values until "
                  f"touchgated restarts: {restart}\n" in r.stderr,
                  "the restart-only settings were not named", r)
            check(f"touchgate: warning: {config}:{shadowed_line}: [db2-again] never decides: rule "
                  "e2e-everyone (line " in r.stderr and "(rule_shadowed)\n" in r.stderr,
                  "the lint warning was not printed", r)
            check("touchgate: 1 note(s) on the rules of the new file (touchgate policy check "
                  "lists them)\n" in r.stderr, "the note was not counted", r)
            w.gw.wait_for_log(rf"event=reload_needs_restart settings={re.escape(restart)} ")
            w.gw.wait_for_log(rf"event=policy_lint_notes by=control file={re.escape(config)} "
                              r"count=1 ")
            w.gw.wait_for_log(rf"event=policy_lint by=control file={re.escape(config)} "
                              rf"line={shadowed_line} rule=db2-again severity=warning "
                              r"code=rule_shadowed ")
            w.gw.wait_for_log(r"event=reload_ok generation=2 by=control targets=2 ")
            assert_ok(env.ssh(w.config, "db2", "echo hello-db2"), "hello-db2\n")

            # The multiplexed connection from before the reload decides its new channels under
            # the new configuration.
            before = accepted(w.gw)
            assert_ok(env.ssh(mux, "db2", "echo mux-db2"), "mux-db2\n")
            check(accepted(w.gw) == before,
                  "the second channel did not go through the multiplexed connection")

            # SIGHUP: the target is gone again.
            write(config, original)
            w.gw.popen.send_signal(signal.SIGHUP)
            w.gw.wait_for_log(r"event=reload_ok generation=3 by=SIGHUP targets=1 ")
            assert_refused(env.ssh(w.config, "db2", "echo no"), "target_unknown", w.gw)

            # The session from before the reloads is still there.
            check(w.gw.alive(), "touchgated exited")
            session.stdin.write(b"through\n")
            session.stdin.close()
            out = session.stdout.read()
            session.wait(timeout=15)
            err = session.stderr.read().decode(errors="replace")
            check(session.returncode == 0 and out == b"got-through\n",
                  f"the session did not survive the reloads: exit status {session.returncode}, "
                  f"stdout {out!r}, stderr {err!r}")
        finally:
            env.run([harness.SSH, "-F", mux, "-O", "exit", "gw"], timeout=10)


if __name__ == "__main__":
    harness.scenario(main)
