#!/usr/bin/env python3
"""Certificates minted by ssh::build_user_certificate (through tests/tools/cert_mint) log in to a
real sshd that trusts the CA: an ECDSA CA made by ssh-keygen -m PEM and an Ed25519 CA made by
openssl genpkey; force-command and source-address are enforced by sshd; a certificate for another
principal is refused."""

import os

import harness
from harness import SSH, SSH_KEYGEN, assert_ok, check


def cert_mint_path():
    return harness.built_program("CERT_MINT", "tests", "tools", "cert_mint")


def main():
    mint = cert_mint_path()
    with harness.Env("cert_mint_login") as env:
        # CA 1: ssh-keygen writes the key (PEM) and the .pub line; cert_mint reads the same key.
        ecdsa = env.make_ca("ecdsa", key_type="ecdsa")
        env.run([SSH_KEYGEN, "-q", "-p", "-m", "PEM", "-N", "", "-P", "", "-f", ecdsa.key],
                check=True)
        printed = env.run([mint, "--print-public", ecdsa.key], check=True).stdout.split()
        check(printed[:2] == harness.read_text(ecdsa.pub).split()[:2],
              "cert_mint and ssh-keygen disagree on the CA's public key")

        # CA 2: OpenSSL makes the key; its .pub line comes from cert_mint.
        ed_key = env.path("keys", "ca-ed25519.pem")
        env.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", ed_key], check=True)
        ed = harness.Ca("ed25519", ed_key)
        ed.pub = ed_key + ".pub"
        with open(ed.pub, "w") as f:
            f.write(env.run([mint, "--print-public", ed_key], check=True).stdout)

        target = env.start_target([ecdsa, ed])
        key = env.make_user_key("alice")

        def mint_cert(ca, name, *options):
            cert = env.path("certs", f"{name}-cert.pub")
            env.run([mint, *options, ca.key, key.pub, cert], check=True)
            return cert

        def login(cert, command="true"):
            return env.run([SSH, "-F", "none", "-i", key.key, "-o", f"CertificateFile={cert}",
                            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                            "-o", "LogLevel=ERROR", "-p", str(target.port), "-l", env.login,
                            "127.0.0.1", command])

        for ca in (ecdsa, ed):
            cert = mint_cert(ca, f"plain-{ca.name}", "--principal", env.login,
                             "--key-id", f"minted-{ca.name}", "--serial", "7")
            assert_ok(login(cert, "echo logged-in"), "logged-in\n")
            check(f'ID "minted-{ca.name}" (serial 7)' in target.log_text(),
                  f"sshd did not log the {ca.name}-signed certificate's key id and serial")

        forced = mint_cert(ed, "forced", "--principal", env.login,
                           "--critical", "force-command=echo forced",
                           "--critical", "source-address=127.0.0.1/32")
        assert_ok(login(forced, "echo not-this"), "forced\n")

        elsewhere = mint_cert(ed, "elsewhere", "--principal", env.login,
                              "--critical", "source-address=10.9.9.9/32")
        r = login(elsewhere)
        check(r.returncode == 255 and "Permission denied" in r.stderr,
              "a certificate bound to another source address logged in", r)

        other = mint_cert(ecdsa, "other", "--principal", "someone-else")
        r = login(other)
        check(r.returncode == 255 and "Permission denied" in r.stderr,
              "a certificate for another principal logged in", r)
        check(os.path.exists(target.log), "sshd log missing")


if __name__ == "__main__":
    harness.scenario(main)
