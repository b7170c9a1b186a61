#!/usr/bin/env python3
"""Several ProxyJump channels share one gateway connection (OpenSSH connection multiplexing on the
jump host): two sessions through the same connection run at once; a refused target on that
connection is refused for its channel only, and the other channels and the connection survive.
On SIGTERM the idle shared connection (no channel left) is closed at once with a reason, and the
gateway exits without waiting for its drain timeout."""

import os
import re
import signal
import time

import harness
from harness import check


def main():
    with harness.Env("multi_channel") as env:
        w = env.world()
        sock = env.path("mux.sock")
        config = env.client_config(
            w.gw, w.key, w.cert, target=w.target,
            gw_extra=f"  ControlMaster auto\n  ControlPath {sock}\n  ControlPersist no\n")

        # The master: one authenticated connection to the gateway, held open.
        master = env.spawn(["ssh", "-F", config, "-N", "gw"], stdin=None)
        harness.wait_until(lambda: os.path.exists(sock), 20, "the mux socket")

        # A long session on the shared connection, and a second one at the same time.
        long_run = env.spawn(env.ssh_argv(config, "target", "sleep 8; echo long-done"), stdin=None)
        w.gw.wait_for_log(r"event=channel_open ", timeout=20)
        r = env.ssh(config, "target", "echo short-done")
        harness.assert_ok(r, "short-done\n")

        # A target that is not configured, asked through the same connection.
        refused = env.ssh(config, "nosuch", "echo no")
        check(refused.returncode == 255, "expected exit status 255 for the unknown target", refused)
        # The mux client reports a refused channel as "Session open refused by peer"; a refused
        # connection would say "Received disconnect".
        check("refused by peer" in refused.stderr and "Received disconnect" not in refused.stderr,
              "expected the channel (not the connection) to be refused", refused)

        out, err = long_run.communicate(timeout=30)
        check(long_run.returncode == 0 and out == b"long-done\n",
              f"the long session did not survive: {long_run.returncode} {out!r} {err!r}")
        check(master.poll() is None, "the shared gateway connection was closed")

        # All of it happened on one gateway connection.
        log = w.gw.log_text()
        conns = set(re.findall(r"event=channel_open conn=(\d+)", log))
        check(len(conns) == 1, f"expected the channels on one connection, got {sorted(conns)}")
        check(len(re.findall(r"event=channel_open ", log)) == 2, "expected two relayed channels")
        check(re.search(r"event=channel_refused .*code=target_unknown", log) is not None,
              "expected the refusal in the gateway log")
        check(w.gw.alive(), "touchgated is no longer running")

        # SIGTERM: the master holds no channel, so nothing is left to drain (the drain timeout is
        # the default 30 s; the gateway must not wait for it).
        signalled = time.monotonic()
        w.gw.popen.send_signal(signal.SIGTERM)
        status = w.gw.popen.wait(timeout=10)
        check(status == 0, f"touchgated exited with status {status}")
        check(time.monotonic() - signalled < 5, "the idle connection held up the shutdown")
        master.wait(timeout=10)
        err = master.stderr.read().decode(errors="replace")
        check("shutting down" in err, f"the master was not told why it was closed: {err!r}")
        check(re.search(r"event=disconnect conn=\d+ .*code=shutting_down", w.gw.log_text())
              is not None, "expected the drain disconnect in the gateway log")


if __name__ == "__main__":
    harness.scenario(main)
