"""Self-test of the test authenticator (tg-test-sk.so) through the real OpenSSH tools.

    python3 check.py PATH/TO/tg-test-sk.so

In a fresh temp dir: enrols ecdsa-sk and ed25519-sk keys with `ssh-keygen -w`, signs with
`ssh-keygen -Y sign`, verifies with `ssh-keygen -Y verify`, and reads the flags and counter that
each signature carries out of the SSHSIG blob. Then the same through a real `ssh-agent -P`, to
show that the control file is read in the agent's environment. Exits 0 when every check passed.
"""

import base64
import os
import shutil
import struct
import subprocess
import sys
import threading
import time

import selftest
from selftest import SSH_ADD, SSH_KEYGEN, STEP_TIMEOUT, CheckFailed, clean_env, expect, run

NAMESPACE = "test"

SK_TYPES = {
    "ecdsa-sk": "sk-ecdsa-sha2-nistp256@openssh.com",
    "ed25519-sk": "sk-ssh-ed25519@openssh.com",
}


# --- SSH wire format and SSHSIG --------------------------------------------------------------


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise CheckFailed("truncated SSH structure")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def string(self):
        return self.take(self.u32())

    def finish(self):
        if self.pos != len(self.data):
            raise CheckFailed("trailing bytes in SSH structure")


def parse_sshsig(armoured):
    """The fields of an armoured SSHSIG, with the sk signature split into alg/sig/flags/counter."""
    lines = armoured.strip().splitlines()
    expect(lines[0] == "-----BEGIN SSH SIGNATURE-----", "SSHSIG armour header")
    expect(lines[-1] == "-----END SSH SIGNATURE-----", "SSHSIG armour footer")
    r = Reader(base64.b64decode("".join(lines[1:-1])))
    expect(r.take(6) == b"SSHSIG", "SSHSIG magic")
    expect(r.u32() == 1, "SSHSIG version")
    pubkey, namespace, _reserved, hash_alg, signature = (r.string() for _ in range(5))
    r.finish()
    s = Reader(signature)
    alg = s.string().decode()
    inner, flags, counter = s.string(), s.u8(), s.u32()
    s.finish()
    key_type = Reader(pubkey).string().decode()
    return {"key_type": key_type, "namespace": namespace.decode(), "hash": hash_alg.decode(),
            "alg": alg, "sig": inner, "flags": flags, "counter": counter}


# --- The lab ---------------------------------------------------------------------------------


class SkLab(selftest.Lab):
    """Keys of both sk types, an allowed_signers file and a control file for the module."""

    def __init__(self, module):
        super().__init__("tg-test-sk-")
        self.module = module
        self.control = self.path("control")
        self.keys = {}
        self.serial = 0

    def setup(self):
        for kind in SK_TYPES:
            self.enrol(kind)

    def set_control(self, text, counter_file=None):
        """Rewrites the control file; a fresh counter file unless one is named."""
        self.serial += 1
        counter_file = counter_file or self.path(f"counter.{self.serial}")
        with open(self.control, "w") as f:
            f.write(f"counter_file={counter_file}\n{text}")
        return counter_file

    def enrol(self, kind):
        key = self.path(f"id_{kind.replace('-', '_')}")
        r = run([SSH_KEYGEN, "-q", "-t", kind, "-w", self.module, "-N", "", "-C", kind, "-f", key],
                clean_env())
        expect(r.returncode == 0, f"enrol {kind}: {r.stderr.decode()}")
        with open(key + ".pub") as f:
            pub = f.read().split()
        expect(pub[0] == SK_TYPES[kind], f"enrol {kind}: public key type {pub[0]}")
        self.keys[kind] = key
        # ssh-keygen -Y sign -f KEY.pub falls back to the private key beside it when the agent
        # does not sign; a public key alone in its directory makes every signature the agent's.
        os.makedirs(self.path("pub"), exist_ok=True)
        shutil.copy(key + ".pub", self.path("pub"))
        with open(self.path("allowed_signers"), "a") as f:
            f.write(f"{kind}@test {pub[0]} {pub[1]}\n")
        return key

    def agent_pub(self, kind):
        return self.path(os.path.join("pub", os.path.basename(self.keys[kind]) + ".pub"))

    def sign(self, kind, message, env=None, use_agent_pub=False):
        """ssh-keygen -Y sign; (returncode, armoured signature or None, stderr)."""
        key = self.keys[kind]
        if use_agent_pub:
            cmd = [SSH_KEYGEN, "-Y", "sign", "-n", NAMESPACE, "-f", self.agent_pub(kind)]
        else:
            cmd = [SSH_KEYGEN, "-Y", "sign", "-n", NAMESPACE, "-w", self.module, "-f", key]
        env = env or clean_env(TG_TEST_SK_CONTROL=self.control)
        r = run(cmd, env, stdin=message)
        sig = r.stdout.decode() if r.returncode == 0 else None
        return r.returncode, sig, r.stderr.decode()

    def verify(self, kind, message, armoured):
        sig_file = self.path(f"sig.{time.monotonic_ns()}")
        with open(sig_file, "w") as f:
            f.write(armoured)
        r = run([SSH_KEYGEN, "-Y", "verify", "-n", NAMESPACE, "-f", self.path("allowed_signers"),
                 "-I", f"{kind}@test", "-s", sig_file], clean_env(), stdin=message)
        return r.returncode == 0

    def sign_ok(self, kind, message, **kw):
        rc, sig, err = self.sign(kind, message, **kw)
        expect(rc == 0 and sig, f"sign with {kind} failed: {err}")
        fields = parse_sshsig(sig)
        expect(fields["key_type"] == SK_TYPES[kind], f"signature key type {fields['key_type']}")
        expect(fields["alg"] == SK_TYPES[kind], f"signature algorithm {fields['alg']}")
        expect(fields["namespace"] == NAMESPACE, "signature namespace")
        return sig, fields

    def start_sk_agent(self, name, allow, env):
        """ssh-agent -P ALLOW: it accepts sk keys whose provider's real path matches ALLOW."""
        return self.start_agent(name, ["-P", allow], env)


# --- Checks ---------------------------------------------------------------------------------


def check_counters(lab):
    lab.set_control("counter=increment\n")
    seen = []
    for i, kind in enumerate(["ecdsa-sk", "ed25519-sk", "ecdsa-sk"]):
        msg = f"increment {i}\n".encode()
        sig, f = lab.sign_ok(kind, msg)
        expect(f["flags"] == 0x01, f"default flags 0x{f['flags']:02x}")
        expect(lab.verify(kind, msg, sig), f"increment: {kind} signature does not verify")
        seen.append(f["counter"])
    expect(seen == [1, 2, 3], f"increment gave {seen}, expected [1, 2, 3]")

    lab.set_control("counter=fixed:4000000000\nflags=0x05\n")
    for kind in SK_TYPES:
        sig, f = lab.sign_ok(kind, b"fixed\n")
        expect(f["counter"] == 4000000000, f"fixed gave {f['counter']}")
        expect(f["flags"] == 0x05, f"flags=0x05 gave 0x{f['flags']:02x}")
        expect(lab.verify(kind, b"fixed\n", sig), f"fixed: {kind} signature does not verify")

    lab.set_control("counter=sequence:5,3,9\n")
    seen = [lab.sign_ok("ed25519-sk", b"seq\n")[1]["counter"] for _ in range(4)]
    expect(seen == [5, 3, 9, 9], f"sequence gave {seen}, expected [5, 3, 9, 9]")


def check_concurrent_increment(lab):
    """Helpers running at once each take their own counter value (flock on the counter file)."""
    lab.set_control("counter=increment\n")
    results, errors = [], []

    def one(i):
        try:
            results.append(lab.sign_ok("ecdsa-sk", f"parallel {i}\n".encode())[1]["counter"])
        except Exception as e:  # reported below
            errors.append(str(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(STEP_TIMEOUT)
    expect(not errors, f"parallel signing: {errors}")
    expect(sorted(results) == list(range(1, 9)), f"parallel counters {sorted(results)}")


def check_no_touch(lab):
    """flags=0: the signature says no touch. ssh-keygen -Y verify still calls it good: it does not
    look at the flags (a relying party must), and allowed_signers has no way to ask for touch."""
    lab.set_control("flags=0\n")
    for kind in SK_TYPES:
        sig, f = lab.sign_ok(kind, b"no touch\n")
        expect(f["flags"] == 0x00, f"flags=0 gave 0x{f['flags']:02x}")
        expect(lab.verify(kind, b"no touch\n", sig),
               "ssh-keygen -Y verify now refuses a no-touch signature: update the notes")


def check_faults(lab):
    lab.set_control("corrupt=1\ncounter=fixed:7\n")
    for kind in SK_TYPES:
        sig, f = lab.sign_ok(kind, b"corrupt\n")
        expect(f["counter"] == 7 and f["flags"] == 0x01, "corrupt changed flags or counter")
        expect(not lab.verify(kind, b"corrupt\n", sig), f"corrupt=1: {kind} signature verifies")

    lab.set_control("fail=1\n")
    for kind in SK_TYPES:
        rc, sig, _ = lab.sign(kind, b"fail\n")
        expect(rc != 0 and not sig, f"fail=1: {kind} signing succeeded")

    for bad in ["bogus=1\n", "flags=256\n", "counter=sometimes\n", "counter=sequence:\n",
                "delay_ms=-1\n", "no equals sign\n"]:
        lab.set_control(bad)
        rc, sig, err = lab.sign("ecdsa-sk", b"bad control\n")
        expect(rc != 0 and not sig, f"control {bad.strip()!r}: signing succeeded")
        expect("tg-test-sk:" in err, f"control {bad.strip()!r}: no message on stderr: {err}")

    missing_env = clean_env(TG_TEST_SK_CONTROL=lab.path("no-such-control-file"))
    rc, sig, _ = lab.sign("ecdsa-sk", b"missing\n", env=missing_env)
    expect(rc != 0, "a missing control file did not fail the signature")

    lab.set_control("delay_ms=400\ncounter=fixed:1\n")
    start = time.monotonic()
    lab.sign_ok("ed25519-sk", b"slow\n")
    expect(time.monotonic() - start >= 0.4, "delay_ms=400 answered early")


def check_defaults(lab):
    """Without TG_TEST_SK_CONTROL: touch reported, counter fixed at 1."""
    _, f = lab.sign_ok("ecdsa-sk", b"defaults\n", env=clean_env())
    expect(f["flags"] == 0x01 and f["counter"] == 1, f"defaults gave {f['flags']}/{f['counter']}")


def check_log(lab):
    log = lab.path("sign.log")
    lab.set_control(f"log={log}\ncounter=fixed:12\n")
    lab.sign_ok("ed25519-sk", b"logged\n")
    with open(log) as f:
        lines = f.read().splitlines()
    expect(lines == ["sign alg=ed25519 application=ssh: flags=0x01 counter=12 result=ok"],
           f"log: {lines}")


def check_agent(lab):
    """ssh-agent -P MODULE runs the module in ssh-sk-helper with the AGENT's environment."""
    counter_file = lab.set_control("counter=increment\n")
    env = clean_env(TG_TEST_SK_CONTROL=lab.control)
    sock = lab.start_sk_agent("agent", lab.module, env)
    client = clean_env(SSH_AUTH_SOCK=sock)
    for kind in SK_TYPES:
        r = run([SSH_ADD, "-S", lab.module, lab.keys[kind]], client)
        expect(r.returncode == 0, f"ssh-add -S {kind}: {r.stderr.decode()}")
    r = run([SSH_ADD, "-l"], client)
    listed = r.stdout.decode()
    expect(r.returncode == 0 and "(ECDSA-SK)" in listed and "(ED25519-SK)" in listed,
           f"ssh-add -l: {listed}")

    seen = []
    for i, kind in enumerate(["ecdsa-sk", "ed25519-sk", "ecdsa-sk"]):
        msg = f"agent {i}\n".encode()
        sig, f = lab.sign_ok(kind, msg, env=client, use_agent_pub=True)
        expect(lab.verify(kind, msg, sig), f"agent: {kind} signature does not verify")
        seen.append(f["counter"])
    expect(seen == [1, 2, 3], f"agent counters {seen}, expected [1, 2, 3]")

    # The control file is read at each signature, by the helper the agent starts.
    lab.set_control("fail=1\n", counter_file=counter_file)
    rc, _, _ = lab.sign("ecdsa-sk", b"agent fail\n", env=client, use_agent_pub=True)
    expect(rc != 0, "agent: fail=1 did not fail the signature")
    lab.set_control("flags=0x05\n", counter_file=counter_file)
    _, f = lab.sign_ok("ed25519-sk", b"agent uv\n", env=client, use_agent_pub=True)
    expect(f["flags"] == 0x05 and f["counter"] == 4,
           f"agent after fail: flags {f['flags']}, counter {f['counter']}")

    # An agent started WITHOUT the variable ignores the client's: module defaults (counter 1).
    lab.set_control("counter=fixed:4242\n")
    bare = lab.start_sk_agent("bare-agent", lab.module, clean_env())
    bare_client = clean_env(SSH_AUTH_SOCK=bare, TG_TEST_SK_CONTROL=lab.control)
    r = run([SSH_ADD, "-S", lab.module, lab.keys["ecdsa-sk"]], bare_client)
    expect(r.returncode == 0, f"ssh-add -S to bare agent: {r.stderr.decode()}")
    _, f = lab.sign_ok("ecdsa-sk", b"bare\n", env=bare_client, use_agent_pub=True)
    expect(f["counter"] == 1, f"agent used the client's environment (counter {f['counter']})")

    # The agent waits for the helper: while a touch is pending it answers nobody else.
    lab.set_control("delay_ms=1500\ncounter=fixed:1\n")
    start = time.monotonic()
    slow = subprocess.Popen([SSH_KEYGEN, "-Y", "sign", "-n", NAMESPACE, "-f",
                             lab.agent_pub("ecdsa-sk")], env=client, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    slow.stdin.write(b"slow agent\n")
    slow.stdin.close()
    time.sleep(0.3)
    r = run([SSH_ADD, "-l"], client)
    listed_after = time.monotonic() - start
    expect(slow.wait(timeout=STEP_TIMEOUT) == 0, "agent: delayed signature failed")
    expect(r.returncode == 0 and listed_after >= 1.2,
           f"agent answered ssh-add -l {listed_after:.2f} s into a pending touch (should wait)")

    # -P matches the provider's real path: an allowlist naming a symlink refuses the key.
    link = lab.path("link-to-module.so")
    os.symlink(lab.module, link)
    via_link = lab.start_sk_agent("link-agent", link, env)
    r = run([SSH_ADD, "-S", link, lab.keys["ecdsa-sk"]], clean_env(SSH_AUTH_SOCK=via_link))
    expect(r.returncode != 0, "ssh-agent -P SYMLINK accepted a key (expected a refusal)")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check.py PATH/TO/tg-test-sk.so")
    module = os.path.realpath(sys.argv[1])
    if not os.path.isfile(module):
        sys.exit(f"module not found: {module}")
    checks = [check_counters, check_concurrent_increment, check_no_touch, check_faults,
              check_defaults, check_log, check_agent]
    return selftest.run_checks(SkLab(module), checks, "test authenticator")


if __name__ == "__main__":
    sys.exit(main())
