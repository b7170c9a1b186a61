"""Self-test of tests/e2e/agent_proxy.py in front of a real ssh-agent holding a plain ed25519 key.

    python3 agent_proxy_check.py PATH/TO/agent_proxy.py

Each mode gets its own proxy; the checks use real `ssh-add -l` and `ssh-keygen -Y sign/verify`
through SSH_AUTH_SOCK=proxy, plus a few raw frames. Exits 0 when every check passed.
"""

import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import time

import selftest
from selftest import SSH_ADD, SSH_KEYGEN, STEP_TIMEOUT, clean_env, expect, run


def request(sock_path, body, timeout=5):
    """Sends one frame to sock_path; the reply body, or None if the peer closed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(struct.pack(">I", len(body)) + body)
        header = s.recv(4, socket.MSG_WAITALL)
        if len(header) < 4:
            return None
        (n,) = struct.unpack(">I", header)
        if n > 256 * 1024:
            return ("oversized", n)
        return s.recv(n, socket.MSG_WAITALL)


class ProxyLab(selftest.Lab):
    def __init__(self, proxy_script):
        super().__init__("tg-agent-proxy-")
        self.proxy_script = proxy_script
        self.key = self.path("id_ed25519")

    def setup(self):
        """A plain ed25519 key, held by a fresh ssh-agent."""
        r = run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "plain", "-f", self.key],
                clean_env())
        expect(r.returncode == 0, f"ssh-keygen: {r.stderr.decode()}")
        with open(self.key + ".pub") as f:
            pub = f.read().split()
        with open(self.path("allowed_signers"), "w") as f:
            f.write(f"plain@test {pub[0]} {pub[1]}\n")
        r = run([SSH_KEYGEN, "-l", "-f", self.key + ".pub"], clean_env())
        self.fingerprint = r.stdout.split()[1].decode()
        # ssh-keygen -Y sign -f KEY.pub falls back to the private key beside it when the agent
        # fails; a public key alone in its directory makes every signature come from the agent.
        os.mkdir(self.path("pub"))
        self.pub = shutil.copy(self.key + ".pub", self.path("pub"))

        self.agent = self.start_agent("agent")
        r = run([SSH_ADD, self.key], clean_env(SSH_AUTH_SOCK=self.agent))
        expect(r.returncode == 0, f"ssh-add: {r.stderr.decode()}")

    def start_proxy(self, mode):
        sock = self.path(f"proxy-{mode}.sock")
        proc = subprocess.Popen(
            [sys.executable, self.proxy_script, "--listen", sock, "--upstream", self.agent,
             "--mode", mode, "--log", self.path(f"proxy-{mode}.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], STEP_TIMEOUT)
        line = proc.stdout.readline().decode().strip() if ready else "nothing"
        expect(line == "ready", f"proxy {mode} said {line!r}")
        expect(os.path.exists(sock), f"proxy {mode} said ready without a socket")
        return sock, proc

    def list_keys(self, sock):
        r = run([SSH_ADD, "-l"], clean_env(SSH_AUTH_SOCK=sock))
        return r.returncode, r.stdout.decode() + r.stderr.decode()

    def sign(self, sock, message, timeout=STEP_TIMEOUT):
        r = run([SSH_KEYGEN, "-Y", "sign", "-n", "test", "-f", self.pub],
                clean_env(SSH_AUTH_SOCK=sock), stdin=message, timeout=timeout)
        return r.returncode, r.stdout.decode()

    def verify(self, message, armoured):
        sig_file = self.path(f"sig.{time.monotonic_ns()}")
        with open(sig_file, "w") as f:
            f.write(armoured)
        r = run([SSH_KEYGEN, "-Y", "verify", "-n", "test", "-f", self.path("allowed_signers"),
                 "-I", "plain@test", "-s", sig_file], clean_env(), stdin=message)
        return r.returncode == 0


def check_pass(lab):
    sock, _ = lab.start_proxy("pass")
    rc, out = lab.list_keys(sock)
    expect(rc == 0 and lab.fingerprint in out, f"pass: ssh-add -l: {out}")
    rc, sig = lab.sign(sock, b"through the proxy\n")
    expect(rc == 0 and lab.verify(b"through the proxy\n", sig), "pass: signing failed")
    # A frame over 256 KiB ends that connection only.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(struct.pack(">I", 256 * 1024 + 1) + b"\x0b")
        try:
            closed = s.recv(1) == b""
        except ConnectionResetError:
            closed = True
        expect(closed, "pass: oversized frame did not close the connection")
    expect(lab.list_keys(sock)[0] == 0, "pass: proxy stopped serving after a bad frame")


def check_refuse_sign(lab):
    sock, _ = lab.start_proxy("refuse-sign")
    rc, out = lab.list_keys(sock)
    expect(rc == 0 and lab.fingerprint in out, f"refuse-sign: ssh-add -l: {out}")
    rc, _ = lab.sign(sock, b"refused\n")
    expect(rc != 0, "refuse-sign: signing succeeded")
    reply = request(sock, bytes([13]) + struct.pack(">I", 4) + b"blob" + struct.pack(">I", 0)
                    + struct.pack(">I", 0))
    expect(reply == bytes([5]), f"refuse-sign: raw reply {reply!r}")


def check_no_identities(lab):
    sock, _ = lab.start_proxy("no-identities")
    rc, out = lab.list_keys(sock)
    expect(rc == 1 and "no identities" in out, f"no-identities: ssh-add -l rc {rc}: {out}")


def check_extra_identities(lab):
    sock, _ = lab.start_proxy("extra-identities")
    reply = request(sock, bytes([11]))
    expect(reply and reply[0] == 12 and struct.unpack(">I", reply[1:5])[0] == 4,
           "extra-identities: expected 3 junk keys + 1 real one")
    rc, out = lab.list_keys(sock)
    lines = [line for line in out.splitlines() if line.strip()]
    expect(rc == 0 and len(lines) == 1 and lab.fingerprint in lines[0],
           f"extra-identities: ssh-add -l should skip unknown key types: {out}")
    rc, sig = lab.sign(sock, b"extra\n")
    expect(rc == 0 and lab.verify(b"extra\n", sig), "extra-identities: signing failed")


def check_corrupt_sign(lab):
    sock, _ = lab.start_proxy("corrupt-sign")
    rc, sig = lab.sign(sock, b"corrupt\n")
    # ssh-keygen does not check what the agent returned: it writes the signature.
    expect(rc == 0 and sig, "corrupt-sign: ssh-keygen refused the agent's signature")
    expect(not lab.verify(b"corrupt\n", sig), "corrupt-sign: the signature still verifies")


def check_hang_sign(lab):
    sock, proc = lab.start_proxy("hang-sign")
    expect(lab.list_keys(sock)[0] == 0, "hang-sign: ssh-add -l failed")
    signer = subprocess.Popen([SSH_KEYGEN, "-Y", "sign", "-n", "test", "-f", lab.pub],
                              env=clean_env(SSH_AUTH_SOCK=sock), stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    signer.stdin.write(b"hang\n")
    signer.stdin.close()
    try:
        time.sleep(1.5)
        expect(signer.poll() is None, "hang-sign: the signature came back")
        # Other connections are served while one hangs.
        rc, out = lab.list_keys(sock)
        expect(rc == 0 and lab.fingerprint in out, f"hang-sign: second client: {out}")
        # SIGTERM ends the proxy promptly even with a connection held open.
        proc.terminate()
        expect(proc.wait(timeout=5) == 0, f"hang-sign: proxy exit status {proc.returncode}")
        expect(not os.path.exists(sock), "hang-sign: proxy left its socket behind")
        expect(signer.wait(timeout=5) != 0, "hang-sign: signing succeeded after the proxy left")
    finally:
        if signer.poll() is None:
            signer.kill()
            signer.wait(timeout=5)


def check_hang_identities(lab):
    sock, _ = lab.start_proxy("hang-identities")
    try:
        reply = request(sock, bytes([11]), timeout=1)
    except socket.timeout:
        reply = "no answer"
    expect(reply == "no answer", f"hang-identities: raw reply {reply!r}")
    # Other requests are still relayed (a SIGN_REQUEST for an unknown key: FAILURE, upstream's).
    reply = request(sock, bytes([13]) + struct.pack(">I", 4) + b"blob" + struct.pack(">I", 0)
                    + struct.pack(">I", 0))
    expect(reply == bytes([5]), f"hang-identities: SIGN_REQUEST not relayed: {reply!r}")


def check_garbage(lab):
    sock, _ = lab.start_proxy("garbage")
    rc, out = lab.list_keys(sock)
    expect(rc != 0, f"garbage: ssh-add -l succeeded: {out}")
    expect(request(sock, bytes([11])) == ("oversized", 0x7FFFFFFF), "garbage: raw reply")
    rc, _ = lab.sign(sock, b"garbage\n")
    expect(rc != 0, "garbage: signing succeeded")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: agent_proxy_check.py PATH/TO/agent_proxy.py")
    checks = [check_pass, check_refuse_sign, check_no_identities, check_extra_identities,
              check_corrupt_sign, check_hang_sign, check_hang_identities, check_garbage]
    return selftest.run_checks(ProxyLab(os.path.abspath(sys.argv[1])), checks, "agent proxy")


if __name__ == "__main__":
    sys.exit(main())
