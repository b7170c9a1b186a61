#!/usr/bin/env python3
"""`touchgate keys add|list|revoke|clear-clone` against a real configuration file, with keys made
by the real ssh-keygen (FIDO2 keys through the sk-dummy software authenticator): what is enrolled
is listed as a table and as JSON with ssh-keygen's fingerprints; a duplicate, a kind that does not
fit the key, a certificate and a private key are refused with exit status 1 and
"touchgate: MESSAGE (CODE)"; revoke and clear-clone change the status; a missing or invalid
configuration and a newer database are refused with 1; a wrong command line exits 2."""

import json
import os
import re
import sqlite3
import stat

import harness
from harness import check

SK_PROVIDER = os.environ.get("SK_PROVIDER",
                             "/usr/lib/openssh/regress/misc/sk-dummy/sk-dummy.so")


def make_key(env, name, key_type):
    """A new key pair made by ssh-keygen; sk types through the sk-dummy authenticator. Returns
    (private key path, public key path)."""
    key = env.path("keys", name)
    argv = [harness.SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", name, "-f", key]
    if key_type.endswith("-sk"):
        argv += ["-w", SK_PROVIDER]
    env.run(argv, check=True)
    return key, key + ".pub"


def fingerprint(env, pub):
    r = env.run([harness.SSH_KEYGEN, "-E", "sha256", "-lf", pub], check=True)
    return r.stdout.split()[1]


def key_line(pub):
    """'type base64' of a .pub file (without its comment)."""
    with open(pub) as f:
        return " ".join(f.read().split()[:2])


def assert_error(r, code, pattern=None):
    """Exit status 1 and exactly one line 'touchgate: MESSAGE (CODE)' on stderr, nothing on
    stdout."""
    check(r.returncode == 1, f"expected exit status 1 ({code})", r)
    check(re.fullmatch(rf"touchgate: .+ \({re.escape(code)}\)\n", r.stderr),
          f"expected 'touchgate: ... ({code})' on stderr", r)
    if pattern is not None:
        check(re.search(pattern, r.stderr), f"expected {pattern!r} in the message", r)
    check(r.stdout == "", "expected nothing on stdout", r)


def assert_usage(r, command):
    """Exit status 2, a message and a pointer to the command's --help."""
    check(r.returncode == 2, "expected exit status 2 for a usage error", r)
    check(r.stderr.startswith("touchgate: "), "expected 'touchgate: ...' on stderr", r)
    check(f"Run '{command} --help' for usage." in r.stderr,
          f"expected a pointer to '{command} --help'", r)
    check(r.stdout == "", "expected nothing on stdout", r)


def main():
    with harness.Env("keys_cli") as env:
        tg = harness.touchgate_path()
        ca = env.make_ca("sso")
        # The daemon's own configuration file; state_dir = "state" beside it.
        config = env.write_gateway_config([ca], listen=["127.0.0.1:2222"])
        state = os.path.join(os.path.dirname(config), "state")

        def touchgate(*args, **kw):
            return env.run([tg, "-f", config, *args], timeout=20, **kw)

        def listed(*args):
            r = touchgate("keys", "list", "--json", *args)
            harness.assert_ok(r)
            try:
                keys = json.loads(r.stdout)
            except json.JSONDecodeError as e:
                raise AssertionError(f"keys list --json printed invalid JSON: {e}\n{r}")
            check(isinstance(keys, list), "expected a JSON array", r)
            return {k["fingerprint"]: k for k in keys}

        alice_ecdsa_key, alice_ecdsa = make_key(env, "alice-ecdsa-sk", "ecdsa-sk")
        _, alice_ed = make_key(env, "alice-ed25519-sk", "ed25519-sk")
        bob_key, bob_piv = make_key(env, "bob-piv", "ecdsa")
        fp_alice_ecdsa = fingerprint(env, alice_ecdsa)
        fp_alice_ed = fingerprint(env, alice_ed)
        fp_bob = fingerprint(env, bob_piv)

        # -- enrolling -------------------------------------------------------------------------
        r = touchgate("keys", "add", "--user", "alice", "--kind", "fido2", "--label",
                      "yubikey 5c", "--pin-required", alice_ecdsa)
        harness.assert_ok(r, f"enrolled {fp_alice_ecdsa} (sk-ecdsa-sha2-nistp256@openssh.com, "
                             "fido2) for alice\n")
        check(r.stderr == "", "expected nothing on stderr", r)
        # The configuration from $TOUCHGATE_CONFIG, from another directory.
        r = env.run([tg, "keys", "add", "--user", "alice", "--kind", "fido2", alice_ed],
                    extra_env={"TOUCHGATE_CONFIG": config}, cwd="/")
        harness.assert_ok(r, f"enrolled {fp_alice_ed} (sk-ssh-ed25519@openssh.com, fido2) for "
                             "alice\n")
        # Global options may also follow the command.
        r = env.run([tg, "keys", "add", "--user", "bob", "--kind", "piv", bob_piv, "-f", config])
        harness.assert_ok(r, f"enrolled {fp_bob} (ecdsa-sha2-nistp256, piv) for bob\n")

        check(os.path.isdir(state), f"expected the state directory {state}")
        mode = stat.S_IMODE(os.stat(state).st_mode)
        check(mode == 0o700, f"state directory mode is {mode:o}, expected 700")
        db = os.path.join(state, "touchgate.db")
        mode = stat.S_IMODE(os.stat(db).st_mode)
        check(mode == 0o600, f"database mode is {mode:o}, expected 600")

        # -- listing ---------------------------------------------------------------------------
        r = touchgate("keys", "list")
        harness.assert_ok(r)
        lines = r.stdout.splitlines()
        check(len(lines) == 4, "expected a header and three keys", r)
        check(lines[0].split() == ["PRINCIPAL", "FINGERPRINT", "KIND", "TYPE", "LABEL", "FLAGS",
                                   "STATUS", "CREATED", "LAST", "USED", "COUNTER"],
              "unexpected table header", r)
        rows = [line.split() for line in lines[1:]]
        check([row[:2] for row in rows] == [["alice", fp_alice_ecdsa], ["alice", fp_alice_ed],
                                            ["bob", fp_bob]],
              "expected the keys ordered by principal, then enrollment", r)
        row = rows[0]
        check(row[2:5] == ["fido2", "sk-ecdsa-sha2-nistp256@openssh.com", "yubikey"] and
              row[6:8] == ["pin", "active"] and row[-2:] == ["-", "-"],
              "unexpected row for alice's ecdsa-sk key", r)
        check(rows[2][2:7] == ["piv", "ecdsa-sha2-nistp256", "-", "-", "active"],
              "unexpected row for bob's key", r)

        keys = listed()
        check(set(keys) == {fp_alice_ecdsa, fp_alice_ed, fp_bob},
              f"expected ssh-keygen's fingerprints in the JSON, got {sorted(keys)}")
        k = keys[fp_alice_ecdsa]
        expected = {"principal": "alice", "kind": "fido2",
                    "key_type": "sk-ecdsa-sha2-nistp256@openssh.com",
                    "public_key": key_line(alice_ecdsa), "label": "yubikey 5c",
                    "pin_required": True, "touch_proven": "", "status": "active",
                    "status_reason": "", "last_used_at": None, "last_counter": None}
        for field, value in expected.items():
            check(k.get(field) == value, f"alice's key: {field} is {k.get(field)!r}, "
                                         f"expected {value!r}")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", k.get("created_at", "")),
              f"created_at {k.get('created_at')!r} is not an ISO 8601 UTC time")
        check(keys[fp_alice_ed]["key_type"] == "sk-ssh-ed25519@openssh.com",
              "alice's ed25519-sk key has the wrong type")
        check(keys[fp_alice_ed]["pin_required"] is False and keys[fp_alice_ed]["label"] == "",
              "alice's second key: no PIN and no label were asked for")
        check(keys[fp_bob]["kind"] == "piv" and keys[fp_bob]["principal"] == "bob",
              "bob's key should be a piv key of bob")
        check(set(listed("--user", "bob")) == {fp_bob}, "--user bob should list only bob's key")
        check(listed("--user", "nobody") == {}, "--user nobody should list nothing")

        # -- refused enrollments ---------------------------------------------------------------
        r = touchgate("keys", "add", "--user", "bob", "--kind", "fido2", alice_ecdsa)
        assert_error(r, "store_duplicate_key",
                     rf"key {re.escape(fp_alice_ecdsa)} is already enrolled for alice")
        r = touchgate("keys", "add", "--user", "alice", "--kind", "fido2", alice_ecdsa)
        assert_error(r, "store_duplicate_key")
        _, plain = make_key(env, "dave-ed25519", "ed25519")
        r = touchgate("keys", "add", "--user", "dave", "--kind", "fido2", plain)
        assert_error(r, "store_kind_mismatch", r"ssh-ed25519 is not a FIDO2 security key")
        _, sk = make_key(env, "erin-ed25519-sk", "ed25519-sk")
        r = touchgate("keys", "add", "--user", "erin", "--kind", "piv", sk)
        assert_error(r, "store_kind_mismatch", r"sk-ssh-ed25519@openssh.com is a FIDO2")
        cert = env.sign(harness.UserKey("dave", plain[:-len(".pub")]), ca, principals=["dave"])
        r = touchgate("keys", "add", "--user", "dave", "--kind", "piv", cert.path)
        assert_error(r, "key_is_certificate", r"ssh-ed25519-cert-v01@openssh.com")
        for private in (bob_key, alice_ecdsa_key):
            r = touchgate("keys", "add", "--user", "bob", "--kind", "piv", private)
            assert_error(r, "key_file_private")
            with open(private) as f:
                secret_lines = [line for line in f.read().splitlines() if "-----" not in line]
            check(not any(line in r.stdout + r.stderr for line in secret_lines),
                  "private key material was printed", r)
        r = touchgate("keys", "add", "--user", "bob", "--kind", "piv", env.path("no-such.pub"))
        assert_error(r, "key_file_unreadable", r"no-such\.pub: cannot open")
        check(len(listed()) == 3, "refused enrollments must not add keys")

        # -- revoke and clear-clone ------------------------------------------------------------
        r = touchgate("keys", "revoke", fp_bob)
        harness.assert_ok(r, f"revoked {fp_bob} (ecdsa-sha2-nistp256) of bob\n")
        check(listed()[fp_bob]["status"] == "revoked", "bob's key should be revoked")
        r = touchgate("keys", "list", "--user", "bob")
        harness.assert_ok(r)
        check(r.stdout.splitlines()[1].split()[6] == "revoked", "the table should say revoked", r)
        # A fingerprint without its "SHA256:" prefix names the same key.
        r = touchgate("keys", "revoke", fp_bob[len("SHA256:"):])
        assert_error(r, "store_already_revoked")
        r = touchgate("keys", "revoke", "SHA256:AAAAnosuchkeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        assert_error(r, "store_no_such_key")

        r = touchgate("keys", "clear-clone", fp_alice_ecdsa)
        assert_error(r, "store_not_suspected", r"is active, not a suspected clone")
        r = touchgate("keys", "clear-clone", fp_bob)
        assert_error(r, "store_not_suspected", r"is revoked")
        # The gateway marks a key whose signature counter goes back; do the same by hand.
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE keys SET status = 'suspected-clone', status_reason = ?, "
                         "last_counter = 7 WHERE fingerprint = ?",
                         ("signature counter went back: offered 3, last accepted 7",
                          fp_alice_ed))
        conn.close()
        k = listed()[fp_alice_ed]
        check(k["status"] == "suspected-clone" and k["last_counter"] == 7 and
              "offered 3" in k["status_reason"], f"expected a suspected clone, got {k}")
        r = touchgate("keys", "clear-clone", fp_alice_ed)
        harness.assert_ok(r)
        check(r.stdout.startswith(f"cleared {fp_alice_ed} (sk-ssh-ed25519@openssh.com) of alice"),
              "unexpected clear-clone output", r)
        k = listed()[fp_alice_ed]
        check(k["status"] == "active" and k["last_counter"] is None and k["status_reason"] == "",
              f"expected an active key without a counter after clear-clone, got {k}")

        # -- configuration and database problems -----------------------------------------------
        r = env.run([tg, "-f", "does-not-exist.toml", "keys", "list"], cwd=env.dir)
        assert_error(r, "config_unreadable", r"does-not-exist\.toml: cannot open")
        r = env.run([tg, "keys", "list"], cwd=env.dir,
                    extra_env={"TOUCHGATE_CONFIG": env.path("missing.toml")})
        assert_error(r, "config_unreadable", r"missing\.toml")
        bad = env.path("bad", "touchgate.toml")
        with open(config) as f, open(bad, "w") as out:
            out.write(f.read().replace('state_dir = "state"', 'state_dir = "state"\nstate = 1'))
        r = env.run([tg, "-f", bad, "keys", "list"])
        with open(bad) as f:
            line = f.read().splitlines().index("state = 1") + 1
        assert_error(r, "config_invalid", rf"{re.escape(bad)}:{line}:")
        check(not os.path.exists(env.path("bad", "state")),
              "an invalid configuration must not create a state directory")

        newer = env.path("newer", "touchgate.toml")
        with open(config) as f, open(newer, "w") as out:
            out.write(f.read())
        r = env.run([tg, "-f", newer, "keys", "list"])
        harness.assert_ok(r)
        with sqlite3.connect(env.path("newer", "state", "touchgate.db")) as conn:
            conn.execute("PRAGMA user_version = 99")
        conn.close()
        r = env.run([tg, "-f", newer, "keys", "list"])
        assert_error(r, "store_schema_too_new", r"schema version 99")

        # -- the command line ------------------------------------------------------------------
        assert_usage(touchgate("keys", "add", "--user", "alice"), "touchgate keys add")
        assert_usage(touchgate("keys", "add", "--kind", "fido2", alice_ecdsa),
                     "touchgate keys add")
        assert_usage(touchgate("keys", "add", "--user", "a", "--kind", "usb", alice_ecdsa),
                     "touchgate keys add")
        assert_usage(touchgate("keys", "revoke"), "touchgate keys revoke")
        assert_usage(touchgate("keys", "clear-clone"), "touchgate keys clear-clone")
        assert_usage(touchgate("keys", "list", "extra"), "touchgate keys list")
        assert_usage(touchgate("keys"), "touchgate keys")
        assert_usage(touchgate("keys", "approve-all"), "touchgate keys")
        assert_usage(touchgate(), "touchgate")
        assert_usage(touchgate("--no-such-option", "keys", "list"), "touchgate keys list")
        for command in ([], ["keys"], ["keys", "add"], ["keys", "list"], ["keys", "revoke"],
                        ["keys", "clear-clone"]):
            r = env.run([tg, *command, "--help"])
            harness.assert_ok(r)
            check(f"Usage: {' '.join(['touchgate', *command])} " in r.stdout,
                  f"expected the usage of 'touchgate {' '.join(command)}'", r)
        r = env.run([tg, "--version"])
        harness.assert_ok(r)
        check(re.fullmatch(r"touchgate \d+\.\d+\.\d+\n", r.stdout), "expected 'touchgate X.Y.Z'",
              r)


if __name__ == "__main__":
    harness.scenario(main)
