#!/usr/bin/env python3
"""On a session channel (`ssh gw COMMAND`, agent forwarded): `help` explains how to use the
gateway, `whoami` shows the identity from the certificate and the enrolled keys, `mfa-test` asks
for one touch and prints the signed challenge with its SSHSIG proof, which stock
`ssh-keygen -Y verify` accepts (and refuses once the challenge is altered). The proof logged
with event=mfa_verified verifies the same way. Works for a FIDO2 key (sk-dummy) and a
PIV-kind key."""

import base64
import re

import harness
from harness import assert_ok, check


def armour(blob):
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i:i + 70] for i in range(0, len(b64), 70)]
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines) + "\n-----END SSH SIGNATURE-----\n"


def verify(env, pub, ns, message, sig, name):
    allowed = env.path("proof", f"{name}.allowed")
    with open(allowed, "w") as f:
        f.write(f"alice {harness.read_text(pub).split()[0]} {harness.read_text(pub).split()[1]}\n")
    sig_path = env.path("proof", f"{name}.sig")
    with open(sig_path, "w") as f:
        f.write(sig)
    return env.run(["ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "alice", "-n", ns,
                    "-s", sig_path], input=message.encode())


def main():
    with harness.Env("mfa_proof") as env:
        w = env.world(touch_agent=False)
        sk = env.make_sk_key("alice-proof", "ecdsa-sk")
        agent = env.start_sk_agent("agent", sk)
        env.enroll(w.gw, "alice", sk, "fido2", label="proof-key")
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=agent,
                                   name="ssh_config-proof")
        fp = env.run(["ssh-keygen", "-lf", sk.pub], check=True).stdout.split()[1]
        # On a session channel ssh forwards the agent only when it has one itself
        # (SSH_AUTH_SOCK), as a user's shell does; `ssh -W` (ProxyJump) needs no such variable.
        agent_env = {"SSH_AUTH_SOCK": agent.sock}

        r = env.ssh(config, "gw", "help", jump=None)
        assert_ok(r)
        check("ssh -J" in r.stdout and "ForwardAgent yes" in r.stdout, "help text", r)

        r = env.ssh(config, "gw", "whoami", jump=None)
        assert_ok(r)
        check(re.search(r"principal:\s+alice", r.stdout) and "alice@sso" in r.stdout
              and fp in r.stdout and "proof-key" in r.stdout and "active" in r.stdout,
              "whoami shows the certificate identity and the enrolled key", r)

        # A first word that is neither a command nor a target: refused as an unknown target.
        r = env.ssh(config, "gw", "no-such-command", jump=None)
        check(r.returncode == 255 and "(target_unknown)" in r.stderr and
              "nor one of its commands (whoami, mfa-test, help)" in r.stderr,
              "an unknown word is an unknown target", r)

        r = env.ssh(config, "gw", "mfa-test", jump=None, extra_env=agent_env)
        assert_ok(r)
        check(f"touch verified: key {fp} (fido2" in r.stdout, "mfa-test reports the key", r)
        m = re.search(r"signed challenge \(SSHSIG namespace (\S+)\):\n(.*?)proof \(",
                      r.stdout, re.S)
        check(m is not None, "mfa-test prints the challenge", r)
        ns, message = m.group(1), m.group(2)
        check(ns.startswith("touchgate-mfa@"), "namespace", r)
        for field in ("nonce: ", "principal: alice", "certificate-key-id: alice@sso",
                      "target: mfa-test", "time: "):
            check(field in message, f"the challenge binds {field!r}", r)
        sig = r.stdout[r.stdout.index("-----BEGIN SSH SIGNATURE-----"):]
        v = verify(env, sk.pub, ns, message, sig, "session")
        check(v.returncode == 0 and "Good" in v.stdout + v.stderr,
              "ssh-keygen -Y verify accepts the proof", v)
        v = verify(env, sk.pub, ns, message.replace("alice", "mallory"), sig, "tampered")
        check(v.returncode != 0, "ssh-keygen -Y verify refuses an altered challenge", v)

        # The proof of a ProxyJump touch, from the gateway's log; a PIV-kind key this time.
        piv = env.touch_agent(w.gw, "alice", name="piv")
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=piv,
                                   name="ssh_config-piv")
        assert_ok(env.ssh(config, "target", "echo jumped"), "jumped\n")
        w.gw.wait_for_log(r"event=mfa_verified .*kind=piv")
        text = w.gw.log_text()
        lines = [l for l in text.splitlines() if "event=mfa_verified" in l and "kind=piv" in l]
        fields = dict(re.findall(r"(\w+)=(\S+)", lines[-1]))
        message = base64.b64decode(fields["message"]).decode()
        proof = armour(base64.b64decode(fields["proof"]))
        check("target: db1 127.0.0.1:" in message, "the challenge names the target", message)
        pub = env.path("keys", "user-piv-alice.pub")
        v = verify(env, pub, fields["namespace"], message, proof, "logged")
        check(v.returncode == 0, "the logged proof verifies with ssh-keygen -Y verify", v)


if __name__ == "__main__":
    harness.scenario(main)
