#!/usr/bin/env python3
"""The policy decides every ProxyJump channel, with real certificates, a real sshd and our test
authenticator behind a real ssh-agent:
- group membership from a certificate extension (ssh-keygen -O extension:groups@corp.example=...)
  allows; the same user without it is denied by default (policy_no_match); a deny rule for the
  group `contractors` wins over the allow (policy_denied);
- a rule that needs touch+pin or piv refuses a FIDO2 touch without user verification
  (factor_too_weak) and accepts it with UV;
- step-up: on one ControlMaster connection, a touch for the staging rule (touch, max_age 5m) is
  reused for staging but NOT for prod (touch+pin): a new touch is asked (event=mfa_step_up),
  after which both are reused;
- a reload while the user is touching the key: the channel is decided again when the touch
  arrives, and a touch that no longer meets the rule is refused;
- a touch within max_age is not reused once its key is revoked (the store is asked first)."""

import os

import harness
from harness import assert_ok, assert_refused, check, read_text, write_sk_control

RULES = """
[[group]]
name = "dev"
extension = "groups@corp.example"

[[group]]
name = "contractors"
extension = "groups@corp.example"
extension_value = "contractor"

[[rule]]
id = "no-contractors-prod"
effect = "deny"
groups = ["contractors"]
targets = ["db2"]

[[rule]]
id = "staging"
groups = ["dev"]
targets = ["db1"]
factor = "touch"
max_age = "5m"

[[rule]]
id = "prod"
groups = ["dev"]
targets = ["db2"]
factor = ["touch+pin", "piv"]
max_age = "5m"
"""


def signatures(path):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.startswith("sign ") and "result=ok" in line)
    except FileNotFoundError:
        return 0


def main():
    with harness.Env("policy_jump") as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        plain = env.sign(key, ca, name="alice-plain")
        dev = env.sign(key, ca, options=("extension:groups@corp.example=dev,oncall",),
                       name="alice-dev")
        both = env.sign(key, ca, options=("extension:groups@corp.example=dev,contractor",),
                        name="alice-contractor")
        target = env.start_target([ca])
        gw = env.start_gateway([ca], targets=[target, ("db2", target.address)], rules=RULES)
        env.auto_touch = False
        provider = harness.test_sk_path()
        log = env.path("signatures.log")
        ctl = env.path("sk", "control")
        write_sk_control(ctl, flags=1, counter="increment", log=log)
        sk = env.make_sk_key("alice-sk", "ecdsa-sk", provider=provider,
                             provider_env={"TG_TEST_SK_CONTROL": ctl})
        agent = env.start_sk_agent("agent-sk", sk, provider=provider, control=ctl)
        env.enroll(gw, "alice", sk, "fido2", label="sk")
        agent_sock = agent.sock

        def config_for(cert, name, extra=""):
            return env.client_config(gw, key, cert, target=target, forward_agent=agent_sock,
                                     name=name, gw_extra=extra)

        # No group: deny by default, and the client is told why.
        r = env.ssh(config_for(plain, "cfg-plain"), "db1", "echo must-not-run")
        assert_refused(r, "policy_no_match", gw)
        check("no rule allows alice to reach db1" in r.stderr, "expected the reason", r)
        check(signatures(log) == 0, "a denied request must not ask for a touch")

        # dev (from the extension): staging with a plain touch.
        cfg_dev = config_for(dev, "cfg-dev")
        assert_ok(env.ssh(cfg_dev, "db1", "echo staging-ok"), "staging-ok\n")
        gw.wait_for_log(r"event=policy_decision .*target=db1 .*effect=allow rule=staging ")

        # dev and contractor: the deny rule wins for prod.
        r = env.ssh(config_for(both, "cfg-both"), "db2", "echo must-not-run")
        assert_refused(r, "policy_denied", gw)
        check("rule no-contractors-prod denies alice" in r.stderr, "expected the deny rule", r)

        # prod needs touch+pin or piv: a touch without UV is too weak.
        before = signatures(log)
        r = env.ssh(cfg_dev, "db2", "echo must-not-run")
        assert_refused(r, "factor_too_weak", gw)
        check("rule prod requires piv or touch+pin" in r.stderr and "no PIN was asked" in r.stderr,
              "expected the factor the rule needs and what the touch lacked", r)
        check(signatures(log) == before + 1, "expected exactly one touch for the refused request")
        write_sk_control(ctl, flags=5, counter="increment", log=log)
        assert_ok(env.ssh(cfg_dev, "db2", "echo prod-ok"), "prod-ok\n")
        gw.wait_for_log(r"event=mfa_verified .*factor=touch\+pin")

        # Step-up on one multiplexed connection.
        write_sk_control(ctl, flags=1, counter="increment", log=log)
        cm = env.path("cm")
        cfg_mux = config_for(dev, "cfg-mux", f"  ControlMaster auto\n  ControlPath {cm}\n"
                                             "  ControlPersist 30\n")
        try:
            start = signatures(log)
            assert_ok(env.ssh(cfg_mux, "db1", "echo s1"), "s1\n")
            check(signatures(log) == start + 1, "expected a touch for the first channel")
            assert_ok(env.ssh(cfg_mux, "db1", "echo s2"), "s2\n")
            check(signatures(log) == start + 1, "staging within max_age: expected the touch reused")
            gw.wait_for_log(r"event=mfa_reused .*rule=staging ")
            write_sk_control(ctl, flags=5, counter="increment", log=log)
            assert_ok(env.ssh(cfg_mux, "db2", "echo p1"), "p1\n")
            check(signatures(log) == start + 2, "prod after a plain touch: expected a new touch")
            gw.wait_for_log(r"event=mfa_step_up .*rule=prod ")
            assert_ok(env.ssh(cfg_mux, "db2", "echo p2"), "p2\n")
            assert_ok(env.ssh(cfg_mux, "db1", "echo s3"), "s3\n")
            check(signatures(log) == start + 2,
                  "after the touch+pin, prod and staging must reuse it")
            conns = {line.split("conn=")[1].split()[0] for line in gw.log_text().splitlines()
                     if "event=mfa_step_up" in line}
            check(len(conns) == 1, f"expected the step-up on one connection, got {conns}")
        finally:
            env.run([harness.SSH, "-F", cfg_mux, "-O", "exit", "gw"], timeout=10)
        check(os.path.exists(log), "the authenticator kept no log")

        # Reload while the key waits for its touch: staging now needs touch+pin.
        write_sk_control(ctl, flags=1, counter="increment", log=log, delay_ms=3000)
        requests = len(gw.events("mfa_sign_request"))
        slow = env.spawn(env.ssh_argv(cfg_dev, "db1", "echo must-not-run"))
        harness.wait_until(lambda: len(gw.events("mfa_sign_request")) > requests, 10,
                           "the sign request of the slow touch")
        text = read_text(gw.config)
        with open(gw.config, "w") as f:
            f.write(text.replace('targets = ["db1"]\nfactor = "touch"',
                                 'targets = ["db1"]\nfactor = "touch+pin"', 1))
        r = env.touchgate(gw, "reload")
        check(r.returncode == 0, "touchgate reload failed", r)
        out, err = slow.communicate(timeout=30)
        err = err.decode(errors="replace")
        check(slow.returncode == 255 and out == b"" and "(factor_too_weak)" in err and
              "rule staging requires touch+pin; the touch proved only touch" in err,
              f"a touch made under the old rule passed the new one: {out!r} {err!r}")

        # Revoked between two channels of one connection: the touch is not reused.
        write_sk_control(ctl, flags=5, counter="increment", log=log)
        cm2 = env.path("cm2")
        cfg_mux2 = config_for(dev, "cfg-mux2", f"  ControlMaster auto\n  ControlPath {cm2}\n"
                                               "  ControlPersist 30\n")
        try:
            start = signatures(log)
            assert_ok(env.ssh(cfg_mux2, "db1", "echo r1"), "r1\n")
            assert_ok(env.ssh(cfg_mux2, "db1", "echo r2"), "r2\n")
            check(signatures(log) == start + 1, "expected the touch reused for r2")
            fp = env.keys_json(gw, "alice")[0]["fingerprint"]
            r = env.touchgate(gw, "keys", "revoke", fp)
            check(r.returncode == 0, "touchgate keys revoke failed", r)
            r = env.ssh(cfg_mux2, "db1", "echo must-not-run")
            # (The multiplexing client does not print the disconnect; its master does.)
            check(r.returncode == 255 and r.stdout == "", "a touch of a revoked key was reused", r)
            gw.wait_for_log(r"event=mfa_reuse_refused .*reason=revoked")
            gw.wait_for_log(r"event=mfa_refused .*code=mfa_key_revoked")
            check(signatures(log) == start + 1, "a revoked key must not be asked to sign")
        finally:
            env.run([harness.SSH, "-F", cfg_mux2, "-O", "exit", "gw"], timeout=10)


if __name__ == "__main__":
    harness.scenario(main)
