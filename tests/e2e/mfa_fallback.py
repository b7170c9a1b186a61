#!/usr/bin/env python3
"""Several enrolled keys in one forwarded agent: a FIDO2 key on our test authenticator and a
PIV-kind key. They are asked in [mfa] prefer order (FIDO2 first by default; PIV first on a
gateway with prefer = ["piv", "fido2"], whose test authenticator is then never asked). When the
agent refuses the preferred key (its token fails, as an unplugged one does), the next enrolled
key is asked in the same dialog and its touch lets the user through; the log and the audit log
show the first refusal. A signature that arrives but fails verification is refused with its own
reason, without asking the next key. When every key is refused, mfa_agent_refused names them
all."""

import re

import harness
from harness import assert_ok, assert_refused, check, read_text, write_sk_control


def sign_requests(gw, fp):
    return sum(1 for e in gw.events("mfa_sign_request") if e.get("key_fp") == fp)


def main():
    with harness.Env("mfa_fallback") as env:
        w = env.world(touch_agent=False)
        provider = harness.test_sk_path()
        ctl = env.path("sk", "control")
        signatures = env.path("sk", "signatures.log")
        write_sk_control(ctl, flags=1, counter="increment", log=signatures)
        sk = env.make_sk_key("alice-sk", "ecdsa-sk", provider=provider,
                             provider_env={"TG_TEST_SK_CONTROL": ctl})
        agent = env.start_sk_agent("agent", sk, provider=provider, control=ctl)
        piv = env.make_user_key("alice-piv")
        agent.add(piv)
        env.enroll(w.gw, "alice", sk, "fido2", label="sk")
        env.enroll(w.gw, "alice", piv, "piv", label="piv")
        fps = {k["label"]: k["fingerprint"] for k in env.keys_json(w.gw, "alice")}
        sk_fp, piv_fp = fps["sk"], fps["piv"]
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=agent,
                                   name="ssh_config-both")

        # Both keys work: the FIDO2 key is asked, and only it.
        assert_ok(env.ssh(config, "target", "echo preferred"), "preferred\n")
        w.gw.wait_for_log(rf"event=mfa_verified .*key_fp={re.escape(sk_fp)} kind=fido2")
        check(sign_requests(w.gw, piv_fp) == 0, "the PIV key was asked although FIDO2 signed")

        # The FIDO2 token fails: the agent refuses, the PIV key is asked and lets alice through.
        write_sk_control(ctl, flags=1, counter="increment", fail=1, log=signatures)
        assert_ok(env.ssh(config, "target", "echo second-key"), "second-key\n")
        verified = w.gw.wait_for_audit("mfa_verified", key_fp=piv_fp)
        w.gw.wait_for_log(rf"event=mfa_sign_refused .*key_fp={re.escape(sk_fp)} kind=fido2 "
                          rf"answer=refused next_key_fp={re.escape(piv_fp)}")
        check("result=fail" in read_text(signatures), "the test authenticator was not asked")
        story = [(r["event"], r.get("key_fp")) for r in w.gw.audit_records(conn=verified["conn"])
                 if r["event"].startswith("mfa_")]
        check(story == [("mfa_challenge", sk_fp), ("mfa_sign_refused", sk_fp),
                        ("mfa_challenge", piv_fp), ("mfa_verified", piv_fp)],
              f"unexpected second-factor audit records: {story}")

        # A FIDO2 signature without the touch flag: refused as such; the PIV key is not asked.
        write_sk_control(ctl, flags=0, counter="increment")
        asked = sign_requests(w.gw, piv_fp)
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "touch_not_present", w.gw)
        check(sign_requests(w.gw, piv_fp) == asked, "the PIV key was asked after a bad signature")

        # The agent refuses every key: mfa_agent_refused lists both, in the order asked.
        refusing = env.start_agent_proxy(agent, "refuse-sign")
        config_refusing = env.client_config(w.gw, w.key, w.cert, target=w.target,
                                            forward_agent=refusing, name="ssh_config-refusing")
        r = env.ssh(config_refusing, "target", "echo must-not-run")
        assert_refused(r, "mfa_agent_refused", w.gw)
        first = r.stderr.find(f"{sk_fp} (fido2) refused")
        second = r.stderr.find(f"{piv_fp} (piv) refused")
        check(0 <= first < second, "expected both keys, FIDO2 first, in the message", r)
        rec = w.gw.wait_for_audit("mfa_refused", reason="mfa_agent_refused")
        refusals = w.gw.audit_records("mfa_sign_refused", conn=rec["conn"])
        check([x.get("key_fp") for x in refusals] == [sk_fp, piv_fp],
              f"expected an mfa_sign_refused record per key: {refusals}")

        # [mfa] prefer = ["piv", "fido2"]: the PIV key is asked first; the token is not touched.
        gw = env.start_gateway([w.ca], targets=[w.target], name="gw-piv-first",
                               mfa_extra='prefer = ["piv", "fido2"]')
        env.enroll(gw, "alice", sk, "fido2", label="sk")
        env.enroll(gw, "alice", piv, "piv", label="piv")
        write_sk_control(ctl, flags=1, counter="increment", log=signatures)
        before = read_text(signatures)
        config_piv = env.client_config(gw, w.key, w.cert, target=w.target, forward_agent=agent,
                                       name="ssh_config-piv-first")
        assert_ok(env.ssh(config_piv, "target", "echo piv-first"), "piv-first\n")
        gw.wait_for_log(rf"event=mfa_verified .*key_fp={re.escape(piv_fp)} kind=piv")
        check(sign_requests(gw, sk_fp) == 0, "the FIDO2 key was asked before the PIV key")
        check(read_text(signatures) == before, "the test authenticator was asked")


if __name__ == "__main__":
    harness.scenario(main)
