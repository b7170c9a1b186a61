#!/usr/bin/env python3
"""Flow control through the relay (`ssh -W target gw`, a direct-tcpip channel to a plain TCP
server configured as a [[target]]): a fast sender facing a receiver that does not read is held
back, and the gateway's memory stays bounded while it waits.

Upload: the client pushes 256 MiB to a target that accepts and does not read; the client gets
stuck after a small part of it, and touchgated's resident memory grows by less than 32 MiB. Then
the target reads: every byte arrives, same SHA-256.
Download: the target sends 256 MiB to a client that does not read its output; the target gets
stuck the same way, with the same bound. Then the client reads: every byte arrives.

The bound: what the gateway may hold for one channel is the SSH channel window it advertises
(libssh: about 1.3 MB; a client sending beyond it is cut at kMaxChannelBuffered, 4 MiB, see
gateway/direct_tcpip.h), kPendingMax (64 KiB) towards the target and one read of kMaxRead
(64 KiB) towards a client whose window is shut; the rest waits in the kernel's socket buffers
(not counted in VmRSS) and at the sender. 32 MiB leaves room for allocator noise; an unbounded
relay would take in the whole 256 MiB. Under AddressSanitizer, which keeps freed memory in
quarantine (256 MiB by default) so that a new connection alone adds tens of MiB, the bound is
96 MiB.
"""

import hashlib
import os
import socket
import subprocess
import threading
import time

import harness
from harness import check

TOTAL = 256 << 20
CHUNK = 64 << 10
BOUND = 32 << 20
BOUND_ASAN = 96 << 20
HELD_BACK = 64 << 20  # at the stall, at most this much may have left the sender
STALL = 2.0  # seconds without progress that count as "stuck"


class TcpTarget:
    """A plain TCP server on 127.0.0.1 (small socket buffers) that serves one connection in a
    thread: "sink" reads nothing until released, then everything, hashing it; "source" sends
    TOTAL random bytes as fast as the connection takes them, counting and hashing them."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        buf = socket.SO_RCVBUF if mode == "sink" else socket.SO_SNDBUF
        self.sock.setsockopt(socket.SOL_SOCKET, buf, 64 << 10)  # inherited by the accepted one
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.release = threading.Event()
        self.count = 0
        self.digest = hashlib.sha256()
        self.error = None
        self.finished = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            self.sock.settimeout(60)
            conn, _ = self.sock.accept()
            conn.settimeout(60)
            self.accepted.set()
            with conn:
                if self.mode == "sink":
                    self.release.wait(60)
                    while True:
                        data = conn.recv(1 << 20)
                        if not data:
                            break
                        self.count += len(data)
                        self.digest.update(data)
                else:
                    while self.count < TOTAL:
                        chunk = os.urandom(CHUNK)
                        self.digest.update(chunk)
                        conn.sendall(chunk)
                        self.count += len(chunk)
                    conn.shutdown(socket.SHUT_WR)
        except Exception as e:  # noqa: BLE001 - reported by the scenario
            self.error = e
        finally:
            self.sock.close()
            self.finished.set()


def read_all(stream, sink):
    """Reads a pipe to its end in a thread; sink(data) for each piece."""
    def run():
        while True:
            data = stream.read1(1 << 20)
            if not data:
                return
            sink(data)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def stall(progress, gw, what):
    """Waits until progress() stops moving for STALL seconds, sampling the gateway's memory all
    along; returns (progress at the stall, the highest VmRSS seen)."""
    peak = gw.rss()
    last, since = progress(), time.monotonic()
    deadline = time.monotonic() + 40
    while True:
        time.sleep(0.05)
        peak = max(peak, gw.rss())
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= STALL:
            return last, peak
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still moving after 40 s ({now} bytes)")


def under_asan(gw):
    """Whether the daemon runs with AddressSanitizer (its runtime is mapped)."""
    return "libasan" in harness.read_text(f"/proc/{gw.pid}/maps")


def main():
    with harness.Env("relay_backpressure", deadline=110) as env:
        sink = TcpTarget("sink")
        source = TcpTarget("source")
        w = env.world(extra="\n".join(
            f'[[target]]\nname = "{name}"\naddress = "127.0.0.1:{t.port}"\n'
            for name, t in (("sink", sink), ("source", source))))
        env.login_works(w)  # the first connection's one-time allocations happen before the baseline
        bound = BOUND_ASAN if under_asan(w.gw) else BOUND

        def relay(target, stdin):
            argv = [harness.SSH, "-F", w.config, "-W", f"127.0.0.1:{target.port}", "gw"]
            return env.spawn(argv, stdin=stdin)

        # -- upload: the target does not read ---------------------------------------------
        baseline = w.gw.rss()
        client = relay(sink, subprocess.PIPE)
        err = []
        read_all(client.stderr, err.append)
        read_all(client.stdout, lambda data: None)
        sent = {"bytes": 0}
        sent_digest = hashlib.sha256()

        def push():
            try:
                while sent["bytes"] < TOTAL:
                    chunk = os.urandom(CHUNK)
                    sent_digest.update(chunk)
                    client.stdin.write(chunk)
                    client.stdin.flush()
                    sent["bytes"] += len(chunk)
                client.stdin.close()
            except (BrokenPipeError, ValueError) as e:
                sent["error"] = e
        pusher = threading.Thread(target=push, daemon=True)
        pusher.start()
        check(sink.accepted.wait(30), "the gateway did not connect to the sink target")
        held, peak = stall(lambda: sent["bytes"], w.gw, "upload")
        print(f"upload stalled after {held >> 20} MiB; gateway RSS {baseline >> 20} MiB -> "
              f"peak {peak >> 20} MiB")
        check(held < HELD_BACK, f"the client could send {held} bytes to a target that reads "
              f"nothing: the gateway does not hold it back")
        check(peak - baseline < bound, f"touchgated grew by {(peak - baseline) >> 20} MiB "
              f"(from {baseline} to {peak} bytes) while the target did not read")
        check(client.poll() is None, "the client gave up while the target did not read")

        sink.release.set()
        pusher.join(timeout=60)
        check(not pusher.is_alive() and "error" not in sent,
              f"the upload did not complete once the target read: {sent}")
        status = client.wait(timeout=30)
        check(sink.finished.wait(10) and sink.error is None, f"the sink failed: {sink.error}")
        check(status == 0, f"upload: ssh -W exited with {status}: {b''.join(err)!r}")
        check(sink.count == TOTAL and sink.digest.hexdigest() == sent_digest.hexdigest(),
              f"upload: the target got {sink.count} bytes with sha256 "
              f"{sink.digest.hexdigest()}, sent {TOTAL} with {sent_digest.hexdigest()}")

        # -- download: the client does not read -------------------------------------------
        baseline = w.gw.rss()
        client = relay(source, subprocess.PIPE)  # kept open: no EOF before the end
        err = []
        read_all(client.stderr, err.append)
        check(source.accepted.wait(30), "the gateway did not connect to the source target")
        held, peak = stall(lambda: source.count, w.gw, "download")
        print(f"download stalled after {held >> 20} MiB; gateway RSS {baseline >> 20} MiB -> "
              f"peak {peak >> 20} MiB")
        check(held < HELD_BACK, f"the target could send {held} bytes to a client that reads "
              f"nothing: the gateway does not hold it back")
        check(peak - baseline < bound, f"touchgated grew by {(peak - baseline) >> 20} MiB "
              f"(from {baseline} to {peak} bytes) while the client did not read")

        got = {"bytes": 0}
        got_digest = hashlib.sha256()

        def take(data):
            got["bytes"] += len(data)
            got_digest.update(data)
        reader = read_all(client.stdout, take)
        reader.join(timeout=60)  # ssh closes its output at the channel's EOF
        client.stdin.close()
        status = client.wait(timeout=30)
        check(source.finished.wait(10) and source.error is None,
              f"the source failed: {source.error}")
        check(status == 0, f"download: ssh -W exited with {status}: {b''.join(err)!r}")
        check(got["bytes"] == TOTAL and got_digest.hexdigest() == source.digest.hexdigest(),
              f"download: the client got {got['bytes']} bytes with sha256 "
              f"{got_digest.hexdigest()}, the target sent {TOTAL} with "
              f"{source.digest.hexdigest()}")

        closed = {e.get("target"): e for e in w.gw.events("channel_closed")}
        for name, up, down in (("sink", TOTAL, 0), ("source", 0, TOTAL)):
            e = closed.get(name, {})
            check(e.get("reason") == "done" and int(e.get("bytes_up", -1)) == up and
                  int(e.get("bytes_down", -1)) == down,
                  f"expected channel_closed for {name} with reason done, bytes_up {up}, "
                  f"bytes_down {down}; got {e}")
        check(w.gw.alive(), "touchgated is no longer running")


if __name__ == "__main__":
    harness.scenario(main)
