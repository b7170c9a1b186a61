#include "policy/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "policy/timewindow.h"
#include "ssh/writer.h"

namespace touchgate::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The first 4 lines; rules and targets follow from line 5.
constexpr const char* kHead =
    "[server]\nlisten = [\"127.0.0.1:2222\"]\n[trust]\nuser_ca_keys = [\"corp.pub\", "
    "{ name = \"partner\", path = \"partner.pub\" }]\n";

constexpr const char* kTargets = R"(
[[target]]
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
[[target]]
name = "git1"
address = "10.0.9.1"
tags = ["source"]
)";

std::shared_ptr<const Policy> compile(const std::string& rules) {
  auto c = parse_config(std::string(kHead) + kTargets + rules, "/etc/tg", "t.toml");
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  if (!c) return nullptr;
  return Policy::compile(std::make_shared<const Config>(std::move(*c)));
}

Identity user(std::string principal, std::string ca = "corp") {
  Identity id;
  id.principal = std::move(principal);
  id.key_id = id.principal + "@corp.example";
  id.ca_name = std::move(ca);
  id.source = ssh::IpAddress::parse("10.8.1.2").value();
  return id;
}

Request to(std::string host, uint16_t port = 22) {
  Request r;
  r.host = std::move(host);
  r.port = port;
  r.at = parse_instant("2026-11-30T10:00:00Z").value();  // a Monday
  return r;
}

Decision decide(const Policy& p, Identity id, Request r, bool explain = false) {
  return p.decide(p.resolve(std::move(id)), r, explain);
}

TEST(GlobTest, Matches) {
  EXPECT_TRUE(glob_match("*.prod.example.com", "web3.prod.example.com"));
  EXPECT_TRUE(glob_match("*.PROD.example.com", "web3.prod.EXAMPLE.com"));
  EXPECT_FALSE(glob_match("*.prod.example.com", "prod.example.com"));
  EXPECT_FALSE(glob_match("*.prod.example.com", "web3.prod.example.com.evil.net"));
  EXPECT_TRUE(glob_match("db?", "db1"));
  EXPECT_FALSE(glob_match("db?", "db10"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));
  // Many stars against a long non-matching text stay fast (no exponential backtracking).
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST(EngineTest, RemoteUserAndInputRecording) {
  auto p = compile(R"(
[[rule]]
id = "deploy"
principals = ["alice"]
targets = ["db1"]
actions = ["shell", "exec"]
remote_user = "deploy"
record_input = true
[[rule]]
id = "own"
principals = ["alice"]
targets = ["db2"]
actions = ["exec"]
)");
  Request shell = to("db1");
  shell.action = Action::kShell;
  auto d = decide(*p, user("alice"), shell);
  ASSERT_TRUE(d.allowed()) << d.explanation;
  EXPECT_EQ(d.remote_user, "deploy");
  EXPECT_TRUE(d.record_input);
  Request exec = to("db2", 2222);
  exec.action = Action::kExec;
  d = decide(*p, user("alice"), exec);
  ASSERT_TRUE(d.allowed()) << d.explanation;
  EXPECT_EQ(d.remote_user, "alice");  // the principal when the rule names none
  EXPECT_FALSE(d.record_input);
  exec.action = Action::kSftp;
  EXPECT_FALSE(decide(*p, user("alice"), exec).allowed());  // action not granted
}

TEST(EngineTest, DenyByDefault) {
  auto p = compile("");
  ASSERT_TRUE(p);
  auto d = decide(*p, user("alice"), to("db1"));
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(d.code, "policy_no_match");
  EXPECT_EQ(d.explanation, "no rule allows alice to reach db1 (10.0.0.5:22) (deny by default)");
  EXPECT_EQ(d.rule_id, "");
}

TEST(EngineTest, UnknownDestination) {
  auto p = compile("[[rule]]\nid = \"all\"\nprincipals = [\"*\"]\ntargets = [\"*\"]\n");
  auto d = decide(*p, user("alice"), to("nosuch"));
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(d.code, "target_unknown");
  EXPECT_EQ(d.explanation, "nosuch:22 is not a configured target");
  // A configured target is found by its address too.
  auto by_addr = decide(*p, user("alice"), to("10.0.0.6", 2222));
  EXPECT_TRUE(by_addr.allowed());
  EXPECT_EQ(by_addr.target_name, "db2");
  // "targets = *" never reaches unconfigured hosts.
  EXPECT_EQ(decide(*p, user("alice"), to("10.0.0.7")).code, "target_unknown");
}

TEST(EngineTest, FindsConfiguredTargetsByNameOrAddress) {
  auto p = compile(R"(
[[target]]
name = "web"
address = "Web.Example.com"
[[target]]
name = "v6"
address = "[2001:db8::1]:2222"
[[rule]]
id = "all"
principals = ["*"]
targets = ["*"]
)");
  auto name_of = [&](const char* host, uint16_t port) {
    auto d = decide(*p, user("alice"), to(host, port));
    return d.target != nullptr ? d.target_name : d.code;
  };
  // By name, whatever the port (`ssh -J gw db1` asks for db1:22), without regard to case.
  EXPECT_EQ(name_of("db1", 22), "db1");
  EXPECT_EQ(name_of("db1", 5432), "db1");
  EXPECT_EQ(name_of("DB1", 22), "db1");
  EXPECT_EQ(name_of("db", 22), "target_unknown");
  EXPECT_EQ(name_of("", 22), "target_unknown");
  // By exact address: same host (case-insensitive; numeric addresses compared as addresses) and
  // same port.
  EXPECT_EQ(name_of("10.0.0.5", 22), "db1");
  EXPECT_EQ(name_of("10.0.0.5", 2222), "target_unknown");
  EXPECT_EQ(name_of("WEB.EXAMPLE.COM", 22), "web");
  EXPECT_EQ(name_of("web.example.com", 2222), "target_unknown");
  EXPECT_EQ(name_of("2001:DB8:0::1", 2222), "v6");
  EXPECT_EQ(name_of("[2001:db8::1]", 2222), "v6");
  EXPECT_EQ(name_of("2001:db8::1", 22), "target_unknown");
  // A host with a port inside is not a host (direct-tcpip carries the port apart).
  EXPECT_EQ(name_of("10.0.0.5:22", 22), "target_unknown");
}

TEST(EngineTest, SelectsByNameGlobAndTag) {
  auto p = compile(R"(
[[rule]]
id = "db"
principals = ["alice"]
targets = ["db*"]
[[rule]]
id = "staging"
principals = ["bob"]
targets = ["tag:staging"]
[[rule]]
id = "git"
principals = ["carol"]
targets = ["git1"]
)");
  EXPECT_TRUE(decide(*p, user("alice"), to("db1")).allowed());
  EXPECT_TRUE(decide(*p, user("alice"), to("DB2")).allowed());
  EXPECT_FALSE(decide(*p, user("alice"), to("web-staging")).allowed());
  auto bob = decide(*p, user("bob"), to("web-staging"));
  EXPECT_TRUE(bob.allowed());
  EXPECT_EQ(bob.rule_id, "staging");
  EXPECT_EQ(bob.host, "web.staging.example.com");
  EXPECT_EQ(bob.port, 22);
  EXPECT_FALSE(decide(*p, user("bob"), to("db1")).allowed());
  EXPECT_TRUE(decide(*p, user("carol"), to("git1")).allowed());
  EXPECT_FALSE(decide(*p, user("carol"), to("db1")).allowed());
}

TEST(EngineTest, DenyWins) {
  auto p = compile(R"(
[[rule]]
id = "all-prod"
principals = ["*"]
targets = ["tag:prod"]
[[rule]]
id = "no-db2"
effect = "deny"
principals = ["mallory"]
targets = ["db2"]
)");
  auto d = decide(*p, user("mallory"), to("db2"));
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(d.code, "policy_denied");
  EXPECT_EQ(d.rule_id, "no-db2");
  EXPECT_EQ(d.explanation, "rule no-db2 denies mallory access to db2 (10.0.0.6:2222)");
  EXPECT_TRUE(decide(*p, user("mallory"), to("db1")).allowed());
  EXPECT_TRUE(decide(*p, user("alice"), to("db2")).allowed());
}

TEST(EngineTest, FirstAllowDecidesFactorAndFreshness) {
  auto p = compile(R"(
[mfa]
max_age = "2m"
[[rule]]
id = "prod"
principals = ["*"]
targets = ["tag:prod"]
factor = ["touch+pin", "piv"]
max_age = "10m"
max_session = "8h"
[[rule]]
id = "any"
principals = ["*"]
targets = ["*"]
)");
  auto d = decide(*p, user("alice"), to("db1"));
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.rule_id, "prod");
  EXPECT_EQ(d.factors, static_cast<uint8_t>(Factor::kTouchPin) | static_cast<uint8_t>(Factor::kPiv));
  EXPECT_EQ(d.max_age, std::chrono::seconds(600));
  EXPECT_EQ(d.max_session, std::chrono::seconds(8 * 3600));
  EXPECT_EQ(d.explanation, "rule prod allows alice to reach db1 (10.0.0.5:22) with piv or touch+pin");
  auto s = decide(*p, user("alice"), to("web-staging"));
  ASSERT_TRUE(s.allowed());
  EXPECT_EQ(s.rule_id, "any");
  EXPECT_EQ(s.factors, static_cast<uint8_t>(Factor::kTouch));
  EXPECT_EQ(s.max_age, std::chrono::seconds(120));  // [mfa] max_age when the rule has none
}

Identity with_extension(Identity id, std::string name, std::string value) {
  id.extensions.emplace_back(std::move(name), std::move(value));
  return id;
}

TEST(EngineTest, GroupsFromPrincipalsKeyIdsAndExtensions) {
  auto p = compile(R"(
[[group]]
name = "dba"
principals = ["dana"]
[[group]]
name = "contractors"
key_ids = ["*@contractor.example"]
[[group]]
name = "dev"
extension = "groups@corp.example"
[[group]]
name = "oncall"
extension = "groups@corp.example"
extension_value = "on-call"
[[rule]]
id = "db"
groups = ["dba", "oncall"]
targets = ["tag:db"]
[[rule]]
id = "staging"
groups = ["dev", "contractors"]
targets = ["tag:staging"]
)");
  EXPECT_TRUE(decide(*p, user("dana"), to("db1")).allowed());
  EXPECT_FALSE(decide(*p, user("erin"), to("db1")).allowed());
  auto erin = with_extension(user("erin"), "groups@corp.example", "dev, on-call");
  auto who = p->resolve(erin);
  EXPECT_EQ(who.group_names, (std::vector<std::string>{"dev", "oncall"}));
  EXPECT_TRUE(p->decide(who, to("db1")).allowed());
  EXPECT_TRUE(p->decide(who, to("web-staging")).allowed());
  // A value is matched whole: "developers" is not "dev"; another extension's list does not count.
  EXPECT_FALSE(decide(*p, with_extension(user("erin"), "groups@corp.example", "developers"),
                      to("web-staging"))
                   .allowed());
  EXPECT_FALSE(decide(*p, with_extension(user("erin"), "groups@other.example", "dev"),
                      to("web-staging"))
                   .allowed());
  Identity contractor = user("frank");
  contractor.key_id = "frank@contractor.example";
  EXPECT_TRUE(decide(*p, contractor, to("web-staging")).allowed());
  EXPECT_FALSE(decide(*p, contractor, to("db1")).allowed());
}

TEST(EngineTest, GroupsScopedToCas) {
  auto p = compile(R"(
[[group]]
name = "admins"
extension = "groups@corp.example"
cas = ["corp"]
[[rule]]
id = "admins"
groups = ["admins"]
targets = ["*"]
)");
  auto corp = with_extension(user("ann"), "groups@corp.example", "admins");
  EXPECT_TRUE(decide(*p, corp, to("db1")).allowed());
  // The partner SSO writes the same extension: not a member, not allowed.
  auto partner = with_extension(user("ann", "partner"), "groups@corp.example", "admins");
  EXPECT_TRUE(p->resolve(partner).group_names.empty());
  EXPECT_FALSE(decide(*p, partner, to("db1")).allowed());
  // The second key of the corp CA file counts as corp.
  auto rotated = with_extension(user("ann", "corp#2"), "groups@corp.example", "admins");
  EXPECT_TRUE(decide(*p, rotated, to("db1")).allowed());
}

TEST(EngineTest, CasSourcesPortsAndActions) {
  auto p = compile(R"(
[[rule]]
id = "partner"
principals = ["*"]
cas = ["partner"]
targets = ["db1"]
from = ["192.0.2.0/24"]
[[rule]]
id = "db2-ssh-only"
principals = ["*"]
cas = ["corp"]
targets = ["db*"]
ports = [22]
)");
  Identity partner = user("pat", "partner");
  partner.source = ssh::IpAddress::parse("192.0.2.7").value();
  EXPECT_TRUE(decide(*p, partner, to("db1")).allowed());
  partner.source = ssh::IpAddress::parse("198.51.100.7").value();
  EXPECT_FALSE(decide(*p, partner, to("db1")).allowed());
  partner.source.reset();
  EXPECT_FALSE(decide(*p, partner, to("db1")).allowed());
  // The second key of a CA file with several (named "partner#2") counts as that CA.
  Identity rotated = user("pat", "partner#2");
  rotated.source = ssh::IpAddress::parse("192.0.2.7").value();
  EXPECT_TRUE(decide(*p, rotated, to("db1")).allowed());
  EXPECT_FALSE(decide(*p, user("pat", "partnerx"), to("db1")).allowed());
  // corp users reach db1 (port 22) but not db2 (port 2222).
  EXPECT_TRUE(decide(*p, user("alice"), to("db1")).allowed());
  EXPECT_FALSE(decide(*p, user("alice"), to("db2", 22)).allowed());
  Request shell = to("db1");
  shell.action = Action::kShell;
  EXPECT_FALSE(decide(*p, user("alice"), shell).allowed());
}

TEST(EngineTest, HostsSelectUnconfiguredDestinations) {
  auto p = compile(R"(
[[rule]]
id = "prod-hosts"
principals = ["alice"]
hosts = ["*.prod.example.com", "10.1.0.0/16"]
[[rule]]
id = "web-ports"
principals = ["alice"]
hosts = ["web?.example.com"]
ports = ["8000-8099"]
)");
  auto d = decide(*p, user("alice"), to("Web3.Prod.Example.com"));
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.target, nullptr);
  EXPECT_EQ(d.target_name, "web3.prod.example.com");
  EXPECT_EQ(d.host, "web3.prod.example.com");
  EXPECT_EQ(d.port, 22);
  EXPECT_TRUE(decide(*p, user("alice"), to("10.1.200.3")).allowed());
  EXPECT_EQ(decide(*p, user("alice"), to("10.2.0.1")).code, "target_unknown");
  // Without ports, a hosts rule allows only port 22.
  EXPECT_EQ(decide(*p, user("alice"), to("a.prod.example.com", 2222)).code, "policy_no_match");
  EXPECT_TRUE(decide(*p, user("alice"), to("web1.example.com", 8080)).allowed());
  EXPECT_FALSE(decide(*p, user("alice"), to("web1.example.com", 22)).allowed());
  EXPECT_EQ(decide(*p, user("bob"), to("a.prod.example.com")).code, "policy_no_match");
  // Names that are not host names are never selected.
  EXPECT_EQ(decide(*p, user("alice"), to("a b.prod.example.com")).code, "target_unknown");
}

TEST(EngineTest, DenyHostsRulesCoverEveryPortByDefault) {
  auto p = compile(R"(
[[rule]]
id = "no-ten"
effect = "deny"
principals = ["alice"]
hosts = ["10.0.0.0/8"]
[[rule]]
id = "anything"
principals = ["alice"]
hosts = ["*", "0.0.0.0/0"]
ports = ["1-65535"]
)");
  ASSERT_TRUE(p);
  // An allowing hosts rule without ports covers port 22 only; a denying one every port.
  EXPECT_EQ(decide(*p, user("alice"), to("10.1.2.3", 22)).code, "policy_denied");
  EXPECT_EQ(decide(*p, user("alice"), to("10.1.2.3", 5432)).code, "policy_denied");
  EXPECT_TRUE(decide(*p, user("alice"), to("192.168.1.1", 5432)).allowed());
}

TEST(EngineTest, AsHostJudgesATargetsAddressByHostsRules) {
  auto p = compile(R"(
[[rule]]
id = "no-ten"
effect = "deny"
principals = ["alice"]
hosts = ["10.0.0.0/8"]
[[rule]]
id = "db1"
principals = ["alice"]
targets = ["db1"]
)");
  ASSERT_TRUE(p);
  // As asked: db1's address (10.0.0.5:22) is db1, and hosts rules never select a configured
  // target.
  auto d = decide(*p, user("alice"), to("10.0.0.5"));
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.target_name, "db1");
  // As a plain address (what a name resolved to): the deny by network holds.
  Request r = to("10.0.0.5");
  r.as_host = true;
  d = decide(*p, user("alice"), r);
  EXPECT_EQ(d.code, "policy_denied");
  EXPECT_EQ(d.rule_id, "no-ten");
  EXPECT_EQ(d.target, nullptr);
  // A target's name is no host name under as_host: only hosts rules could select it.
  r = to("db1");
  r.as_host = true;
  EXPECT_EQ(decide(*p, user("alice"), r).code, "target_unknown");
}

TEST(EngineTest, NumericAliasesDecideAsTheAddressTheyName) {
  auto p = compile(R"(
[[rule]]
id = "no-db1"
effect = "deny"
principals = ["alice"]
targets = ["db1"]
[[rule]]
id = "no-ten"
effect = "deny"
principals = ["alice"]
hosts = ["10.0.0.0/8"]
[[rule]]
id = "anything-else"
principals = ["alice"]
hosts = ["*", "::/0", "0.0.0.0/0"]
)");
  // db1 is 10.0.0.5:22: by name, by address, bracketed, IPv4-mapped: all db1, all denied.
  for (const char* h : {"db1", "10.0.0.5", "[10.0.0.5]", "::ffff:10.0.0.5", "[::ffff:10.0.0.5]"}) {
    auto d = decide(*p, user("alice"), to(h));
    EXPECT_EQ(d.code, "policy_denied") << h;
    EXPECT_EQ(d.rule_id, "no-db1") << h;
  }
  // Other addresses in 10/8, however written, meet the CIDR deny.
  for (const char* h : {"10.9.9.9", "[::ffff:10.9.9.9]", "::FFFF:a09:909"}) {
    auto d = decide(*p, user("alice"), to(h));
    EXPECT_EQ(d.rule_id, "no-ten") << h;
    EXPECT_EQ(d.host, "10.9.9.9") << h;
  }
  // Legacy numeric forms the resolver would turn into addresses are not host names.
  for (const char* h : {"0x0a090909", "012.9.9.9", "10.1", "167772161", "0xa9fea9fe"}) {
    EXPECT_EQ(decide(*p, user("alice"), to(h)).code, "target_unknown") << h;
  }
  // Unbracketed IPv6 (as OpenSSH sends it) is an address; names are decided in lower case.
  auto v6 = decide(*p, user("alice"), to("2001:DB8::1"));
  EXPECT_TRUE(v6.allowed());
  EXPECT_EQ(v6.host, "2001:db8::1");
  auto name = decide(*p, user("alice"), to("Web3.Example.COM"));
  EXPECT_TRUE(name.allowed());
  EXPECT_EQ(name.host, "web3.example.com");
}

TEST(EngineTest, TimeWindowsAndExplain) {
  auto p = compile(R"(
[[group]]
name = "contractors"
principals = ["carl"]
[[rule]]
id = "contractors"
groups = ["contractors"]
targets = ["tag:prod"]
factor = "piv"
days = ["mon-fri"]
hours = ["09:00-18:00"]
timezone = "Europe/Berlin"
from = ["10.8.0.0/16"]
[[rule]]
id = "ops"
principals = ["olga"]
targets = ["*"]
)");
  Request monday = to("db1");  // Monday 10:00 UTC = 11:00 Berlin
  EXPECT_TRUE(decide(*p, user("carl"), monday).allowed());
  Request evening = monday;
  evening.at = parse_instant("2026-11-30T17:30:00Z").value();  // 18:30 Berlin
  EXPECT_FALSE(decide(*p, user("carl"), evening).allowed());
  Request saturday = monday;
  saturday.at = parse_instant("2026-11-28T10:00:00Z").value();
  auto d = decide(*p, user("carl"), saturday, true);
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(d.code, "policy_no_match");
  ASSERT_EQ(d.trace.size(), 2u);
  EXPECT_EQ(d.trace[0].rule_id, "contractors");
  EXPECT_EQ(d.trace[0].line, 26);
  EXPECT_FALSE(d.trace[0].matched);
  EXPECT_THAT(d.trace[0].why, HasSubstr("is outside mon-fri 09:00-18:00 Europe/Berlin"));
  EXPECT_THAT(d.trace[0].why, StartsWith("Sat"));
  EXPECT_EQ(d.trace[1].why, "carl is not among principals olga");
  // An allow by a rule with a window says when the window closes (18:00 Berlin = 17:00 UTC).
  auto allowed = decide(*p, user("carl"), monday);
  ASSERT_TRUE(allowed.window_closes.has_value());
  EXPECT_EQ(*allowed.window_closes, parse_instant("2026-11-30T17:00:00Z").value());
  EXPECT_EQ(allowed.window, "mon-fri 09:00-18:00 Europe/Berlin");
  EXPECT_FALSE(decide(*p, user("olga"), monday).window_closes.has_value());
  // The trace of an allowed request shows the deciding rule as matching.
  auto ok = decide(*p, user("carl"), monday, true);
  EXPECT_TRUE(ok.allowed());
  EXPECT_TRUE(ok.trace[0].matched);
  EXPECT_EQ(ok.trace[0].why, "matches");
  // The explanation for a subject outside the group names the groups.
  auto olga = decide(*p, user("dan"), monday, true);
  EXPECT_EQ(olga.trace[0].why, "dan is not in groups contractors (member of no group)");
}

TEST(EngineTest, ExtensionValuesDecodeStrings) {
  std::vector<ssh::CertOption> ext;
  ssh::Writer w;
  w.string(std::string_view("dev,oncall"));
  ext.push_back({"groups@corp.example", w.take()});
  ext.push_back({"permit-pty", {}});
  ext.push_back({"weird@x", {1, 2, 3}});
  auto v = extension_values(ext);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], (std::pair<std::string, std::string>{"groups@corp.example", "dev,oncall"}));
  EXPECT_EQ(v[1], (std::pair<std::string, std::string>{"permit-pty", ""}));
}

TEST(FactorTest, WhatATouchProves) {
  ProvenFactor sk{true, true, false, false};
  EXPECT_EQ(satisfied_factors(sk), static_cast<uint8_t>(Factor::kTouch));
  EXPECT_EQ(strongest_factor(sk), "touch");
  ProvenFactor sk_pin{true, true, true, false};
  EXPECT_EQ(strongest_factor(sk_pin), "touch+pin");
  ProvenFactor no_up{true, false, true, false};
  EXPECT_EQ(satisfied_factors(no_up), 0);
  ProvenFactor piv{false, false, false, false};
  EXPECT_EQ(satisfied_factors(piv),
            static_cast<uint8_t>(Factor::kTouch) | static_cast<uint8_t>(Factor::kPiv));
  EXPECT_EQ(factor_names(static_cast<uint8_t>(Factor::kTouchPin) |
                         static_cast<uint8_t>(Factor::kPiv)),
            "piv or touch+pin");
  EXPECT_FALSE(parse_factor("touch+PIN"));
  EXPECT_EQ(parse_factor("piv-attested-touch"), Factor::kPivAttestedTouch);
}

TEST(FactorTest, FreshnessAndStepUp) {
  using namespace std::chrono_literals;
  const uint8_t touch = static_cast<uint8_t>(Factor::kTouch);
  const uint8_t pin = static_cast<uint8_t>(Factor::kTouchPin);
  const uint8_t piv = static_cast<uint8_t>(Factor::kPiv);
  const uint8_t plain_sk = satisfied_factors({true, true, false, false});
  const uint8_t pin_sk = satisfied_factors({true, true, true, false});
  // max_age 0: a touch per channel, whatever came before.
  EXPECT_EQ(reuse_touch(pin_sk, 1s, touch, 0s), Reuse::kFresh);
  // No earlier touch, or one older than max_age.
  EXPECT_EQ(reuse_touch(0, 1s, touch, 300s), Reuse::kFresh);
  EXPECT_EQ(reuse_touch(plain_sk, 301s, touch, 300s), Reuse::kFresh);
  EXPECT_EQ(reuse_touch(plain_sk, 300s, touch, 300s), Reuse::kReuse);
  // Fresh but too weak for a stricter rule: step up; a stronger touch serves a weaker rule.
  EXPECT_EQ(reuse_touch(plain_sk, 10s, pin | piv, 300s), Reuse::kStepUp);
  EXPECT_EQ(reuse_touch(pin_sk, 10s, pin | piv, 300s), Reuse::kReuse);
  EXPECT_EQ(reuse_touch(pin_sk, 10s, touch, 300s), Reuse::kReuse);
  EXPECT_EQ(reuse_touch(satisfied_factors({false, false, false, false}), 10s, pin, 300s),
            Reuse::kStepUp);
  // The freshness is the NEW rule's: a touch reused under a long max_age is not under a short one.
  EXPECT_EQ(reuse_touch(pin_sk, 120s, pin, 60s), Reuse::kFresh);
  // A clock that went backwards never makes a touch reusable.
  EXPECT_EQ(reuse_touch(pin_sk, -1s, pin, 60s), Reuse::kFresh);
}

// Rule syntax errors carry the line of the offending value.
void expect_error(const std::string& rules, int line, std::string_view what) {
  auto c = parse_config(std::string(kHead) + kTargets + rules, "/etc/tg", "t.toml");
  ASSERT_FALSE(c.has_value()) << rules;
  EXPECT_THAT(c.error().message, StartsWith("t.toml:" + std::to_string(line) + ":")) << rules;
  EXPECT_THAT(c.error().message, HasSubstr(std::string(what))) << rules;
}

TEST(RuleSyntaxTest, Errors) {
  // kHead is 4 lines, kTargets 17 (a blank line first): rules start at line 22.
  expect_error("[[rule]]\nid = \"r\"\ntargets = [\"db1\"]\n", 22, "names no subjects");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\n", 22, "names no targets");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"db9\"]\n", 25,
               "unknown target \"db9\"");
  expect_error("[[rule]]\nid = \"r\"\ngroups = [\"ops\"]\ntargets = [\"db1\"]\n", 24,
               "unknown group \"ops\"");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"tag:nope\"]\n", 25,
               "no [[target]] has the tag \"nope\"");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\nfactor = \"pin\"\n",
               26, "unknown factor \"pin\"");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\nports = [\"30-20\"]\n",
               26, "invalid port range");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\nfrom = [\"10.0.0.1/8\"]\n",
               26, "invalid network");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\n"
               "timezone = \"Mars/Olympus\"\n",
               26, "unknown time zone");
  expect_error("[[rule]]\nid = \"r\"\neffect = \"deny\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\n"
               "factor = \"piv\"\n",
               27, "factor, max_age and max_session apply only to allow rules");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"al*\"]\ntargets = [\"db1\"]\n", 24,
               "only exact names");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\n"
               "[[rule]]\nid = \"R\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\n",
               27, "duplicate rule id");
  expect_error("[[rule]]\nid = \"r\"\nprincipals = [\"*\"]\ntargets = [\"db1\"]\nhost = [\"x\"]\n", 26,
               "did you mean \"hosts\"");
  expect_error("[[group]]\nname = \"g\"\nextension_value = \"x\"\n", 24, "needs group.extension");
  expect_error("[[group]]\nname = \"g\"\nprincipals = [\"a\"]\ncas = [\"nope\"]\n", 25,
               "unknown CA \"nope\"");
}

}  // namespace
}  // namespace touchgate::policy
