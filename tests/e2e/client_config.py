#!/usr/bin/env python3
"""`touchgate client-config` prints an ssh_config snippet that real OpenSSH reads as meant
(`ssh -G`: the targets jump through the gateway, the agent is forwarded to the gateway only), and
that works as printed: `ssh db1` through the gateway with the touch from the forwarded agent.
Wrong options are usage errors (exit 2), an unreadable configuration an error (exit 1)."""

import os
import re

import harness
from harness import assert_ok, check


def ssh_g(env, config, host):
    """`ssh -G -F config host` as a dict of (lower-case) option -> list of values."""
    r = env.run([harness.SSH, "-G", "-F", config, host])
    assert_ok(r)
    out = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


def main():
    with harness.Env("client_config") as env:
        rules = ('[[rule]]\nid = "everyone"\nprincipals = ["*"]\ntargets = ["*"]\n\n'
                 '[[rule]]\nid = "fleet"\nprincipals = ["alice"]\n'
                 'hosts = ["*.prod.example.com", "10.1.0.0/16"]\n')
        w = env.world(extra="[[target]]\nname = \"web-staging\"\naddress = \"192.0.2.10\"\n",
                      rules=rules)

        # Defaults: the first listen address and port, the gateway's name as the alias, the
        # certificate at its usual place, no User line.
        r = env.touchgate(w.gw, "client-config")
        assert_ok(r)
        text = r.stdout
        check(re.search(r"^Host gw$", text, re.M), "expected a 'Host gw' block", r)
        check(f"    HostName 127.0.0.1\n    Port {w.gw.port}\n" in text,
              "expected HostName and Port from [server] listen", r)
        check("    CertificateFile ~/.ssh/id_ed25519-cert.pub\n"
              "    IdentityFile ~/.ssh/id_ed25519\n" in text, "expected the default key files", r)
        check("    ForwardAgent yes\n" in text and "    # User NAME\n" in text,
              "expected ForwardAgent yes and a commented User line", r)
        check(re.search(r"^Host db1 web-staging\n    ProxyJump gw$", text, re.M),
              "expected one Host line for both targets with ProxyJump gw", r)
        check("Terminating mode" not in text,
              "no [ca] and no shell/exec/sftp rule: terminating mode is not offered", r)
        snippet = env.path("snippet-default")
        with open(snippet, "w") as f:
            f.write(text)
        db1 = ssh_g(env, snippet, "db1")
        check(db1.get("proxyjump") == ["gw"], f"ssh -G db1: proxyjump {db1.get('proxyjump')}")
        check(db1.get("forwardagent") == ["no"],
              f"ssh -G db1: the agent must not go to the target: {db1.get('forwardagent')}")
        gw = ssh_g(env, snippet, "gw")
        check(gw.get("hostname") == ["127.0.0.1"] and gw.get("port") == [str(w.gw.port)],
              f"ssh -G gw: hostname {gw.get('hostname')} port {gw.get('port')}")
        check(gw.get("forwardagent") == ["yes"] and gw.get("proxyjump") is None,
              f"ssh -G gw: forwardagent {gw.get('forwardagent')} proxyjump {gw.get('proxyjump')}")
        check(ssh_g(env, snippet, "web-staging").get("proxyjump") == ["gw"],
              "ssh -G web-staging: expected proxyjump gw")
        # Destinations of `hosts` rules: a commented pattern, not active until the user says so.
        check("# Host *.prod.example.com\n#     ProxyJump gw\n" in text
              and "# Addresses in 10.1.0.0/16: ssh -J gw ADDRESS\n" in text,
              "expected the hosts rule's pattern and network as comments", r)
        check(ssh_g(env, snippet, "web7.prod.example.com").get("proxyjump") is None,
              "ssh -G web7.prod.example.com: the commented pattern must not apply")

        # --gateway and --user: written as given; port 22 is left out.
        r = env.touchgate(w.gw, "client-config", "--gateway", "gw.example.com", "--user", "alice")
        assert_ok(r)
        check(f"    HostName gw.example.com\n    Port {w.gw.port}\n" in r.stdout
              and "    User alice\n" in r.stdout, "expected HostName, listen port, User", r)
        r = env.touchgate(w.gw, "client-config", "--gateway", "[2001:db8::1]:22")
        assert_ok(r)
        check("    HostName 2001:db8::1\n    # " in r.stdout and "Port" not in r.stdout,
              "expected an IPv6 HostName without brackets and no Port line", r)

        # The snippet as printed reaches db1: the certificate and key of the world, the world's
        # touch agent as the agent ssh forwards (SSH_AUTH_SOCK), nothing else but what a test
        # needs to run unattended.
        r = env.touchgate(w.gw, "client-config", "--user", "alice", "--cert", w.cert.path,
                          "--identity", w.key.key)
        assert_ok(r)
        live = env.path("snippet-live")
        with open(live, "w") as f:
            f.write(r.stdout)
            f.write(f"""
Host *
    User {env.login}
    IdentityFile {w.key.key}
    CertificateFile {w.cert.path}
    IdentitiesOnly yes
    BatchMode yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    GlobalKnownHostsFile /dev/null
    LogLevel ERROR
    ControlMaster no
    ControlPath none
""")
        r = env.run([harness.SSH, "-F", live, "db1", "echo ok"],
                    extra_env={"SSH_AUTH_SOCK": w.touch.sock})
        assert_ok(r, "ok\n")
        check(any(e.get("user") == "alice" for e in w.gw.events("mfa_verified")),
              "expected the gateway to log a verified touch for alice", r)

        # Wrong options: usage errors, exit 2; nothing on stdout.
        for args in (["--gateway", "gw example"], ["--gateway", "gw:0"], ["--user", "a b"],
                     ["--user", "al%ice"], ["--cert", 'x"y-cert.pub'], ["--bogus"]):
            r = env.touchgate(w.gw, "client-config", *args)
            check(r.returncode == 2 and r.stdout == "" and r.stderr.startswith("touchgate: "),
                  f"expected a usage error for {args}", r)
        # A certificate whose key cannot be derived: an error naming the fix.
        r = env.touchgate(w.gw, "client-config", "--cert", "sso.crt")
        check(r.returncode == 1 and "--identity" in r.stderr
              and r.stderr.rstrip().endswith("(client_config_invalid)"),
              "expected client_config_invalid asking for --identity", r)
        r = env.run([harness.touchgate_path(), "-f", os.path.join(env.dir, "nope.toml"),
                     "client-config"])
        check(r.returncode == 1 and "(config_unreadable)" in r.stderr,
              "expected config_unreadable for a missing configuration", r)


if __name__ == "__main__":
    harness.scenario(main)
