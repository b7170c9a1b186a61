#!/usr/bin/env python3
"""A configured target that never answers the TCP handshake (a loopback listener with a full
accept queue: Linux drops further SYNs) and [server] connect_timeout = 8s: `ssh -J gw db2` ends
after about 8 s with target_connect_failed and "no answer within", while another client of the
same (single) worker reaches the live target meanwhile; the gateway keeps serving."""

import datetime
import re
import socket
import subprocess
import time

import harness
from harness import assert_ok, check

TIMEOUT = 8.0


def unanswering_listener():
    """A listening socket on 127.0.0.1 that answers no further SYN: backlog 0 and one connection
    (never accepted) filling its accept queue. Returns (listener, filler, port)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=5)
    # Check that the kernel does drop the next SYN, so that the scenario tests what it says.
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(1.5)
    try:
        probe.connect(("127.0.0.1", port))
        raise harness.HarnessError("a listener with a full accept queue answered a handshake")
    except socket.timeout:
        pass
    finally:
        probe.close()
    return listener, filler, port


def log_time(event):
    """The time of a gateway log line (its ts= field), in seconds."""
    return datetime.datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def main():
    with harness.Env("connect_timeout") as env:
        listener, filler, port = unanswering_listener()
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        target = env.start_target([ca])
        gw = env.start_gateway([ca], targets=[target, ("db2", f"127.0.0.1:{port}")],
                               connect_timeout=f"{TIMEOUT:.0f}s", server_extra="workers = 1")
        config = env.client_config(gw, key, cert, target=target)
        # The outer ssh's ConnectTimeout (10 s in the harness) also bounds the wait for db2's
        # banner: longer here, so that the gateway's answer is what ends the login.
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(f"Host db2\n  ConnectTimeout {TIMEOUT + 20:.0f}\n\n" + text)

        stuck = env.spawn(env.ssh_argv(config, "db2", "echo no"), stdin=subprocess.DEVNULL)
        spawned = time.monotonic()
        # The gateway is connecting to db2 (the touch has passed).
        gw.wait_for_log(r"event=access_granted\b.*\btarget=db2\b", timeout=20)
        granted = time.monotonic()

        # The same worker serves another login meanwhile.
        r = env.ssh(config, "target", "echo meanwhile")
        assert_ok(r, "meanwhile\n")
        check(stuck.poll() is None and not gw.events("channel_failed"),
              f"the login to db2 ended before the other one ({r.elapsed:.1f} s) could be served "
              f"within connect_timeout = {TIMEOUT:.0f} s", r)

        stuck.wait(timeout=TIMEOUT + 25)
        took = time.monotonic() - spawned
        r = harness.Result(stuck.args, stuck.returncode, stuck.stdout.read().decode(),
                           stuck.stderr.read().decode(errors="replace"), took)
        env.results.append(r)
        harness.assert_refused(r, "target_connect_failed", gw)
        check(re.search(rf"cannot reach target db2 \(127\.0\.0\.1:{port}\): no answer within "
                        r"\d+ s", r.stderr),
              "expected the reason 'no answer within N s' in the client's stderr", r)
        check(time.monotonic() - granted >= TIMEOUT - 1.0,
              f"the client gave up before connect_timeout = {TIMEOUT:.0f} s", r)

        # By the gateway's clock: the attempt failed about connect_timeout after it began.
        failed = [e for e in gw.events("channel_failed") if e.get("target") == "db2"]
        check(len(failed) == 1 and failed[0].get("code") == "target_connect_failed",
              f"expected one channel_failed for db2, got {failed}")
        check(not any(e.get("target") == "db2" for e in gw.events("channel_open")),
              "a channel to db2 was reported open")
        granted_at = [log_time(e) for e in gw.events("access_granted") if e.get("target") == "db2"]
        waited = log_time(failed[0]) - granted_at[0]
        check(TIMEOUT - 0.05 <= waited < TIMEOUT + 3,
              f"the gateway gave up {waited:.2f} s after granting access, connect_timeout is "
              f"{TIMEOUT:.0f} s")

        r = env.ssh(config, "target", "echo still-fine")
        assert_ok(r, "still-fine\n")
        filler.close()
        listener.close()


if __name__ == "__main__":
    harness.scenario(main)
