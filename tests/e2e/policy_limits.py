#!/usr/bin/env python3
"""Selectors and limits of rules with a real `ssh -J`:
- `hosts` lets a user reach a destination that is not a configured [[target]] (here the name
  localhost, resolved at connect time; the resolved address is logged), on the rule's ports only;
  a deny rule on the addresses the name resolves to still refuses it (bob);
- `from` denies a client outside the source networks;
- a time window that excludes now denies (and names the window in the refusal's log line);
- `max_session` closes a running session with session_time_limit, and the client is told why."""

import datetime
import re

import harness
from harness import assert_ok, assert_refused, check


def main():
    with harness.Env("policy_limits") as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        target = env.start_target([ca])
        # An hour window that surely excludes now (UTC): it starts in 3 hours and lasts one hour.
        now = datetime.datetime.now(datetime.timezone.utc)
        start = (now.hour + 3) % 24
        window = f"{start:02d}:00-{(start + 1) % 24:02d}:00".replace("-00:00", "-24:00")
        rules = f"""
[[rule]]
id = "no-loopback-for-bob"
effect = "deny"
principals = ["bob"]
hosts = ["127.0.0.0/8", "::1/128"]

[[rule]]
id = "dynamic"
principals = ["alice", "bob"]
hosts = ["localhost"]
ports = [{target.port}]

[[rule]]
id = "vpn-only"
principals = ["alice"]
targets = ["db2"]
from = ["192.0.2.0/24"]

[[rule]]
id = "night-shift"
principals = ["alice"]
targets = ["db3"]
hours = ["{window}"]
timezone = "UTC"

[[rule]]
id = "short"
principals = ["alice"]
targets = ["db1"]
max_session = "3s"
"""
        gw = env.start_gateway([ca], targets=[target, ("db2", target.address),
                                              ("db3", target.address)], rules=rules)
        config = env.client_config(gw, key, cert, target=target)
        with open(config) as f:
            text = f.read()
        text = text.replace("Host db1 db2 nosuch\n",
                            f"Host db1 db2 db3 nosuch\n", 1)
        text = text.replace("\nHost *\n", f"\nHost dyn\n  HostName localhost\n  Port {target.port}\n"
                            f"  User {env.login}\n  IdentityFile {key.key}\n"
                            f"  CertificateFile {cert.path}\n\nHost *\n", 1)
        with open(config, "w") as f:
            f.write(text)
        bob = env.make_user_key("bob")
        bob_cert = env.sign(bob, ca)
        bob_config = env.client_config(gw, bob, bob_cert, user="bob", target=target,
                                       name="ssh_config-bob")
        with open(bob_config) as f:
            text = f.read()
        text = text.replace("\nHost *\n", f"\nHost dyn\n  HostName localhost\n  Port {target.port}\n"
                            f"  User {env.login}\n  IdentityFile {bob.key}\n"
                            f"  CertificateFile {bob_cert.path}\n\nHost *\n", 1)
        with open(bob_config, "w") as f:
            f.write(text)

        # hosts: localhost is not configured, the rule selects it; the resolved address is logged.
        assert_ok(env.ssh(config, "dyn", "echo dynamic-ok"), "dynamic-ok\n")
        gw.wait_for_log(r"event=policy_decision .*target=localhost .*effect=allow rule=dynamic ")
        gw.wait_for_log(r"event=channel_open .*target=localhost address=(127\.0\.0\.1|\[::1\]):")

        # bob may ask for localhost by name (rule dynamic), but a deny rule covers every loopback
        # address: once the name is resolved, the deny holds, and no connection is made.
        r = env.ssh(bob_config, "dyn", "echo must-not-run")
        check(r.returncode == 255 and "must-not-run" not in r.stdout, "expected bob refused", r)
        check("policy_denied" in r.stderr and "resolves to" in r.stderr
              and "no-loopback-for-bob" in r.stderr,
              "expected bob to be told which rule denies the resolved address", r)
        gw.wait_for_log(r"event=policy_decision .*user=bob target=localhost address=\S+ "
                        r"effect=deny rule=no-loopback-for-bob code=policy_denied")
        check(not re.search(r"event=channel_open .*user=bob", gw.log_text()),
              "bob's channel must not reach the target", gw.log_text())

        # from: the client (127.0.0.1) is outside 192.0.2.0/24.
        r = env.ssh(config, "db2", "echo must-not-run")
        assert_refused(r, "policy_no_match", gw)

        # The time window excludes now.
        r = env.ssh(config, "db3", "echo must-not-run")
        assert_refused(r, "policy_no_match", gw)

        # max_session: the session is closed after 3 s with the reason.
        r = env.ssh(config, "db1", "echo started; sleep 20; echo must-not-print", timeout=40)
        check(r.returncode != 0 and "started" in r.stdout and "must-not-print" not in r.stdout,
              "expected the session to be cut after max_session", r)
        check("session_time_limit" in r.stderr and "at most 3s" in r.stderr,
              "expected the client to be told the session time limit", r)
        gw.wait_for_log(r"event=channel_failed .*code=session_time_limit")


if __name__ == "__main__":
    harness.scenario(main)
