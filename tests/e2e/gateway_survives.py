#!/usr/bin/env python3
"""After a batch of refused logins (each kind, some at the same time) and malformed raw TCP
clients, the gateway process is still alive and a valid login still works."""

import socket
import threading

import harness
from harness import assert_permission_denied, assert_refused, check


def raw_client(port, payload, close_after_send=True):
    """Connects, sends payload, and either closes at once or reads until EOF (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        if payload:
            s.sendall(payload)
        if close_after_send:
            return
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except (socket.timeout, ConnectionResetError):
            pass


def main():
    with harness.Env("gateway_survives") as env:
        w = env.world(login_grace_time="5s")
        rogue = env.make_ca("rogue")
        refusals = [
            (env.sign(w.key, w.ca, validity="-2h:-1h"), "alice", "target", "cert_expired"),
            (env.sign(w.key, rogue), "alice", "target", "cert_untrusted_ca"),
            (env.sign(w.key, w.ca, principals=["bob"]), "alice", "target",
             "cert_principal_mismatch"),
            (env.sign(w.key, w.ca, validity="+1h:+2h"), "alice", "target",
             "cert_not_yet_valid"),
            (w.cert, "alice", "nosuch", "target_unknown"),
        ]
        for cert, user, dest, code in refusals:
            config = env.client_config(w.gw, w.key, cert, user=user, target=w.target,
                                       target_cert=w.cert)
            assert_refused(env.ssh(config, dest, "echo no"), code, w.gw)

        plain = env.client_config(w.gw, w.key, None, target=w.target, target_cert=w.cert)
        assert_permission_denied(env.ssh(plain, "target", "echo no"), w.gw)

        # Malformed peers: garbage, a banner then garbage, a huge banner line, a bare close.
        port = w.gw.port
        raw = [b"", b"GET / HTTP/1.0\r\n\r\n", b"SSH-2.0-x\r\n" + bytes(range(256)) * 64,
               b"SSH-2.0-" + b"A" * 70000 + b"\r\n", b"SSH-2.0-x\r\n\x00\x00\xff\xff\x00"]
        for payload in raw:
            raw_client(port, payload, close_after_send=True)
        for payload in raw[1:]:
            raw_client(port, payload, close_after_send=False)

        # Eight refused logins at the same time.
        expired = env.client_config(w.gw, w.key, refusals[0][0], target=w.target,
                                    target_cert=w.cert)
        results = [None] * 8

        def attempt(i):
            results[i] = env.ssh(expired, "target", "echo no")

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
        for r in results:
            check(r is not None, "a concurrent attempt did not finish")
            assert_refused(r, "cert_expired", w.gw)

        check(w.gw.alive(), "touchgated died during the refusals")
        env.login_works(w)
        env.login_works(w, dest="db1")
        check(w.gw.alive(), "touchgated is no longer running")


if __name__ == "__main__":
    harness.scenario(main)
