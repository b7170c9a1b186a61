#!/usr/bin/env python3
"""A client that sends its request and then EOF while the touch is still pending (a one-shot
`printf REQUEST | ssh -W host:port gw`, with a touch that takes 1.5 s) still gets the target's
answer: EOF closes only the client's direction (RFC 4254, 5.3), so the gateway connects after the
touch, hands over the held request, half-closes towards the target and relays its answer back."""

import hashlib
import os
import socket
import threading

import harness
from harness import check


class AnswerOnEof:
    """A TCP server on 127.0.0.1 that reads one connection to its EOF, then answers with the byte
    count and SHA-256 of what it read, and closes."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        self.sock.settimeout(60)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.accepted.set()
        with conn:
            conn.settimeout(30)
            digest, count = hashlib.sha256(), 0
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    break
                count += len(data)
                digest.update(data)
            conn.sendall(f"{count} {digest.hexdigest()}\n".encode())
        self.sock.close()


def main():
    with harness.Env("relay_half_close") as env:
        server = AnswerOnEof()
        w = env.world(touch_agent=False,
                      extra=f'[[target]]\nname = "echo"\naddress = "127.0.0.1:{server.port}"\n')
        # A touch that takes 1.5 s: the request and its EOF are at the gateway before the target
        # is connected.
        _, config = env.test_sk_setup(w, "slow", flags=1, counter="increment", delay_ms=1500)
        request = os.urandom(100_000)
        r = env.run([harness.SSH, "-F", config, "-W", f"127.0.0.1:{server.port}", "gw"],
                    input=request, timeout=30)
        expected = f"{len(request)} {hashlib.sha256(request).hexdigest()}\n"
        check(r.returncode == 0 and r.stdout == expected,
              f"expected the target's answer {expected!r} after the client's EOF", r)
        check(server.accepted.is_set(), "the gateway never connected to the target")
        closed = [e for e in w.gw.events("channel_closed") if e.get("target") == "echo"]
        check(len(closed) == 1 and closed[0].get("reason") == "done",
              f"expected the channel to close with reason done, got {closed}")


if __name__ == "__main__":
    harness.scenario(main)
