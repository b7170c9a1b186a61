#!/usr/bin/env python3
"""`touchgate policy check|explain|test` against a real configuration and real certificates made
by ssh-keygen (one carrying a groups@corp.example extension): check passes a good policy (0),
prints warnings and still exits 0, reports an allow and a deny rule whose hosts globs share names
(a warning) and whose groups may share members (a note), and refuses a policy the loader rejects
or lint finds an error in with 1 and the offending line; explain allows through the group inside the rule's hours,
denies outside them with --at and says why for every rule, says when no trusted CA signed the
certificate, prints the port the decision was made on (a configured target's own, also when
another was asked for), and prints JSON; test prints PASS/FAIL per case with expected and got, and exits 1
on a failure or an invalid file; a wrong command line exits 2."""

import json
import re

import harness
from harness import check

RULES = """\
[[group]]
name = "dev"
extension = "groups@corp.example"

[[rule]]
id = "prod"
groups = ["dev"]
targets = ["tag:prod"]
factor = ["touch+pin", "piv"]
max_age = "10m"
days = ["mon-fri"]
hours = ["09:00-18:00"]
timezone = "Europe/Berlin"

[[rule]]
id = "staging"
principals = ["*"]
targets = ["web1"]
"""

# Inside prod's window (a Monday, 10:00 in Berlin), and outside it (the Sunday before).
MONDAY = "2026-11-30T10:00:00+01:00"
SUNDAY = "2026-11-29T10:00:00+01:00"

PASSING = """\
[[case]]
name = "dev reaches prod on a weekday"
principal = "alice"
extensions = { "groups@corp.example" = "dev,oncall" }
target = "db1"
at = "2026-11-30T10:00:00+01:00"
expect = "allow"
factor = "touch+pin or piv"
rule = "prod"

[[case]]
name = "no group, no prod"
principal = "bob"
target = "db1"
at = "2026-11-30T10:00:00+01:00"
expect = "deny"
code = "policy_no_match"

[[case]]
name = "everyone reaches staging"
principal = "bob"
target = "web1"
expect = "allow"
"""

FAILING = """\
[[case]]
name = "dev reaches prod on Sunday"
principal = "alice"
extensions = { "groups@corp.example" = "dev" }
target = "db1"
at = "2026-11-29T10:00:00+01:00"
expect = "allow"

[[case]]
name = "staging needs a PIN"
principal = "bob"
target = "web1"
expect = "allow"
factor = "touch+pin"
"""


def line_of(text, needle):
    """1-based line number of the first line of text containing needle."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def main():
    with harness.Env("policy_cli") as env:
        ca = env.make_ca("corp")
        other = env.make_ca("other")
        key = env.make_user_key("alice")
        listen = [f"127.0.0.1:{harness.free_port()}"]
        targets = [("db1", "127.0.0.1:22"), ("web1", "127.0.0.1:2222")]

        def config(name, rules, tags_prod=True):
            path = env.write_gateway_config([ca], targets=targets, listen=listen, rules=rules,
                                            name=name, named_cas=True)
            with open(path) as f:
                text = f.read()
            if tags_prod:  # db1 is the prod target
                text = text.replace('address = "127.0.0.1:22"\ntags = ["e2e"]',
                                    'address = "127.0.0.1:22"\ntags = ["e2e", "prod"]')
            with open(path, "w") as f:
                f.write(text)
            return path, text

        # -- check ----------------------------------------------------------------------------
        good, _ = config("good", RULES)
        r = env.touchgate(good, "policy", "check")
        check(r.returncode == 0, "a good policy: expected exit status 0", r)
        check(r.stdout == "2 rules, 1 group, 2 targets: ok\n", "expected the summary alone", r)

        # The same through the FILE argument, with a warning: exit 0, the warning printed.
        warned, text = config("warned", RULES + """
[[rule]]
id = "alice-staging"
principals = ["alice"]
targets = ["web1"]
""")
        r = env.run([harness.touchgate_path(), "policy", "check", warned])
        line = line_of(text, 'id = "alice-staging"') - 1
        staging = line_of(text, 'id = "staging"') - 1
        check(r.returncode == 0, "warnings only: expected exit status 0", r)
        check(f"{warned}:{line}: warning: [alice-staging] never decides: rule staging (line "
              f"{staging}) comes first and allows everything it "
              "matches (rule_shadowed)\n" in r.stdout, "expected the shadowing warning", r)
        check(r.stdout.endswith("3 rules, 1 group, 2 targets: 0 errors, 1 warning\n"),
              "expected the counts in the summary", r)

        # Overlaps: hosts globs that share names (a warning), groups that may share members (a
        # note: both come from the extension); neither stops the check.
        overlapping, text = config("overlapping", RULES + """
[[group]]
name = "contractors"
extension = "groups@corp.example"

[[rule]]
id = "no-contractors-in-prod"
effect = "deny"
groups = ["contractors"]
targets = ["tag:prod"]

[[rule]]
id = "fleet"
principals = ["alice"]
hosts = ["*.prod.example.com"]

[[rule]]
id = "no-web"
effect = "deny"
principals = ["alice"]
hosts = ["web*.prod.example.com"]
""")
        r = env.touchgate(overlapping, "policy", "check")
        prod = line_of(text, 'id = "prod"') - 1
        deny = line_of(text, 'id = "no-contractors-in-prod"') - 1
        fleet = line_of(text, 'id = "fleet"') - 1
        no_web = line_of(text, 'id = "no-web"') - 1
        check(r.returncode == 0, "overlaps only: expected exit status 0", r)
        check(f"{overlapping}:{prod}: note: [prod] rule prod allows and rule "
              f"no-contractors-in-prod (line {deny}) denies some of the same requests to group "
              "dev and group contractors, which may be the same user (group membership by key "
              "id or certificate extension); for such a user deny wins (rule_may_overlap_deny)\n"
              in r.stdout, "expected the note on groups that may share members", r)
        check(f"{overlapping}:{fleet}: warning: [fleet] rule fleet allows and rule no-web (line "
              f"{no_web}) denies some of the same requests; deny wins (rule_overlaps_deny)\n"
              in r.stdout, "expected the warning on hosts globs that share names", r)
        check(r.stdout.endswith("5 rules, 2 groups, 2 targets: 0 errors, 1 warning, 1 note\n"),
              "expected the counts in the summary", r)

        # Lint errors: an allow that a deny covers, ports that exclude every target.
        broken, text = config("broken", RULES + """
[[rule]]
id = "no-web"
effect = "deny"
principals = ["*"]
targets = ["web1"]

[[rule]]
id = "odd-port"
principals = ["alice"]
targets = ["db1"]
ports = [2200]
""")
        r = env.touchgate(broken, "policy", "check")
        check(r.returncode == 1, "lint errors: expected exit status 1", r)
        staging = line_of(text, 'id = "staging"') - 1
        no_web = line_of(text, 'id = "no-web"') - 1
        odd = line_of(text, 'id = "odd-port"') - 1
        check(f"{broken}:{staging}: error: [staging] never allows: rule no-web (line {no_web}) "
              "denies everything it matches (rule_never_allows)\n" in r.stdout,
              "expected the never-allows error on the staging rule's line", r)
        check(f"{broken}:{odd}: error: [odd-port] never matches: ports 2200 exclude the port of "
              "every target it selects (db1:22) (rule_never_matches)\n" in r.stdout,
              "expected the never-matches error on the odd-port rule's line", r)
        check(r.stdout.endswith("4 rules, 1 group, 2 targets: 2 errors, 0 warnings\n"),
              "expected the error count", r)

        # A policy the loader refuses: the message names file, line and column.
        unloadable, text = config("unloadable", RULES.replace('groups = ["dev"]',
                                                              'groups = ["devs"]'))
        r = env.touchgate(unloadable, "policy", "check")
        line = line_of(text, 'groups = ["devs"]')
        check(r.returncode == 1, "a policy the loader refuses: expected exit status 1", r)
        check(re.fullmatch(rf"touchgate: {re.escape(unloadable)}:{line}:\d+: .*unknown group "
                           r"\"devs\".* \(config_invalid\)\n", r.stderr),
              "expected 'touchgate: FILE:LINE:COL: ... (config_invalid)'", r)

        # -- explain --------------------------------------------------------------------------
        grouped = env.sign(key, ca, principals=["alice"],
                           options=["extension:groups@corp.example=dev,oncall"])
        plain = env.sign(key, ca, principals=["alice"])
        foreign = env.sign(key, other, principals=["alice"],
                           options=["extension:groups@corp.example=dev"])
        both = env.sign(key, ca, principals=["alice", "root"])
        prod = line_of(open(good).read(), 'id = "prod"') - 1
        staging = line_of(open(good).read(), 'id = "staging"') - 1

        r = env.touchgate(good, "policy", "explain", "--cert", grouped.path, "--target", "db1",
                          "--at", MONDAY)
        check(r.returncode == 0, "explain: expected exit status 0", r)
        for expected in ["identity:    alice, CA corp, groups: dev\n",
                         "decision:    ALLOW (policy_allowed)\n",
                         f"rule:        prod (line {prod})\n",
                         "factor:      piv or touch+pin\n",
                         "max_age:     10m\n",
                         "Rules considered:\n",
                         f"  line {prod}  rule prod (allow): matches\n",
                         f"  line {staging}  rule staging (allow): does not select db1\n"]:
            check(expected in r.stdout, f"explain (allowed): expected {expected!r}", r)
        check("warning:" not in r.stdout, "a valid certificate: expected no warning", r)

        r = env.touchgate(good, "policy", "explain", "--cert", grouped.path, "--target", "db1",
                          "--at", SUNDAY)
        check(r.returncode == 0, "explain (denied): expected exit status 0", r)
        check("decision:    DENY (policy_no_match)\n" in r.stdout, "expected DENY", r)
        check(f"  line {prod}  rule prod (allow): Sun 2026-11-29 10:00 Europe/Berlin (CET) is "
              "outside mon-fri 09:00-18:00 Europe/Berlin\n" in r.stdout,
              "expected why prod does not match on Sunday", r)
        check("factor:" not in r.stdout, "a denial names no factor", r)

        r = env.touchgate(good, "policy", "explain", "--cert", plain.path, "--target", "db1",
                          "--at", MONDAY)
        check("decision:    DENY (policy_no_match)\n" in r.stdout, "no group: expected DENY", r)
        check(f"  line {prod}  rule prod (allow): alice is not in groups dev (member of no "
              "group)\n" in r.stdout, "expected why prod does not match without the group", r)

        r = env.touchgate(good, "policy", "explain", "--cert", foreign.path, "--target", "web1")
        check(r.returncode == 0, "an untrusted certificate is still explained", r)
        check("identity:    alice, CA untrusted, groups: dev\n" in r.stdout,
              "expected CA untrusted", r)
        check("warning:     the gateway would refuse this certificate at a login now: the "
              "certificate is not signed by a trusted CA (cert_untrusted_ca)\n" in r.stdout,
              "expected the login warning", r)
        check("decision:    ALLOW (policy_allowed)\n" in r.stdout,
              "the policy alone allows staging", r)

        r = env.touchgate(good, "policy", "explain", "--cert", grouped.path, "--target",
                          "db1:22", "--at", MONDAY, "--from", "10.8.1.2", "--json")
        check(r.returncode == 0, "explain --json: expected exit status 0", r)
        j = json.loads(r.stdout)
        check(j["decision"]["decision"] == "allow" and j["decision"]["rule"] == "prod"
              and j["decision"]["rule_line"] == prod
              and j["decision"]["factors"] == ["piv", "touch+pin"]
              and j["decision"]["max_age_seconds"] == 600, "explain --json: the decision", r)
        check(j["certificate"]["groups"] == ["dev"] and j["certificate"]["ca"] == "corp"
              and j["certificate"]["login_refused"] is None, "explain --json: the identity", r)
        check(j["request"]["from"] == "10.8.1.2" and j["request"]["at"] == "2026-11-30T09:00:00Z",
              "explain --json: the request", r)
        check([x["rule"] for x in j["rules"]] == ["prod", "staging"]
              and j["rules"][0]["matched"] and not j["rules"][1]["matched"],
              "explain --json: the rules considered", r)

        # A configured target is reached on its own port: web1 is 127.0.0.1:2222.
        r = env.touchgate(good, "policy", "explain", "--cert", plain.path, "--target", "web1:22")
        check(r.returncode == 0 and re.search(r"^request:     jump to web1 port 2222 at ", r.stdout,
                                              re.M),
              "explain: expected the port decided on (the target's configured 2222)", r)
        check("note:        port 22 was asked for; target web1 is reached on its configured "
              "port 2222, which the rules were checked against\n" in r.stdout,
              "explain: expected a note on the port asked for", r)
        r = env.touchgate(good, "policy", "explain", "--cert", plain.path, "--target", "web1",
                          "--json")
        j = json.loads(r.stdout)
        check(r.returncode == 0 and j["request"]["port"] == 2222
              and j["request"]["port_asked"] is None, "explain --json: the port decided on", r)
        r = env.touchgate(good, "policy", "explain", "--cert", plain.path, "--target", "web1:22",
                          "--json")
        j = json.loads(r.stdout)
        check(j["request"]["port"] == 2222 and j["request"]["port_asked"] == 22,
              "explain --json: the port asked for beside the one decided on", r)
        r = env.touchgate(good, "policy", "explain", "--cert", plain.path, "--target", "web1")
        check("note:" not in r.stdout and "port 2222" in r.stdout,
              "explain: no port asked for, no note", r)

        r = env.touchgate(good, "policy", "explain", "--cert", both.path, "--target", "db1")
        check(r.returncode == 2 and "choose one with --user" in r.stderr
              and "Run 'touchgate policy explain --help' for usage." in r.stderr,
              "several principals without --user: expected a usage error", r)
        r = env.touchgate(good, "policy", "explain", "--cert", both.path, "--target", "web1",
                          "--user", "root")
        check(r.returncode == 0 and "identity:    root, CA corp" in r.stdout,
              "--user picks the principal", r)
        r = env.touchgate(good, "policy", "explain", "--cert", key.pub, "--target", "db1")
        check(r.returncode == 1 and r.stderr.endswith("(cert_file_not_certificate)\n"),
              "a plain public key: expected cert_file_not_certificate", r)
        r = env.touchgate(good, "policy", "explain", "--target", "db1")
        check(r.returncode == 2, "explain without --cert: expected exit status 2", r)

        # -- test -----------------------------------------------------------------------------
        passing = env.path("passing.toml")
        with open(passing, "w") as f:
            f.write(PASSING)
        r = env.run([harness.touchgate_path(), "policy", "test", passing, "--config", good])
        check(r.returncode == 0, "a passing table: expected exit status 0", r)
        check(r.stdout == "PASS dev reaches prod on a weekday\nPASS no group, no prod\n"
              "PASS everyone reaches staging\n3 cases: 3 passed, 0 failed\n",
              "expected three PASS lines and the summary", r)

        failing = env.path("failing.toml")
        with open(failing, "w") as f:
            f.write(FAILING)
        r = env.touchgate(good, "policy", "test", failing)
        check(r.returncode == 1, "a failing table: expected exit status 1", r)
        lines = r.stdout.splitlines()
        check(len(lines) == 3, "expected two FAIL lines and the summary", r)
        check(lines[0].startswith("FAIL dev reaches prod on Sunday: expected allow, got deny, "
                                  "code policy_no_match (no rule allows alice to reach db1")
              and "; rule prod: Sun 2026-11-29 10:00 Europe/Berlin (CET) is outside" in lines[0],
              "expected expected/got and why prod did not match", r)
        check(lines[1].startswith("FAIL staging needs a PIN: expected allow with touch+pin, got "
                                  "allow by rule staging with touch, code policy_allowed ("),
              "expected the factor mismatch", r)
        check(lines[2] == "2 cases: 0 passed, 2 failed", "expected the summary", r)

        invalid = env.path("invalid.toml")
        with open(invalid, "w") as f:
            f.write(PASSING.replace('expect = "deny"', 'expect = "deny"\nexpected = "deny"'))
        r = env.touchgate(good, "policy", "test", invalid)
        line = line_of(PASSING, 'expect = "deny"') + 1
        check(r.returncode == 1 and re.fullmatch(
            rf"touchgate: {re.escape(invalid)}:{line}:1: unknown key \"expected\".* "
            r"\(policy_test_invalid\)\n", r.stderr),
            "an invalid table: expected 'touchgate: FILE:LINE:COL: ... (policy_test_invalid)'", r)


if __name__ == "__main__":
    harness.scenario(main)
