#!/usr/bin/env python3
"""Freshness of the touch on one connection: through a multiplexed (ControlMaster) connection to
the gateway, a second `ssh -J` opens a second target channel on the same SSH connection. With
[mfa] max_age = 0 (the default) it is asked for a new touch; with max_age = 60s the first touch
is reused (event=mfa_reused) and the authenticator signs only once."""

import harness
from harness import assert_ok, check


def signatures(path):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.startswith("sign ") and "result=ok" in line)
    except FileNotFoundError:
        return 0


def run(env, w, name, mfa_extra):
    provider = harness.test_sk_path()
    ctl = env.path(name, "control")
    log = env.path(name, "signatures.log")
    with open(ctl, "w") as f:
        f.write(f"flags=1\ncounter=increment\nlog={log}\n")
    gw = env.start_gateway([w.ca], targets=[w.target], name=name, mfa_extra=mfa_extra)
    sk = env.make_sk_key(f"alice-{name}", "ecdsa-sk", provider=provider,
                         provider_env={"TG_TEST_SK_CONTROL": ctl})
    agent = env.start_sk_agent(f"agent-{name}", sk, provider=provider, control=ctl)
    env.enroll(gw, "alice", sk, "fido2")
    control_path = env.path(name, "cm")
    config = env.client_config(gw, w.key, w.cert, target=w.target, forward_agent=agent,
                               name=f"ssh_config-{name}",
                               gw_extra=f"  ControlMaster auto\n  ControlPath {control_path}\n"
                                        "  ControlPersist 30\n")
    try:
        assert_ok(env.ssh(config, "target", "echo first"), "first\n")
        assert_ok(env.ssh(config, "target", "echo second"), "second\n")
        accepted = len([l for l in gw.log_text().splitlines()
                        if "event=connection_accepted" in l])
        check(accepted == 1, f"expected one multiplexed connection to {name}, saw {accepted}")
    finally:
        env.run([harness.SSH, "-F", config, "-O", "exit", "gw"], timeout=10)
    return gw, signatures(log)


def main():
    with harness.Env("mfa_max_age") as env:
        w = env.world(touch_agent=False)
        gw, n = run(env, w, "fresh", "")
        check(n == 2, f"max_age = 0: expected a touch per channel, got {n} signatures")
        check("event=mfa_reused" not in gw.log_text(), "max_age = 0 reused a touch")

        gw, n = run(env, w, "reuse", 'max_age = "60s"')
        check(n == 1, f"max_age = 60s: expected one touch for both channels, got {n}")
        gw.wait_for_log(r"event=mfa_reused conn=1 ")


if __name__ == "__main__":
    harness.scenario(main)
