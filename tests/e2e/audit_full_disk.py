#!/usr/bin/env python3
"""The audit log on a full file system (a small tmpfs this scenario mounts; needs root, else it
is skipped). With [audit] on_failure = "deny" (the default): once the log cannot be written, new
connections are refused with audit_unavailable and the daemon logs why; the records written
before stay intact (the chain holds, nothing half-written); when space is freed the writer
recovers by itself (an audit_recovered record counting the refused records) and logins work
again. With on_failure = "continue" the same outage only logs: logins go on."""

import os
import subprocess
import sys

import harness
from harness import assert_ok, check

DISCONNECT = "touchgate: the gateway cannot write its audit log"


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                   check=True)


def fill(path):
    """Writes a file until the file system is full."""
    fd = os.open(os.path.join(path, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def attempt_until_refused(env, w, attempts=12):
    """Logs in until the gateway refuses for want of its audit log; returns that Result."""
    for _ in range(attempts):
        r = env.ssh(w.config, "target", "echo hello")
        if r.returncode != 0:
            return r
    raise AssertionError(f"no refusal in {attempts} logins on a full audit file system")


def main():
    if os.geteuid() != 0:
        print("SKIP: mounting a tmpfs needs root", file=sys.stderr)
        sys.exit(77)
    with harness.Env("audit_full_disk", deadline=110) as env:
        mounts = []
        try:
            auditfs = env.path("auditfs")
            mount_tmpfs(auditfs, "512k")
            mounts.append(auditfs)
            w = env.world(extra=f'[audit]\ndir = "{auditfs}/log"\n'
                                'checkpoint_interval = "1h"\n')
            log_dir = os.path.join(auditfs, "log")
            assert_ok(env.ssh(w.config, "target", "echo before"), "before\n")
            before = harness.check_audit_chain(log_dir)

            fill(auditfs)
            r = attempt_until_refused(env, w)
            check(r.returncode == 255 and DISCONNECT in r.stderr and
                  "(audit_unavailable)" in r.stderr and r.stdout == "",
                  "the refusal does not name the audit log", r)
            w.gw.wait_for_log(r"event=audit_failing\b.*code=audit_unavailable")
            # Every login is refused while the outage lasts.
            r = env.ssh(w.config, "target", "echo during")
            check(r.returncode == 255 and "(audit_unavailable)" in r.stderr,
                  "a login during the outage was not refused", r)
            check(w.gw.alive(), "touchgated died on a full audit file system")
            # What was written stays whole: the chain holds up to the last complete record.
            during = harness.check_audit_chain(log_dir)
            check(during >= before, "records written before the outage were lost")

            os.unlink(os.path.join(auditfs, "filler"))
            rec = w.gw.wait_for_audit("audit_recovered", timeout=15)
            check(rec["failed_records"] > 0 and rec["error"] != "",
                  f"audit_recovered does not report the outage: {rec}")
            assert_ok(env.ssh(w.config, "target", "echo after"), "after\n")
            w.gw.wait_for_log(r"event=audit_writing_again\b")
            w.gw.stop()
            records = w.gw.audit_records()
            check(harness.check_audit_chain(log_dir) == records[-1]["seq"],
                  "the chain does not hold after the recovery")
            check(records[-1]["event"] == "checkpoint", "no final checkpoint")

            # on_failure = "continue": the outage is logged, access goes on.
            contfs = env.path("contfs")
            mount_tmpfs(contfs, "256k")
            mounts.append(contfs)
            gw2 = env.start_gateway([w.ca], targets=[w.target], name="gw2",
                                    extra=f'[audit]\ndir = "{contfs}/log"\n'
                                          'on_failure = "continue"\n')
            config2 = env.client_config(gw2, w.key, w.cert, target=w.target,
                                        name="ssh_config-gw2")
            assert_ok(env.ssh(config2, "target", "echo one"), "one\n")
            fill(contfs)
            for i in range(6):
                assert_ok(env.ssh(config2, "target", f"echo go{i}"), f"go{i}\n")
            gw2.wait_for_log(r"event=audit_failing\b.*on_failure=continue")
        finally:
            for m in reversed(mounts):
                subprocess.run(["umount", "-l", m], check=False)


if __name__ == "__main__":
    harness.scenario(main)
