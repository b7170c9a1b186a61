#!/usr/bin/env python3
"""A forwarded agent whose keys are not enrolled for the user is refused with a message listing
the fingerprints that are enrolled; a user with no enrolled key at all is told so; a revoked key
is refused as revoked. No target connection is made in any of these cases."""

import re

import harness
from harness import assert_ok, assert_refused, check


def main():
    with harness.Env("mfa_unenrolled") as env:
        w = env.world()  # alice's default touch key is enrolled
        enrolled_fp = env.keys_json(w.gw, "alice")[0]["fingerprint"]

        # An agent holding only a key nobody enrolled.
        stranger = env.make_user_key("stranger")
        other = env.start_agent("other")
        other.add(stranger)
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=other,
                                   name="ssh_config-other")
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "mfa_no_enrolled_key", w.gw)
        check(enrolled_fp in r.stderr, "expected the enrolled fingerprint in the message", r)

        # bob has a valid certificate but no enrolled key.
        bob = env.make_user_key("bob")
        bob_cert = env.sign(bob, w.ca)
        config = env.client_config(w.gw, bob, bob_cert, user="bob", target=w.target,
                                   forward_agent=other, name="ssh_config-bob")
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "mfa_no_enrolled_key", w.gw)
        check("no hardware key is enrolled for bob" in r.stderr, "expected 'none enrolled'", r)

        # alice's key revoked by an admin: refused as revoked (takes effect without a restart).
        r = env.touchgate(w.gw, "keys", "revoke", enrolled_fp)
        check(r.returncode == 0, "keys revoke failed", r)
        r = env.ssh(w.config, "target", "echo must-not-run")
        assert_refused(r, "mfa_key_revoked", w.gw)
        check(enrolled_fp in r.stderr, "expected the revoked key's fingerprint", r)

        check(not re.search(r"event=channel_open\b", w.gw.log_text()),
              "the gateway connected to the target without a verified touch")

        # A new key enrolled for alice works at once.
        env.touch_agent(w.gw, "alice", name="touch2")
        config = env.client_config(w.gw, w.key, w.cert, target=w.target,
                                   forward_agent=env.path("touch2", "agent.sock"),
                                   name="ssh_config-new")
        assert_ok(env.ssh(config, "target", "echo new-key"), "new-key\n")


if __name__ == "__main__":
    harness.scenario(main)
