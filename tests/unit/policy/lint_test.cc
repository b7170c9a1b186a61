#include "policy/lint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>
#include <vector>

namespace touchgate::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Lines 1-4; the targets follow (lines 5-20), rules start at line 21.
constexpr const char* kHead =
    "[server]\nlisten = [\"127.0.0.1:2222\"]\n[trust]\nuser_ca_keys = [\"corp.pub\", "
    "{ name = \"partner\", path = \"partner.pub\" }]\n";

constexpr const char* kTargets = R"([[target]]
name = "db1"
address = "10.0.0.5:22"
tags = ["prod", "db"]
[[target]]
name = "db2"
address = "10.0.0.6:2222"
tags = ["prod", "db"]
[[target]]
name = "web-staging"
address = "web.staging.example.com"
tags = ["staging"]
[[group]]
name = "dev"
principals = ["alice", "bob"]
extension = "groups@corp.example"
)";

Config parse(const std::string& rules) {
  auto c = parse_config(std::string(kHead) + kTargets + rules, "/etc/tg", "t.toml");
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return c ? std::move(*c) : Config{};
}

std::vector<Finding> lint_rules(const std::string& rules) {
  return lint(parse(rules));
}

// Findings of one rule with one code.
std::vector<Finding> of(const std::vector<Finding>& all, const std::string& rule,
                        const std::string& code) {
  std::vector<Finding> out;
  for (const auto& f : all) {
    if (f.rule_id == rule && f.code == code) out.push_back(f);
  }
  return out;
}

std::string dump(const std::vector<Finding>& all) {
  std::string out;
  for (const auto& f : all) {
    out += std::to_string(f.line) + " " + severity_name(f.severity) + " [" + f.rule_id + "] " +
           f.message + " (" + f.code + ")\n";
  }
  return out;
}

TEST(LintTest, CleanPolicyHasNoFindings) {
  auto f = lint_rules(R"(
[[rule]]
id = "staging"
groups = ["dev"]
targets = ["tag:staging"]
[[rule]]
id = "prod"
principals = ["carol"]
targets = ["tag:prod"]
factor = ["touch+pin", "piv"]
days = ["mon-fri"]
hours = ["09:00-18:00"]
timezone = "Europe/Berlin"
)");
  EXPECT_TRUE(f.empty()) << dump(f);
}

TEST(LintTest, PortsThatExcludeEveryTargetNeverMatch) {
  auto f = lint_rules(R"(
[[rule]]
id = "odd-port"
principals = ["alice"]
targets = ["db1", "db2"]
ports = [2200, "3000-3100"]
)");
  auto e = of(f, "odd-port", "rule_never_matches");
  ASSERT_EQ(e.size(), 1u) << dump(f);
  EXPECT_EQ(e[0].severity, Severity::kError);
  EXPECT_EQ(e[0].line, 22);
  EXPECT_THAT(e[0].message, HasSubstr("ports 2200, 3000-3100 exclude the port of every target"));
  EXPECT_THAT(e[0].message, HasSubstr("db1:22, db2:2222"));
}

TEST(LintTest, PortsOfOneSelectedTargetAreFine) {
  auto f = lint_rules(R"(
[[rule]]
id = "db2-only"
principals = ["alice"]
targets = ["tag:db"]
ports = [2222]
)");
  EXPECT_TRUE(f.empty()) << dump(f);
}

TEST(LintTest, GlobThatSelectsNoTargetWithoutHostsNeverMatches) {
  auto f = lint_rules(R"(
[[rule]]
id = "nothing"
principals = ["alice"]
targets = ["mail*"]
[[rule]]
id = "hosts-too"
principals = ["alice"]
targets = ["mail*"]
hosts = ["*.mail.example.com"]
)");
  auto e = of(f, "nothing", "rule_never_matches");
  ASSERT_EQ(e.size(), 1u) << dump(f);
  EXPECT_THAT(e[0].message, HasSubstr("targets [\"mail*\"] select no configured [[target]]"));
  EXPECT_TRUE(of(f, "hosts-too", "rule_never_matches").empty()) << dump(f);
}

TEST(LintTest, FromWithoutUsableNetworkNeverMatches) {
  Config c = parse(R"(
[[rule]]
id = "nowhere"
principals = ["alice"]
targets = ["db1"]
)");
  ASSERT_EQ(c.rules.size(), 1u);
  c.rules[0].from = {"not a network"};
  auto f = lint(c);
  auto e = of(f, "nowhere", "rule_never_matches");
  ASSERT_EQ(e.size(), 1u) << dump(f);
  EXPECT_THAT(e[0].message, HasSubstr("\"from\" lists no usable network"));
}

TEST(LintTest, OnlyAttestedFactorsWarn) {
  auto f = lint_rules(R"(
[[rule]]
id = "attested"
principals = ["alice"]
targets = ["db1"]
factor = ["piv-attested-touch", "fido2-attested"]
[[rule]]
id = "mixed"
principals = ["bob"]
targets = ["db1"]
factor = ["fido2-attested", "touch+pin"]
)");
  auto w = of(f, "attested", "rule_attestation_only");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_EQ(w[0].severity, Severity::kWarning);
  EXPECT_THAT(w[0].message, HasSubstr("no key can prove attestation yet"));
  EXPECT_TRUE(of(f, "mixed", "rule_attestation_only").empty()) << dump(f);
}

TEST(LintTest, LaterAllowCoveredByEarlierAllowIsShadowed) {
  auto f = lint_rules(R"(
[[rule]]
id = "broad"
principals = ["*"]
targets = ["tag:prod"]
[[rule]]
id = "narrow"
principals = ["alice"]
groups = ["dev"]
targets = ["db1"]
factor = "touch+pin"
)");
  auto w = of(f, "narrow", "rule_shadowed");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_EQ(w[0].severity, Severity::kWarning);
  EXPECT_THAT(w[0].message, HasSubstr("rule broad (line 22)"));
  EXPECT_TRUE(of(f, "broad", "rule_shadowed").empty());
}

TEST(LintTest, ShadowingNeedsEverySelectorCovered) {
  // Each later rule differs from "base" in one selector it widens or cannot prove narrower.
  auto f = lint_rules(R"(
[[rule]]
id = "base"
principals = ["alice", "bob"]
cas = ["corp"]
targets = ["db1"]
actions = ["jump"]
days = ["mon-fri"]
timezone = "Europe/Berlin"
from = ["10.8.0.0/16"]
[[rule]]
id = "other-principal"
principals = ["carol"]
cas = ["corp"]
targets = ["db1"]
days = ["mon-fri"]
timezone = "Europe/Berlin"
from = ["10.8.0.0/16"]
[[rule]]
id = "by-group"
groups = ["dev"]
cas = ["corp"]
targets = ["db1"]
days = ["mon-fri"]
timezone = "Europe/Berlin"
from = ["10.8.0.0/16"]
[[rule]]
id = "any-ca"
principals = ["alice"]
targets = ["db1"]
days = ["mon-fri"]
timezone = "Europe/Berlin"
from = ["10.8.0.0/16"]
[[rule]]
id = "more-targets"
principals = ["alice"]
cas = ["corp"]
targets = ["tag:db"]
days = ["mon-fri"]
timezone = "Europe/Berlin"
from = ["10.8.0.0/16"]
[[rule]]
id = "more-actions"
principals = ["alice"]
cas = ["corp"]
targets = ["db1"]
actions = ["jump", "shell"]
days = ["mon-fri"]
timezone = "Europe/Berlin"
from = ["10.8.0.0/16"]
[[rule]]
id = "other-zone"
principals = ["alice"]
cas = ["corp"]
targets = ["db1"]
days = ["mon-fri"]
timezone = "UTC"
from = ["10.8.0.0/16"]
[[rule]]
id = "wider-from"
principals = ["alice"]
cas = ["corp"]
targets = ["db1"]
days = ["mon-fri"]
timezone = "Europe/Berlin"
from = ["10.0.0.0/8"]
[[rule]]
id = "covered"
principals = ["bob"]
cas = ["corp"]
targets = ["db1"]
days = ["tue"]
hours = ["10:00-12:00"]
timezone = "Europe/Berlin"
from = ["10.8.3.0/24"]
)");
  for (const char* id : {"other-principal", "by-group", "any-ca", "more-targets", "more-actions",
                         "other-zone", "wider-from"}) {
    EXPECT_TRUE(of(f, id, "rule_shadowed").empty()) << id << "\n" << dump(f);
  }
  auto w = of(f, "covered", "rule_shadowed");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_THAT(w[0].message, HasSubstr("rule base"));
}

TEST(LintTest, GroupsCoverOnlyTheSameGroups) {
  auto f = lint_rules(R"(
[[group]]
name = "ops"
principals = ["dave"]
[[rule]]
id = "teams"
groups = ["dev", "ops"]
targets = ["db1"]
[[rule]]
id = "dev-only"
groups = ["dev"]
targets = ["db1"]
)");
  EXPECT_EQ(of(f, "dev-only", "rule_shadowed").size(), 1u) << dump(f);
}

TEST(LintTest, AllowCoveredByADenyNeverAllowsWhereverTheDenyIs) {
  auto f = lint_rules(R"(
[[rule]]
id = "no-prod"
effect = "deny"
principals = ["*"]
targets = ["tag:prod"]
[[rule]]
id = "alice-db1"
principals = ["alice"]
targets = ["db1"]
[[rule]]
id = "bob-db2"
principals = ["bob"]
targets = ["db2"]
[[rule]]
id = "late-deny"
effect = "deny"
principals = ["bob", "carol"]
targets = ["db2"]
)");
  auto e = of(f, "alice-db1", "rule_never_allows");
  ASSERT_EQ(e.size(), 1u) << dump(f);
  EXPECT_EQ(e[0].severity, Severity::kError);
  EXPECT_THAT(e[0].message, HasSubstr("never allows: rule no-prod (line 22) denies everything it "
                                      "matches"));
  EXPECT_EQ(of(f, "bob-db2", "rule_never_allows").size(), 1u) << dump(f);
  // The later deny is covered by the first one: it never decides.
  EXPECT_EQ(of(f, "late-deny", "rule_shadowed").size(), 1u) << dump(f);
}

TEST(LintTest, DenyAfterBroaderAllowIsNotShadowedButOverlaps) {
  auto f = lint_rules(R"(
[[rule]]
id = "prod"
groups = ["dev"]
targets = ["tag:prod"]
[[rule]]
id = "not-bob"
effect = "deny"
principals = ["bob"]
targets = ["db2"]
)");
  EXPECT_TRUE(of(f, "not-bob", "rule_shadowed").empty()) << dump(f);
  auto w = of(f, "prod", "rule_overlaps_deny");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_EQ(w[0].severity, Severity::kWarning);
  EXPECT_THAT(w[0].message,
              HasSubstr("rule prod allows and rule not-bob (line 26) denies some of the same "
                        "requests; deny wins"));
}

TEST(LintTest, OverlapsAreOneFindingPerAllowRule) {
  std::string rules = "[[rule]]\nid = \"prod\"\ngroups = [\"dev\"]\ntargets = [\"tag:prod\"]\n";
  for (int i = 0; i < 5; ++i) {
    rules += fmt::format("[[rule]]\nid = \"deny{}\"\neffect = \"deny\"\nprincipals = [\"bob\"]\n"
                         "targets = [\"db2\"]\n",
                         i);
  }
  auto f = lint_rules(rules);
  auto w = of(f, "prod", "rule_overlaps_deny");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_THAT(w[0].message, HasSubstr("rule prod allows and rules deny0 (line "));
  EXPECT_THAT(w[0].message, HasSubstr("and 2 more deny some of the same requests; deny wins"));
}

TEST(LintTest, DisjointAllowAndDenyDoNotOverlap) {
  auto f = lint_rules(R"(
[[rule]]
id = "weekdays"
principals = ["alice"]
targets = ["tag:prod"]
days = ["mon-fri"]
[[rule]]
id = "weekend"
effect = "deny"
principals = ["alice"]
targets = ["tag:prod"]
days = ["sat-sun"]
[[rule]]
id = "staging"
principals = ["*"]
targets = ["web-staging"]
[[rule]]
id = "carol"
effect = "deny"
principals = ["carol"]
targets = ["db1"]
)");
  EXPECT_TRUE(f.empty()) << dump(f);
}

TEST(LintTest, AnyUserToAnyHostWarns) {
  auto f = lint_rules(R"(
[[rule]]
id = "open"
principals = ["*"]
hosts = ["*"]
ports = ["1-65535"]
)");
  auto w = of(f, "open", "rule_any_user_any_host");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_THAT(w[0].message, HasSubstr("any user may reach any host"));
}

TEST(LintTest, IdenticalHostsShadowDifferentHostsDoNot) {
  auto f = lint_rules(R"(
[[rule]]
id = "lab"
principals = ["alice", "bob"]
hosts = ["*.lab.example.com", "10.9.0.0/16"]
[[rule]]
id = "lab-again"
principals = ["alice"]
hosts = ["10.9.0.0/16", "*.lab.example.com"]
[[rule]]
id = "lab-2222"
principals = ["alice"]
hosts = ["10.9.0.0/16", "*.lab.example.com"]
ports = [2222]
[[rule]]
id = "lab-narrower"
principals = ["alice"]
hosts = ["10.9.1.0/24"]
)");
  EXPECT_EQ(of(f, "lab-again", "rule_shadowed").size(), 1u) << dump(f);
  EXPECT_TRUE(of(f, "lab-2222", "rule_shadowed").empty()) << dump(f);
  // Proving one network inside another's is left alone: only identical host lists count.
  EXPECT_TRUE(of(f, "lab-narrower", "rule_shadowed").empty()) << dump(f);
}

TEST(LintTest, FindingsAreOrderedByLine) {
  auto f = lint_rules(R"(
[[rule]]
id = "a"
principals = ["alice"]
targets = ["nomatch*"]
[[rule]]
id = "b"
principals = ["alice"]
targets = ["db1"]
factor = "fido2-attested"
)");
  ASSERT_EQ(f.size(), 2u) << dump(f);
  EXPECT_LT(f[0].line, f[1].line);
}

TEST(LintTest, HostGlobsThatShareANameOverlap) {
  auto f = lint_rules(R"(
[[rule]]
id = "fleet"
principals = ["alice"]
hosts = ["*.prod.example.com"]
[[rule]]
id = "no-web"
effect = "deny"
principals = ["alice"]
hosts = ["WEB*.prod.example.com"]
)");
  auto w = of(f, "fleet", "rule_overlaps_deny");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_EQ(w[0].severity, Severity::kWarning);
  EXPECT_THAT(w[0].message, HasSubstr("rule fleet allows and rule no-web (line 26) denies some "
                                      "of the same requests; deny wins"));
}

TEST(LintTest, HostsThatCannotShareADestinationDoNotOverlap) {
  auto f = lint_rules(R"(
[[rule]]
id = "fleet"
principals = ["alice"]
hosts = ["*.prod.example.com", "10.1.0.0/16"]
[[rule]]
id = "no-staging"
effect = "deny"
principals = ["alice"]
hosts = ["*.staging.example.com", "web?.prod.example.org", "10.2.0.0/16"]
[[rule]]
id = "no-web-2222"
effect = "deny"
principals = ["alice"]
hosts = ["web*.prod.example.com"]
ports = [2222]
[[rule]]
id = "no-db1"
effect = "deny"
principals = ["alice"]
targets = ["db1"]
)");
  EXPECT_TRUE(f.empty()) << dump(f);
}

TEST(LintTest, NetworksAndAddressGlobsOverlap) {
  for (const char* deny : {"\"10.1.2.0/24\"", "\"10.0.0.0/8\"", "\"10.1.*\"", "\"1?.*\""}) {
    auto f = lint_rules(fmt::format(R"(
[[rule]]
id = "lab"
principals = ["alice"]
hosts = ["10.1.0.0/16"]
[[rule]]
id = "no-lab"
effect = "deny"
principals = ["alice"]
hosts = [{}]
)",
                                    deny));
    EXPECT_EQ(of(f, "lab", "rule_overlaps_deny").size(), 1u) << deny << "\n" << dump(f);
  }
}

TEST(LintTest, GroupsWithOpenMembershipMayShareMembers) {
  // The worked example of docs/policy.md: dev and contractors both come from an extension, so
  // one certificate can make a user a member of both.
  auto f = lint_rules(R"(
[[group]]
name = "contractors"
extension = "groups@corp.example"
[[rule]]
id = "prod"
groups = ["dev"]
targets = ["tag:prod"]
[[rule]]
id = "no-contractors-in-prod"
effect = "deny"
groups = ["contractors"]
targets = ["db1"]
[[rule]]
id = "no-contractors-on-staging"
effect = "deny"
groups = ["contractors"]
targets = ["web-staging"]
)");
  auto n = of(f, "prod", "rule_may_overlap_deny");
  ASSERT_EQ(n.size(), 1u) << dump(f);
  EXPECT_EQ(n[0].severity, Severity::kNote);
  EXPECT_EQ(n[0].line, 25);
  EXPECT_THAT(n[0].message,
              HasSubstr("rule prod allows and rule no-contractors-in-prod (line 29) denies some "
                        "of the same requests to group dev and group contractors, which may be "
                        "the same user"));
  EXPECT_THAT(n[0].message, HasSubstr("for such a user deny wins"));
  // Not a proven overlap, and nothing about the deny on another target.
  EXPECT_TRUE(of(f, "prod", "rule_overlaps_deny").empty()) << dump(f);
  EXPECT_EQ(f.size(), 1u) << dump(f);
}

TEST(LintTest, PrincipalMayCarryAGroupsExtension) {
  auto f = lint_rules(R"(
[[rule]]
id = "carol"
principals = ["carol"]
targets = ["db1"]
[[rule]]
id = "no-dev"
effect = "deny"
groups = ["dev"]
targets = ["db1"]
)");
  auto n = of(f, "carol", "rule_may_overlap_deny");
  ASSERT_EQ(n.size(), 1u) << dump(f);
  EXPECT_THAT(n[0].message, HasSubstr("to principal carol and group dev, which may be the same"));
}

TEST(LintTest, PrincipalListGroupsOverlapOnlyWhenTheyShareAName) {
  auto f = lint_rules(R"(
[[group]]
name = "ops"
principals = ["dave", "erin"]
[[group]]
name = "oncall"
principals = ["erin"]
[[group]]
name = "qa"
principals = ["frank"]
[[rule]]
id = "ops"
groups = ["ops"]
targets = ["db1"]
[[rule]]
id = "no-qa"
effect = "deny"
groups = ["qa"]
targets = ["db1"]
[[rule]]
id = "no-oncall"
effect = "deny"
groups = ["oncall"]
targets = ["db1"]
)");
  auto w = of(f, "ops", "rule_overlaps_deny");
  ASSERT_EQ(w.size(), 1u) << dump(f);
  EXPECT_THAT(w[0].message, HasSubstr("rule ops allows and rule no-oncall (line "));
  EXPECT_THAT(w[0].message, Not(HasSubstr("no-qa")));
  EXPECT_TRUE(of(f, "ops", "rule_may_overlap_deny").empty()) << dump(f);
}

TEST(LintTest, GroupsOfDisjointCasShareNoMember) {
  auto f = lint_rules(R"(
[[group]]
name = "corp-admins"
key_ids = ["*@admins.corp.example"]
cas = ["corp"]
[[group]]
name = "partner-staff"
extension = "groups@partner.example"
cas = ["partner"]
[[rule]]
id = "admins"
groups = ["corp-admins"]
targets = ["db1"]
[[rule]]
id = "no-partner"
effect = "deny"
groups = ["partner-staff"]
targets = ["db1"]
)");
  EXPECT_TRUE(f.empty()) << dump(f);
}

TEST(LintTest, MayOverlapIsOneNotePerAllowRule) {
  auto f = lint_rules(R"(
[[group]]
name = "ops"
key_ids = ["*@ops.corp.example"]
[[group]]
name = "contractors"
extension = "groups@corp.example"
[[group]]
name = "interns"
extension = "groups@corp.example"
[[rule]]
id = "teams"
groups = ["dev", "ops"]
targets = ["db1"]
[[rule]]
id = "no-externals"
effect = "deny"
groups = ["contractors", "interns"]
targets = ["db1"]
[[rule]]
id = "no-externals-2"
effect = "deny"
groups = ["interns"]
targets = ["tag:db"]
)");
  auto n = of(f, "teams", "rule_may_overlap_deny");
  ASSERT_EQ(n.size(), 1u) << dump(f);
  EXPECT_THAT(n[0].message,
              HasSubstr("rule teams allows and rules no-externals (line 35), no-externals-2 (line "
                        "40) deny some of the same requests to subjects that may be the same user "
                        "(rule no-externals: group dev and group contractors; group membership by "
                        "key id or certificate extension); for such a user deny wins"));
}

TEST(LintTest, SeverityNames) {
  EXPECT_STREQ(severity_name(Severity::kError), "error");
  EXPECT_STREQ(severity_name(Severity::kWarning), "warning");
  EXPECT_STREQ(severity_name(Severity::kNote), "note");
}

TEST(LintTest, FormatFindingIsThePolicyCheckLine) {
  Finding f{Severity::kWarning, "r1", 30, "rule_shadowed", "never decides"};
  EXPECT_EQ(format_finding("/etc/tg.toml", f),
            "/etc/tg.toml:30: warning: [r1] never decides "
            "(rule_shadowed)");
  EXPECT_EQ(format_finding("/etc/tg.toml", f, false),
            "/etc/tg.toml:30: [r1] never decides (rule_shadowed)");
}

TEST(LintTest, CheckLintRefusesErrorsAndPassesWarnings) {
  Config broken = parse(R"(
[[rule]]
id = "nothing"
principals = ["alice"]
targets = ["mail*"]
[[rule]]
id = "odd-port"
principals = ["alice"]
targets = ["db1"]
ports = [2200]
[[rule]]
id = "attested"
principals = ["alice"]
targets = ["db2"]
factor = "fido2-attested"
)");
  std::vector<Finding> found;
  auto r = check_lint(broken, "t.toml", &found);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "policy_invalid");
  EXPECT_THAT(r.error().message,
              HasSubstr("t.toml:22: [nothing] never matches: targets [\"mail*\"] select no "
                        "configured [[target]] and it has no hosts (rule_never_matches); "
                        "t.toml:26: [odd-port] never matches: ports 2200 exclude"));
  EXPECT_THAT(r.error().message, Not(HasSubstr("attested")));  // a warning does not refuse
  ASSERT_EQ(found.size(), 3u) << dump(found);
  EXPECT_EQ(found[2].code, "rule_attestation_only");

  Config warned = parse(R"(
[[rule]]
id = "attested"
principals = ["alice"]
targets = ["db2"]
factor = "fido2-attested"
)");
  found.clear();
  EXPECT_TRUE(check_lint(warned, "t.toml", &found).has_value());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].severity, Severity::kWarning);
  EXPECT_TRUE(check_lint(parse(""), "t.toml").has_value());
}

}  // namespace
}  // namespace touchgate::policy
