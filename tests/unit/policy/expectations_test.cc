#include "policy/expectations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "policy/timewindow.h"

namespace touchgate::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kConfig = R"([server]
listen = ["127.0.0.1:2222"]
[trust]
user_ca_keys = ["corp.pub", { name = "partner", path = "partner.pub" }]
[[target]]
name = "db1"
address = "10.0.0.5:22"
tags = ["prod"]
[[target]]
name = "web1"
address = "10.0.1.5:22"
tags = ["staging"]
[[group]]
name = "dev"
extension = "groups@corp.example"
[[rule]]
id = "staging"
groups = ["dev"]
targets = ["tag:staging"]
[[rule]]
id = "prod"
principals = ["alice"]
cas = ["corp"]
targets = ["tag:prod"]
factor = ["touch+pin", "piv"]
days = ["mon-fri"]
hours = ["09:00-18:00"]
timezone = "Europe/Berlin"
[[rule]]
id = "contractors"
principals = ["carol"]
cas = ["partner"]
targets = ["web1"]
factor = "fido2-attested"
)";

std::shared_ptr<const Policy> policy() {
  auto c = parse_config(kConfig, "/etc/tg", "t.toml");
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return Policy::compile(std::make_shared<const Config>(std::move(*c)));
}

std::vector<Expectation> parse_ok(const std::string& text) {
  auto cases = parse_expectations(text, "cases.toml");
  EXPECT_TRUE(cases.has_value()) << (cases ? "" : cases.error().message);
  return cases ? *cases : std::vector<Expectation>{};
}

void expect_invalid(const std::string& text, const std::string& where, const std::string& what) {
  auto cases = parse_expectations(text, "cases.toml");
  ASSERT_FALSE(cases.has_value()) << "accepted:\n" << text;
  EXPECT_EQ(cases.error().code, "policy_test_invalid");
  EXPECT_THAT(cases.error().message, StartsWith("cases.toml:" + where + ":")) << text;
  EXPECT_THAT(cases.error().message, HasSubstr(what)) << text;
}

TEST(ExpectationsTest, ParsesEveryKey) {
  auto cases = parse_ok(R"(
[[case]]
name = "alice reaches prod"
principal = "alice"
key_id = "alice@corp.example"
serial = 7
ca = "corp"
extensions = { "groups@corp.example" = "dev,oncall" }
from = "10.8.1.2"
target = "db1:2222"
at = "2026-11-30T10:00:00+01:00"
action = "shell"
expect = "allow"
factor = "touch+pin or piv"
rule = "prod"
code = "policy_allowed"
[[case]]
principal = "bob"
target = "[2001:db8::1]"
at = 2026-11-30T09:00:00Z
expect = "deny"
)");
  ASSERT_EQ(cases.size(), 2u);
  const Expectation& a = cases[0];
  EXPECT_EQ(a.name, "alice reaches prod");
  EXPECT_EQ(a.line, 2);
  EXPECT_EQ(a.identity.principal, "alice");
  EXPECT_EQ(a.identity.key_id, "alice@corp.example");
  EXPECT_EQ(a.identity.serial, 7u);
  EXPECT_EQ(a.identity.ca_name, "corp");
  ASSERT_EQ(a.identity.extensions.size(), 1u);
  EXPECT_EQ(a.identity.extensions[0].first, "groups@corp.example");
  EXPECT_EQ(a.identity.extensions[0].second, "dev,oncall");
  ASSERT_TRUE(a.identity.source.has_value());
  EXPECT_EQ(a.identity.source->to_string(), "10.8.1.2");
  EXPECT_EQ(a.request.host, "db1");
  EXPECT_EQ(a.request.port, 2222);
  EXPECT_EQ(a.request.action, Action::kShell);
  EXPECT_TRUE(a.at_given);
  EXPECT_EQ(a.request.at, *parse_instant("2026-11-30T09:00:00Z"));
  EXPECT_TRUE(a.expect_allow);
  EXPECT_EQ(a.factors,
            static_cast<uint8_t>(Factor::kTouchPin) | static_cast<uint8_t>(Factor::kPiv));
  EXPECT_EQ(a.rule_id, "prod");
  EXPECT_EQ(a.code, "policy_allowed");

  const Expectation& b = cases[1];
  EXPECT_EQ(b.name, "line 17: bob to [2001:db8::1]");
  EXPECT_EQ(b.request.host, "2001:db8::1");
  EXPECT_EQ(b.request.port, 22);
  EXPECT_EQ(b.request.action, Action::kJump);
  EXPECT_EQ(b.request.at, *parse_instant("2026-11-30T09:00:00Z"));
  EXPECT_FALSE(b.expect_allow);
  EXPECT_FALSE(b.factors.has_value());
  EXPECT_TRUE(b.identity.ca_name.empty());
}

TEST(ExpectationsTest, RefusesWhatItDoesNotKnow) {
  const std::string head = "[[case]]\nprincipal = \"alice\"\ntarget = \"db1\"\n";
  expect_invalid(head + "expect = \"allow\"\nexpected = \"deny\"\n", "5:1",
                 "unknown key \"expected\" in [[case]]");
  expect_invalid(head + "expect = \"maybe\"\n", "4:10", "expect must be \"allow\" or \"deny\"");
  expect_invalid(head + "expect = \"allow\"\nserial = \"7\"\n", "5:10",
                 "serial must be an integer, not a string");
  expect_invalid(head + "expect = \"allow\"\nfactor = \"touch or pin\"\n", "5:10",
                 "unknown factor \"pin\"");
  expect_invalid(head + "expect = \"allow\"\nfactor = [\"touch\", 3]\n", "5:20",
                 "factor entries must be a string, not an integer");
  expect_invalid(head + "expect = \"deny\"\nfactor = \"touch\"\n", "5:10",
                 "factor applies only to expect = \"allow\"");
  expect_invalid(head + "expect = \"allow\"\naction = \"scp\"\n", "5:10", "unknown action \"scp\"");
  expect_invalid(head + "expect = \"allow\"\nfrom = \"10.0.0.300\"\n", "5:8",
                 "from must be an IP address");
  expect_invalid(head + "expect = \"allow\"\nat = \"tomorrow\"\n", "5:6", "at: ");
  expect_invalid(head + "expect = \"allow\"\nextensions = { x = 1 }\n", "5:20",
                 "extension \"x\" must be a string");
  expect_invalid("[[case]]\nprincipal = \"alice\"\ntarget = \"db 1\"\nexpect = \"allow\"\n", "3:10",
                 "target must be a target name or HOST[:PORT]");
  expect_invalid("[[case]]\nprincipal = \"alice\"\nexpect = \"allow\"\n", "1:1",
                 "missing the required key \"target\"");
  expect_invalid("title = \"x\"\n", "1:1", "unknown key \"title\"");
  expect_invalid("# nothing\n", "1:1", "no [[case]] in the file");
  expect_invalid("[[case]]\nprincipal = \n", "2:13", "expected value");
}

TEST(ExpectationsTest, RunnerPassesAndFailsWithExpectedAndGot) {
  auto p = policy();
  auto cases = parse_ok(R"(
[[case]]
name = "alice in hours"
principal = "alice"
target = "db1"
at = "2026-11-30T10:00:00+01:00"
expect = "allow"
factor = ["piv", "touch+pin"]
rule = "prod"
code = "policy_allowed"
[[case]]
name = "alice at night"
principal = "alice"
target = "db1"
at = "2026-11-30T23:00:00+01:00"
expect = "allow"
[[case]]
name = "wrong factor"
principal = "alice"
target = "db1"
at = "2026-11-30T10:00:00+01:00"
expect = "allow"
factor = "touch"
[[case]]
name = "dev by extension"
principal = "bob"
extensions = { "groups@corp.example" = "ops, dev" }
target = "web1"
expect = "allow"
rule = "staging"
[[case]]
name = "bob without groups"
principal = "bob"
target = "web1"
expect = "deny"
code = "policy_no_match"
[[case]]
name = "carol by the wrong CA"
principal = "carol"
target = "web1"
expect = "deny"
[[case]]
name = "unknown CA"
principal = "carol"
ca = "other"
target = "web1"
expect = "deny"
)");
  ASSERT_EQ(cases.size(), 7u);
  auto results = run_expectations(*p, cases);
  ASSERT_EQ(results.size(), 7u);
  EXPECT_TRUE(results[0].passed) << results[0].message;
  EXPECT_TRUE(results[0].message.empty());

  EXPECT_FALSE(results[1].passed);
  EXPECT_EQ(results[1].name, "alice at night");
  EXPECT_THAT(results[1].message, StartsWith("expected allow, got deny, code policy_no_match ("));
  EXPECT_THAT(results[1].message, HasSubstr("; rule prod: Mon 2026-11-30 23:00"));

  EXPECT_FALSE(results[2].passed);
  EXPECT_THAT(results[2].message,
              StartsWith("expected allow with touch, got allow by rule prod with piv or "
                         "touch+pin, code policy_allowed"));

  EXPECT_TRUE(results[3].passed) << results[3].message;
  EXPECT_TRUE(results[4].passed) << results[4].message;
  // The default CA is the first of the configuration (corp): carol's rule wants partner.
  EXPECT_TRUE(results[5].passed) << results[5].message;
  EXPECT_FALSE(results[6].passed);
  EXPECT_THAT(results[6].message, HasSubstr("ca \"other\" is not a CA of the configuration"));
}

TEST(ExpectationsTest, CasesWithoutATimeUseNow) {
  auto p = policy();
  auto cases = parse_ok(R"(
[[case]]
principal = "alice"
target = "db1"
expect = "allow"
)");
  const auto monday_noon = *parse_instant("2026-11-30T11:00:00Z");
  const auto sunday_noon = *parse_instant("2026-11-29T11:00:00Z");
  EXPECT_TRUE(run_expectations(*p, cases, monday_noon)[0].passed);
  EXPECT_FALSE(run_expectations(*p, cases, sunday_noon)[0].passed);
}

}  // namespace
}  // namespace touchgate::policy
