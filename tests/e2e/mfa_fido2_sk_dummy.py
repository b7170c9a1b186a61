#!/usr/bin/env python3
"""FIDO2 through the forwarded agent with OpenSSH's own software authenticator (sk-dummy.so):
real `ssh-keygen -t ecdsa-sk|ed25519-sk`, a real `ssh-agent -P`, `ssh-add -S`, enrolled with
`touchgate keys add --kind fido2`; `ssh -J gw target` with ForwardAgent in the gateway's Host
block reaches the real sshd. sk-dummy reports the same signature counter every time, so the
second touch of one key is a repeated counter: refused, and the key is suspended as a suspected
clone until an admin clears it."""

import re

import harness
from harness import assert_ok, assert_refused, check


def main():
    with harness.Env("mfa_fido2_sk_dummy") as env:
        w = env.world(touch_agent=False)
        for key_type in ("ecdsa-sk", "ed25519-sk"):
            sk = env.make_sk_key(f"alice-{key_type}", key_type)
            agent = env.start_sk_agent(f"agent-{key_type}", sk)
            env.enroll(w.gw, "alice", sk, "fido2", label=key_type)
            config = env.client_config(w.gw, w.key, w.cert, target=w.target,
                                       forward_agent=agent, name=f"ssh_config-{key_type}")
            r = env.ssh(config, "target", "echo touched")
            assert_ok(r, "touched\n")
            fp = env.run(["ssh-keygen", "-lf", sk.pub], check=True).stdout.split()[1]
            w.gw.wait_for_log(rf"event=mfa_verified .*key_fp={re.escape(fp)}.*kind=fido2 flags=0x01 "
                              rf"counter=305419896")

        # The same ed25519-sk key again: sk-dummy's counter did not advance.
        r = env.ssh(config, "target", "echo again")
        assert_refused(r, "mfa_counter_regression", w.gw)
        check("may be cloned" in r.stderr, "expected the clone warning", r)
        w.gw.wait_for_log(rf"event=suspected_clone .*key_fp={re.escape(fp)}")
        keys = {k["fingerprint"]: k for k in env.keys_json(w.gw, "alice")}
        check(keys[fp]["status"] == "suspected-clone", f"expected suspected-clone: {keys[fp]}")

        # Suspended: refused as such, without asking for a touch.
        r = env.ssh(config, "target", "echo suspended")
        assert_refused(r, "mfa_key_suspended", w.gw)

        # An admin clears it: the next touch is accepted again.
        r = env.touchgate(w.gw, "keys", "clear-clone", fp)
        check(r.returncode == 0, "keys clear-clone failed", r)
        r = env.ssh(config, "target", "echo cleared")
        assert_ok(r, "cleared\n")


if __name__ == "__main__":
    harness.scenario(main)
