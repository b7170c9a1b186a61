"""A fault-injecting ssh-agent proxy for tests (python3 stdlib only).

    python3 agent_proxy.py --listen SOCK --upstream SOCK --mode MODE [--log FILE]

Listens on the unix socket SOCK and relays agent frames (uint32 length, type, contents) between
each client connection and its own connection to the upstream agent (a real ssh-agent), so that
per-connection state such as session-bind@openssh.com stays per connection. Point a client at the
proxy with SSH_AUTH_SOCK=SOCK (for `ssh -A`, the client's own SSH_AUTH_SOCK).

Modes:
  pass              relay everything unchanged
  hang-identities   never answer REQUEST_IDENTITIES (11): the connection stays open and silent
                    until the client gives up (an agent that does not respond at all)
  hang-sign         relay, but never answer a SIGN_REQUEST (13): the connection stays open and
                    silent until the client gives up (a touch that never comes)
  refuse-sign       answer SIGN_REQUEST with FAILURE (5) without asking upstream
  corrupt-sign      relay, then flip one byte inside the signature of the SIGN_RESPONSE (14)
  garbage           answer any request with a frame that declares 0x7fffffff bytes, then close
  no-identities     answer REQUEST_IDENTITIES (11) with an IDENTITIES_ANSWER (12) of 0 keys
  extra-identities  relay IDENTITIES_ANSWER with junk keys of unknown types put before the real
                    ones (OpenSSH clients skip unknown key types; so must the gateway)

Frames over 256 KiB (either direction) or of length 0 end the connection. Every client runs in
its own thread. Prints "ready" on stdout once listening; SIGTERM or SIGINT closes everything,
removes SOCK and exits 0. --log appends one line per request and what was done with it.
"""

import argparse
import os
import signal
import socket
import struct
import sys
import threading

MAX_FRAME = 256 * 1024
FAILURE = 5
REQUEST_IDENTITIES = 11
IDENTITIES_ANSWER = 12
SIGN_REQUEST = 13
SIGN_RESPONSE = 14
MODES = ("pass", "hang-identities", "hang-sign", "refuse-sign", "corrupt-sign", "garbage", "no-identities",
         "extra-identities")


class FrameError(Exception):
    pass


def ssh_string(data):
    return struct.pack(">I", len(data)) + data


def frame(body):
    return struct.pack(">I", len(body)) + body


def recv_exact(sock, n):
    """n bytes, or None at a clean end of stream before the first byte."""
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 65536))
        if not chunk:
            if got == 0:
                return None
            raise FrameError("stream ended inside a frame")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(sock):
    """One message body (type byte + contents), or None at end of stream."""
    header = recv_exact(sock, 4)
    if header is None:
        return None
    (length,) = struct.unpack(">I", header)
    if length == 0 or length > MAX_FRAME:
        raise FrameError(f"frame length {length}")
    body = recv_exact(sock, length)
    if body is None:
        raise FrameError("stream ended inside a frame")
    return body


def split_string(data, pos):
    """(bytes, next position) of the SSH string at pos; FrameError when it does not fit."""
    if pos + 4 > len(data):
        raise FrameError("truncated string")
    (n,) = struct.unpack(">I", data[pos : pos + 4])
    if pos + 4 + n > len(data):
        raise FrameError("truncated string")
    return data[pos + 4 : pos + 4 + n], pos + 4 + n


def corrupt_signature(body):
    """SIGN_RESPONSE with one byte flipped in the raw signature: the last byte of the second
    string inside the signature blob (string alg, string sig, ...). Otherwise the blob's last
    byte."""
    blob, end = split_string(body, 1)
    if end != len(body) or not blob:
        raise FrameError("malformed SIGN_RESPONSE")
    try:
        _alg, pos = split_string(blob, 0)
        sig, sig_end = split_string(blob, pos)
        index = sig_end - 1 if sig else len(blob) - 1
    except FrameError:
        index = len(blob) - 1
    blob = bytearray(blob)
    blob[index] ^= 0xFF
    return bytes([SIGN_RESPONSE]) + ssh_string(bytes(blob))


def junk_identities():
    """Keys of types no implementation knows, each with a comment."""
    junk = [
        (ssh_string(b"unknown-key-v00@example.com") + ssh_string(os.urandom(32)), b"junk 1"),
        (ssh_string(b"sk-ssh-ed25519-v99@example.com") + ssh_string(os.urandom(32))
         + ssh_string(b"ssh:"), b"junk 2: an sk-looking type"),
        (ssh_string(b"x-big@example.com") + ssh_string(os.urandom(8192)), b"junk 3: 8 KiB"),
    ]
    return junk


def add_identities(body):
    """IDENTITIES_ANSWER with the junk entries first."""
    if len(body) < 5:
        raise FrameError("malformed IDENTITIES_ANSWER")
    (count,) = struct.unpack(">I", body[1:5])
    junk = junk_identities()
    entries = b"".join(ssh_string(blob) + ssh_string(comment) for blob, comment in junk)
    return bytes([IDENTITIES_ANSWER]) + struct.pack(">I", count + len(junk)) + entries + body[5:]


class Proxy:
    def __init__(self, listen, upstream, mode, log_path):
        self.listen_path, self.upstream_path, self.mode = listen, upstream, mode
        self.log_file = open(log_path, "a", buffering=1) if log_path else None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections = set()
        self.serial = 0
        self.server = None

    def log(self, text):
        if self.log_file:
            with self.lock:
                self.log_file.write(text + "\n")

    def track(self, sock):
        with self.lock:
            self.connections.add(sock)

    def untrack(self, sock):
        with self.lock:
            self.connections.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def serve(self):
        if os.path.exists(self.listen_path):
            os.unlink(self.listen_path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.listen_path)
        os.chmod(self.listen_path, 0o600)
        self.server.listen(64)
        self.server.settimeout(0.2)
        print("ready", flush=True)
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    break
                raise
            client.settimeout(None)
            self.serial += 1
            threading.Thread(target=self.handle, args=(client, self.serial), daemon=True).start()
        self.shutdown()

    def shutdown(self):
        try:
            self.server.close()
        except OSError:
            pass
        with self.lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            os.unlink(self.listen_path)
        except FileNotFoundError:
            pass

    def handle(self, client, n):
        self.track(client)
        upstream = None
        try:
            if self.mode != "garbage":
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.track(upstream)
                upstream.connect(self.upstream_path)
            while not self.stopping.is_set():
                request = read_frame(client)
                if request is None:
                    break
                if not self.answer(client, upstream, request, n):
                    break
        except (FrameError, OSError) as e:
            self.log(f"conn {n}: closed: {e}")
        finally:
            if upstream is not None:
                self.untrack(upstream)
            self.untrack(client)

    def relay(self, upstream, request):
        upstream.sendall(frame(request))
        reply = read_frame(upstream)
        if reply is None:
            raise FrameError("upstream closed")
        return reply

    def answer(self, client, upstream, request, n):
        """Handles one request; False ends the connection."""
        kind, mode = request[0], self.mode
        if mode == "garbage":
            self.log(f"conn {n}: request {kind}: garbage")
            # A length no agent client accepts, a few bytes of "body", and the end.
            client.sendall(struct.pack(">I", 0x7FFFFFFF)
                           + bytes([IDENTITIES_ANSWER]) + b"\xff" * 64)
            return False
        if (kind == SIGN_REQUEST and mode == "hang-sign") or \
                (kind == REQUEST_IDENTITIES and mode == "hang-identities"):
            self.log(f"conn {n}: request {kind}: hanging")
            while not self.stopping.is_set():  # hold the line open until the client leaves
                if not client.recv(65536):
                    break
            return False
        if kind == SIGN_REQUEST and mode == "refuse-sign":
            self.log(f"conn {n}: request {kind}: refused")
            client.sendall(frame(bytes([FAILURE])))
            return True
        if kind == REQUEST_IDENTITIES and mode == "no-identities":
            self.log(f"conn {n}: request {kind}: no identities")
            client.sendall(frame(bytes([IDENTITIES_ANSWER]) + struct.pack(">I", 0)))
            return True

        reply = self.relay(upstream, request)
        action = "relayed"
        if kind == SIGN_REQUEST and mode == "corrupt-sign" and reply[0] == SIGN_RESPONSE:
            reply, action = corrupt_signature(reply), "signature corrupted"
        elif kind == REQUEST_IDENTITIES and mode == "extra-identities" and \
                reply[0] == IDENTITIES_ANSWER:
            reply, action = add_identities(reply), "junk identities added"
        if len(reply) > MAX_FRAME:
            raise FrameError(f"reply of {len(reply)} bytes")
        self.log(f"conn {n}: request {kind}: reply {reply[0]}, {action}")
        client.sendall(frame(reply))
        return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="unix socket to listen on")
    parser.add_argument("--upstream", required=True, help="socket of the real agent")
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--log", help="append a line per request to this file")
    args = parser.parse_args()

    proxy = Proxy(args.listen, args.upstream, args.mode, args.log)

    def stop(_signum, _frame):
        proxy.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    proxy.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
