#!/usr/bin/env python3
"""PIV through the forwarded agent: a SoftHSM2 token stands in for the smart card; its EC P-256
key and, on a second token, an RSA-2048 key are loaded into real ssh-agents with `ssh-add -s`,
enrolled with `touchgate keys add --kind piv`, and `ssh -J gw target` reaches the real sshd.
RSA keys are asked for rsa-sha2-512 signatures."""

import re

import harness
from harness import assert_ok


def main():
    with harness.Env("mfa_piv_softhsm") as env:
        w = env.world(touch_agent=False)
        for name, key_type in (("piv-ec", "EC:prime256v1"), ("piv-rsa", "rsa:2048")):
            agent, pub = env.start_piv_agent(name, key_type)
            env.enroll(w.gw, "alice", pub, "piv", label=name)
            config = env.client_config(w.gw, w.key, w.cert, target=w.target,
                                       forward_agent=agent, name=f"ssh_config-{name}")
            r = env.ssh(config, "target", "echo via-piv")
            assert_ok(r, "via-piv\n")
            fp = env.run(["ssh-keygen", "-lf", pub], check=True).stdout.split()[1]
            w.gw.wait_for_log(rf"event=mfa_verified .*key_fp={re.escape(fp)}.*kind=piv")
            # No counter on PIV signatures: a second connection works as well.
            r = env.ssh(config, "target", "echo again")
            assert_ok(r, "again\n")


if __name__ == "__main__":
    harness.scenario(main)
