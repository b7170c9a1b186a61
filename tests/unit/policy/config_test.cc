#include "policy/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace touchgate::policy {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

constexpr const char* kMinimal = R"(
[server]
listen = ["127.0.0.1:2222"]
[trust]
user_ca_keys = ["ca.pub"]
)";

Result<Config> parse(std::string_view text) {
  return parse_config(text, "/etc/tg", "t.toml");
}

// expect_error parses text and checks the error is config_invalid at "t.toml:LINE:" and mentions
// `what`.
void expect_error(std::string_view text, int line, std::string_view what) {
  auto c = parse(text);
  ASSERT_FALSE(c.has_value()) << "accepted:\n" << text;
  EXPECT_EQ(c.error().code, "config_invalid");
  EXPECT_THAT(c.error().message, StartsWith("t.toml:" + std::to_string(line) + ":")) << text;
  EXPECT_THAT(c.error().message, HasSubstr(std::string(what))) << text;
}

// with_server builds a config with extra [server] lines (line 3 onwards).
std::string with_server(std::string_view extra) {
  return "[server]\nlisten = [\"127.0.0.1:2222\"]\n" + std::string(extra) +
         "\n[trust]\nuser_ca_keys = [\"ca.pub\"]\n";
}

// with_trust builds a config with extra [trust] lines (line 5 onwards).
std::string with_trust(std::string_view extra) {
  return "[server]\nlisten = [\"127.0.0.1:2222\"]\n[trust]\nuser_ca_keys = [\"ca.pub\"]\n" +
         std::string(extra) + "\n";
}

// with_targets appends target tables (their first line is line 5).
std::string with_targets(std::string_view targets) {
  return std::string(
             "[server]\nlisten = [\"127.0.0.1:2222\"]\n[trust]\nuser_ca_keys = [\"ca.pub\"]\n") +
         std::string(targets);
}

TEST(ConfigTest, MinimalUsesDefaults) {
  auto c = parse(kMinimal);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const ServerConfig& s = c->server;
  ASSERT_EQ(s.listen.size(), 1u);
  EXPECT_EQ(s.listen[0].host, "127.0.0.1");
  EXPECT_EQ(s.listen[0].port, 2222);
  EXPECT_EQ(s.state_dir, fs::path("/var/lib/touchgate"));
  ASSERT_EQ(s.host_keys.size(), 1u);
  EXPECT_EQ(s.host_keys[0], fs::path("/var/lib/touchgate/ssh_host_ed25519_key"));
  EXPECT_EQ(s.login_grace_time, seconds(30));
  EXPECT_EQ(s.max_auth_tries, 6);
  EXPECT_EQ(s.max_startups, 1000);
  EXPECT_EQ(s.max_sessions, 10000);
  EXPECT_EQ(s.max_channels_per_connection, 10);
  EXPECT_EQ(s.workers, 0);
  EXPECT_EQ(s.connect_timeout, seconds(10));
  EXPECT_EQ(s.drain_timeout, seconds(30));
  EXPECT_EQ(s.idle_timeout, seconds(0));
  const TrustConfig& t = c->trust;
  ASSERT_EQ(t.user_ca_keys.size(), 1u);
  EXPECT_EQ(t.user_ca_keys[0].name, "ca");
  EXPECT_EQ(t.user_ca_keys[0].path, fs::path("/etc/tg/ca.pub"));
  EXPECT_FALSE(t.revoked_keys.has_value());
  EXPECT_EQ(t.max_cert_lifetime, seconds(0));
  EXPECT_EQ(t.clock_skew, seconds(60));
  EXPECT_FALSE(t.allow_ssh_rsa_sha1);
  EXPECT_FALSE(t.permit_force_command);
  EXPECT_TRUE(c->targets.empty());
}

TEST(ConfigTest, EveryKeySet) {
  auto c = parse(R"(
# a complete configuration
[server]
listen = ["127.0.0.1:2222", "[::1]:2223", "0.0.0.0:22"]
host_keys = ["keys/ed25519", "/abs/rsa"]
state_dir = "state"
login_grace_time = "45s"
max_auth_tries = 3
max_startups = 50
max_sessions = 200
max_channels_per_connection = 4
workers = 2
connect_timeout = "1m"
drain_timeout = 90
idle_timeout = "1h30m"

[trust]
user_ca_keys = ["ca.pub", { name = "sso-2026", path = "../shared/ca2.pub" }]
revoked_keys = "revoked.krl"
max_cert_lifetime = "12h"
clock_skew = "2m"
allow_ssh_rsa_sha1 = true
permit_force_command = true

[[target]]
name = "db1"
address = "127.0.0.1:2201"
tags = ["prod", "db"]

[[target]]
name = "web.eu-1"
address = "web1.example.com"
)");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  const ServerConfig& s = c->server;
  ASSERT_EQ(s.listen.size(), 3u);
  EXPECT_EQ(s.listen[1].host, "::1");
  EXPECT_EQ(s.listen[1].port, 2223);
  EXPECT_EQ(s.listen[1].to_string(), "[::1]:2223");
  EXPECT_EQ(s.listen[2].to_string(), "0.0.0.0:22");
  ASSERT_EQ(s.host_keys.size(), 2u);
  EXPECT_EQ(s.host_keys[0], fs::path("/etc/tg/keys/ed25519"));
  EXPECT_EQ(s.host_keys[1], fs::path("/abs/rsa"));
  EXPECT_EQ(s.state_dir, fs::path("/etc/tg/state"));
  EXPECT_EQ(s.login_grace_time, seconds(45));
  EXPECT_EQ(s.max_auth_tries, 3);
  EXPECT_EQ(s.max_startups, 50);
  EXPECT_EQ(s.max_sessions, 200);
  EXPECT_EQ(s.max_channels_per_connection, 4);
  EXPECT_EQ(s.workers, 2);
  EXPECT_EQ(s.connect_timeout, seconds(60));
  EXPECT_EQ(s.drain_timeout, seconds(90));
  EXPECT_EQ(s.idle_timeout, seconds(5400));
  const TrustConfig& t = c->trust;
  ASSERT_EQ(t.user_ca_keys.size(), 2u);
  EXPECT_EQ(t.user_ca_keys[0].name, "ca");
  EXPECT_EQ(t.user_ca_keys[1].name, "sso-2026");
  EXPECT_EQ(t.user_ca_keys[1].path, fs::path("/etc/shared/ca2.pub"));
  ASSERT_TRUE(t.revoked_keys.has_value());
  EXPECT_EQ(*t.revoked_keys, fs::path("/etc/tg/revoked.krl"));
  EXPECT_EQ(t.max_cert_lifetime, seconds(12 * 3600));
  EXPECT_EQ(t.clock_skew, seconds(120));
  EXPECT_TRUE(t.allow_ssh_rsa_sha1);
  EXPECT_TRUE(t.permit_force_command);
  ASSERT_EQ(c->targets.size(), 2u);
  EXPECT_EQ(c->targets[0].name, "db1");
  EXPECT_EQ(c->targets[0].host, "127.0.0.1");
  EXPECT_EQ(c->targets[0].port, 2201);
  EXPECT_THAT(c->targets[0].tags, ::testing::ElementsAre("prod", "db"));
  EXPECT_EQ(c->targets[1].host, "web1.example.com");
  EXPECT_EQ(c->targets[1].port, 22);
  EXPECT_TRUE(c->targets[1].tags.empty());
  EXPECT_EQ(c->targets[1].address(), "web1.example.com:22");
}

TEST(ConfigTest, HostKeysDefaultFollowsStateDir) {
  auto c = parse(with_server("state_dir = \"/srv/tg\""));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->server.host_keys.size(), 1u);
  EXPECT_EQ(c->server.host_keys[0], fs::path("/srv/tg/ssh_host_ed25519_key"));
}

TEST(ConfigTest, ControlSocketDefaultFollowsStateDir) {
  auto c = parse(with_server("state_dir = \"/srv/tg\""));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->server.control_socket, fs::path("/srv/tg/control.sock"));
  EXPECT_EQ(c->server.admin_group, "");
}

TEST(ConfigTest, ControlSocketAndAdminGroup) {
  auto c = parse(with_server("control_socket = \"run/tg.sock\"\nadmin_group = \"tg-admin\""));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->server.control_socket, fs::path("/etc/tg/run/tg.sock"));
  EXPECT_EQ(c->server.admin_group, "tg-admin");
}

TEST(ConfigTest, ControlSocketAndAdminGroupErrors) {
  expect_error(with_server("control_socket = \"\""), 3, "server.control_socket must not be empty");
  expect_error(with_server("control_socket = \"/" + std::string(120, 'a') + "\""), 3,
               "server.control_socket is too long for a unix socket (at most 107 bytes)");
  expect_error(with_server("admin_group = \"\""), 3, "server.admin_group must be a group name");
  expect_error(with_server("admin_group = \"-x\""), 3, "server.admin_group must be a group name");
  expect_error(with_server("admin_group = \"a b\""), 3, "server.admin_group must be a group name");
  expect_error(with_server("admin_group = 0"), 3, "server.admin_group must be a string");
  expect_error(with_server("control_sock = \"x\""), 3, "(did you mean \"control_socket\"?)");
}

TEST(ConfigTest, ArrayOfTablesForCaKeys) {
  auto c = parse(R"([server]
listen = ["127.0.0.1:2222"]
[[trust.user_ca_keys]]
name = "old"
path = "old.pub"
[[trust.user_ca_keys]]
path = "/etc/ssh/new.pub"
)");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->trust.user_ca_keys.size(), 2u);
  EXPECT_EQ(c->trust.user_ca_keys[0].name, "old");
  EXPECT_EQ(c->trust.user_ca_keys[1].name, "new");
  EXPECT_EQ(c->trust.user_ca_keys[1].path, fs::path("/etc/ssh/new.pub"));
}

// ---- listen ------------------------------------------------------------------------------------

TEST(ConfigTest, ListenIpv6IsCanonicalised) {
  auto c = parse(R"([server]
listen = ["[0:0:0:0:0:0:0:1]:22", "[2001:DB8::0:1]:65535", "[::]:1"]
[trust]
user_ca_keys = ["ca.pub"]
)");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->server.listen.size(), 3u);
  EXPECT_EQ(c->server.listen[0].host, "::1");
  EXPECT_EQ(c->server.listen[1].to_string(), "[2001:db8::1]:65535");
  EXPECT_EQ(c->server.listen[2].to_string(), "[::]:1");
}

TEST(ConfigTest, ListenErrors) {
  auto listen = [](std::string_view value) {
    return "[server]\n\nlisten = " + std::string(value) +
           "\n[trust]\nuser_ca_keys = [\"ca.pub\"]\n";
  };
  expect_error(listen("[\"127.0.0.1\"]"), 3, "missing port");
  expect_error(listen("[\"::1:2222\"]"), 3, "brackets");
  expect_error(listen("[\"localhost:2222\"]"), 3, "numeric IPv4");
  expect_error(listen("[\"[localhost]:2222\"]"), 3, "IPv6");
  expect_error(listen("[\"[::1]\"]"), 3, "missing port");
  expect_error(listen("[\"[::1]2222\"]"), 3, "expected ':'");
  expect_error(listen("[\"[::1:2222\"]"), 3, "missing ']'");
  expect_error(listen("[\"[fe80::1%eth0]:22\"]"), 3, "IPv6");
  expect_error(listen("[\"127.0.0.1:0\"]"), 3, "1 to 65535");
  expect_error(listen("[\"127.0.0.1:65536\"]"), 3, "1 to 65535");
  expect_error(listen("[\"127.0.0.1:+22\"]"), 3, "1 to 65535");
  expect_error(listen("[\"127.0.0.1:\"]"), 3, "1 to 65535");
  expect_error(listen("[\"127.1:22\"]"), 3, "numeric IPv4");
  expect_error(listen("[\"127.0.0.1:22\", \"127.0.0.1:22\"]"), 3,
               "duplicate listen address 127.0.0.1:22");
  expect_error(listen("[]"), 3, "server.listen must not be empty");
  expect_error(listen("\"127.0.0.1:22\""), 3, "server.listen must be an array, not a string");
  expect_error(listen("[2222]"), 3, "must be a string, not an integer");
}

TEST(ConfigTest, ListenErrorPointsAtTheEntry) {
  auto c = parse(
      "[server]\nlisten = [\n  \"127.0.0.1:1\",\n  \"bad\",\n]\n[trust]\nuser_ca_keys = [\"a\"]\n");
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message, StartsWith("t.toml:4:3: invalid listen address \"bad\""));
}

// ---- durations ---------------------------------------------------------------------------------

TEST(ParseDurationTest, Accepted) {
  struct Case {
    const char* text;
    long seconds;
  } cases[] = {
      {"0", 0},       {"30", 30},     {"30s", 30},      {"5m", 300},
      {"12h", 43200}, {"7d", 604800}, {"1h30m", 5400},  {"1d2h3m4s", 93784},
      {"0s", 0},      {"90m", 5400},  {"1d30s", 86430}, {"3650d", 3650L * 86400},
  };
  for (const Case& c : cases) {
    auto d = parse_duration(c.text);
    ASSERT_TRUE(d.has_value()) << c.text << ": " << d.error().message;
    EXPECT_EQ(d->count(), c.seconds) << c.text;
  }
}

TEST(ParseDurationTest, Refused) {
  for (const char* text : {"", "s", "-5", "5x", "1.5h", " 30s", "30s ", "30 s", "1h30", "30m1h",
                           "1h1h", "5S", "1w", "+5", "3651d", "99999999999999999999", "1e3"}) {
    auto d = parse_duration(text);
    ASSERT_FALSE(d.has_value()) << "accepted \"" << text << "\"";
    EXPECT_EQ(d.error().code, "config_invalid");
    EXPECT_THAT(d.error().message, HasSubstr("duration")) << text;
  }
}

TEST(ConfigTest, DurationValues) {
  auto c = parse(with_server("login_grace_time = 600\nidle_timeout = \"7d\"\ndrain_timeout = 0"));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->server.login_grace_time, seconds(600));
  EXPECT_EQ(c->server.idle_timeout, seconds(7 * 86400));
  EXPECT_EQ(c->server.drain_timeout, seconds(0));

  expect_error(with_server("login_grace_time = \"10x\""), 3,
               "server.login_grace_time: invalid duration");
  expect_error(with_server("login_grace_time = 0"), 3,
               "login_grace_time must be between 1s and 10m, not 0s");
  expect_error(with_server("login_grace_time = \"601s\""), 3, "between 1s and 10m, not 10m1s");
  expect_error(with_server("login_grace_time = -5"), 3, "must not be negative");
  expect_error(with_server("login_grace_time = 1.5"), 3, "must be a duration");
  expect_error(with_server("connect_timeout = \"0s\""), 3,
               "connect_timeout must be between 1s and 1h");
  expect_error(with_server("connect_timeout = \"2h\""), 3,
               "connect_timeout must be between 1s and 1h");
  expect_error(with_server("drain_timeout = \"2d\""), 3, "drain_timeout must be between 0s and 1d");
  expect_error(with_server("idle_timeout = 999999999999"), 3, "idle_timeout is too long");
  expect_error(with_trust("clock_skew = \"2h\""), 5, "clock_skew must be between 0s and 1h");
  expect_error(with_trust("max_cert_lifetime = \"forever\""), 5, "invalid duration");
  expect_error(with_trust("max_cert_lifetime = true"), 5, "must be a duration");
}

// ---- integers and booleans --------------------------------------------------------------------

TEST(ConfigTest, IntegerRanges) {
  expect_error(with_server("max_auth_tries = 0"), 3,
               "server.max_auth_tries must be between 1 and 100, not 0");
  expect_error(with_server("max_auth_tries = 101"), 3, "between 1 and 100, not 101");
  expect_error(with_server("max_startups = 0"), 3,
               "server.max_startups must be between 1 and 1000000");
  expect_error(with_server("max_sessions = 1000001"), 3,
               "server.max_sessions must be between 1 and 1000000");
  expect_error(with_server("max_channels_per_connection = 0"), 3,
               "server.max_channels_per_connection must be between 1 and 1000");
  expect_error(with_server("workers = -1"), 3, "server.workers must be between 0 and 1024");
  expect_error(with_server("workers = 9223372036854775807"), 3,
               "server.workers must be between 0 and 1024");

  auto c = parse(
      with_server("max_auth_tries = 100\nworkers = 1024\nmax_channels_per_connection = 1000"));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->server.max_auth_tries, 100);
  EXPECT_EQ(c->server.workers, 1024);
  EXPECT_EQ(c->server.max_channels_per_connection, 1000);
}

TEST(ConfigTest, WrongTypes) {
  expect_error(with_server("max_auth_tries = \"6\""), 3,
               "server.max_auth_tries must be an integer, not a string");
  expect_error(with_server("workers = 2.0"), 3, "must be an integer, not a float");
  expect_error(with_server("state_dir = 5"), 3,
               "server.state_dir must be a string, not an integer");
  expect_error(with_server("state_dir = \"\""), 3, "server.state_dir must not be empty");
  expect_error(with_server("host_keys = \"key\""), 3, "server.host_keys must be an array");
  expect_error(with_server("host_keys = []"), 3, "server.host_keys must not be empty");
  expect_error(with_server("host_keys = [\"a\", \"a\"]"), 3, "duplicate host key file");
  expect_error(with_trust("allow_ssh_rsa_sha1 = \"yes\""), 5,
               "trust.allow_ssh_rsa_sha1 must be true or false, not a string");
  expect_error(with_trust("permit_force_command = 1"), 5, "must be true or false, not an integer");
  expect_error(with_trust("revoked_keys = [\"a\"]"), 5,
               "trust.revoked_keys must be a string, not an array");
  expect_error(with_server("state_dir = 1979-05-27"), 3, "not a date");
  expect_error(with_server("state_dir = \"a\\u0000b\""), 3, "NUL");
  expect_error("server = 5\n[trust]\nuser_ca_keys = [\"a\"]\n", 1, "server must be a table");
  expect_error("[server]\nlisten = [\"127.0.0.1:1\"]\n[trust]\nuser_ca_keys = \"ca.pub\"\n", 4,
               "trust.user_ca_keys must be an array");
}

// ---- unknown and missing keys -----------------------------------------------------------------

TEST(ConfigTest, UnknownKeysAnywhere) {
  expect_error(with_server("listne = 1"), 3,
               "unknown key \"listne\" in [server] (did you mean \"listen\"?)");
  expect_error(with_trust("clock_skw = \"1s\""), 5,
               "unknown key \"clock_skw\" in [trust] (did you mean \"clock_skew\"?)");
  expect_error(with_trust("zzz = 1"), 5, "unknown key \"zzz\" in [trust]");
  expect_error("[sever]\nlisten = []\n", 1, "unknown section \"sever\" (did you mean \"server\"?)");
  expect_error("\nlog_level = 3\n" + std::string(kMinimal), 2, "unknown key \"log_level\"");
  expect_error(with_server("[server.extra]\nx = 1"), 3, "unknown key \"extra\" in [server]");
  expect_error(with_targets("[[target]]\nname = \"a\"\naddress = \"h\"\nport = 22\n"), 8,
               "unknown key \"port\" in [[target]]");
  expect_error(
      "[server]\nlisten = [\"127.0.0.1:1\"]\n[trust]\nuser_ca_keys = [{ path = \"a\", nmae = \"x\" "
      "}]\n",
      4,
      "unknown key \"nmae\" in a user_ca_keys entry (allowed: name, path) (did you mean "
      "\"name\"?)");
}

TEST(ConfigTest, MfaDefaults) {
  auto c = parse(kMinimal);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->mfa.touch_timeout, seconds(60));
  EXPECT_EQ(c->mfa.max_age, seconds(0));
  EXPECT_FALSE(c->mfa.require_pin);
  EXPECT_EQ(c->mfa.prefer, (std::vector<std::string>{"fido2", "piv"}));
  EXPECT_FALSE(c->server.name.empty());
  EXPECT_EQ(c->mfa_namespace(), "touchgate-mfa@" + c->server.name);
}

TEST(ConfigTest, MfaEveryKey) {
  std::string text = R"(
[server]
name = "gw-1.example"
listen = ["127.0.0.1:2222"]
[trust]
user_ca_keys = ["/etc/tg/ca.pub"]
[mfa]
touch_timeout = "2m"
max_age = "15m"
require_pin = true
prefer = ["piv"]
)";
  auto c = parse(text);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->server.name, "gw-1.example");
  EXPECT_EQ(c->mfa_namespace(), "touchgate-mfa@gw-1.example");
  EXPECT_EQ(c->mfa.touch_timeout, seconds(120));
  EXPECT_EQ(c->mfa.max_age, seconds(900));
  EXPECT_TRUE(c->mfa.require_pin);
  EXPECT_EQ(c->mfa.prefer, (std::vector<std::string>{"piv"}));
}

TEST(ConfigTest, MfaErrors) {
  const std::string base = std::string(kMinimal) + "[mfa]\n";
  expect_error(base + "touch_timeout = 0\n", 7, "mfa.touch_timeout must be between");
  expect_error(base + "touch_timeout = \"11m\"\n", 7, "mfa.touch_timeout must be between");
  expect_error(base + "max_age = \"2d\"\n", 7, "mfa.max_age must be between");
  expect_error(base + "require_pin = \"yes\"\n", 7, "mfa.require_pin");
  expect_error(base + "prefer = []\n", 7, "mfa.prefer must not be empty");
  expect_error(base + "prefer = [\"u2f\"]\n", 7, "unknown key kind \"u2f\"");
  expect_error(base + "prefer = [\"piv\", \"piv\"]\n", 7, "duplicate key kind \"piv\"");
  expect_error(base + "touch_timout = 5\n", 7, "(did you mean \"touch_timeout\"?)");
  expect_error(base + "require = \"touch\"\n", 7, "unknown key \"require\" in [mfa]");
  expect_error("mfa = 1\n" + std::string(kMinimal), 1, "mfa must be a table");
}

TEST(ConfigTest, ServerNameErrors) {
  std::string text = R"(
[server]
name = "gw 1"
listen = ["127.0.0.1:2222"]
[trust]
user_ca_keys = ["/etc/tg/ca.pub"]
)";
  expect_error(text, 3, "server.name must be 1-64 characters");
}

TEST(ConfigTest, AuditDefaults) {
  auto c = parse(kMinimal);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->audit.dir, fs::path("/var/lib/touchgate/audit"));
  EXPECT_EQ(c->audit.key, fs::path("/var/lib/touchgate/audit_key"));
  EXPECT_EQ(c->audit.max_segment_size, 64ull << 20);
  EXPECT_EQ(c->audit.max_segment_age, std::chrono::hours(24));
  EXPECT_EQ(c->audit.checkpoint_every, 1000u);
  EXPECT_EQ(c->audit.checkpoint_interval, std::chrono::seconds(60));
  EXPECT_TRUE(c->audit.deny_on_failure);
  EXPECT_FALSE(c->audit.syslog);
}

TEST(ConfigTest, AuditSection) {
  auto c = parse(std::string(kMinimal) + R"([audit]
dir = "log"
key = "/etc/tg/keys/audit"
max_segment_size = "128M"
max_segment_age = "1h"
checkpoint_every = 50
checkpoint_interval = "10s"
on_failure = "continue"
syslog = true
syslog_socket = "/run/log.sock"
syslog_facility = "local3"
)");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->audit.dir, fs::path("/etc/tg/log"));
  EXPECT_EQ(c->audit.key, fs::path("/etc/tg/keys/audit"));
  EXPECT_EQ(c->audit.max_segment_size, 128ull << 20);
  EXPECT_EQ(c->audit.max_segment_age, std::chrono::hours(1));
  EXPECT_EQ(c->audit.checkpoint_every, 50u);
  EXPECT_EQ(c->audit.checkpoint_interval, std::chrono::seconds(10));
  EXPECT_FALSE(c->audit.deny_on_failure);
  EXPECT_TRUE(c->audit.syslog);
  EXPECT_EQ(c->audit.syslog_socket, fs::path("/run/log.sock"));
  EXPECT_EQ(c->audit.syslog_facility, "local3");
}

TEST(ConfigTest, AuditErrors) {
  const std::string m = std::string(kMinimal) + "[audit]\n";
  expect_error(m + "on_failure = \"ignore\"\n", 7, "audit.on_failure must be \"deny\" or \"continue\"");
  expect_error(m + "max_segment_size = \"64Q\"\n", 7, "is not a size");
  expect_error(m + "max_segment_size = 1000\n", 7, "between 1M and 16G");
  expect_error(m + "checkpoint_every = 0\n", 7, "audit.checkpoint_every must be between 1");
  expect_error(m + "syslog_facility = \"kern\"\n", 7, "unknown facility \"kern\"");
  expect_error(m + "dirr = \"x\"\n", 7, "unknown key \"dirr\" in [audit]");
}

TEST(ConfigTest, TerminatingModeSections) {
  auto c = parse(std::string(kMinimal) + R"([ca]
pkcs11_uri = "pkcs11:token=gw-ca;object=ca"
pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
pin_file = "ca.pin"
cert_lifetime = "2m"
[recording]
max_size = "1G"
on_cap = "end"
[terminating]
env = ["LANG", "LC_*", "TZ"]
[[target]]
name = "db1"
address = "10.0.0.1"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHpfRx1M3bbTD/f5LQp2FRPsMoImHvWyXUfcFXp3g6L4 db1"
[[target]]
name = "db2"
address = "10.0.0.2"
trust_on_first_use = true
[[rule]]
id = "ops"
principals = ["alice"]
targets = ["db*"]
actions = ["shell", "exec", "sftp"]
remote_user = "deploy"
record_input = true
)");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->ca.configured());
  EXPECT_EQ(c->ca.pkcs11_uri, "pkcs11:token=gw-ca;object=ca");
  EXPECT_EQ(c->ca.pin_file, fs::path("/etc/tg/ca.pin"));
  EXPECT_EQ(c->ca.cert_lifetime, std::chrono::minutes(2));
  EXPECT_EQ(c->recording.dir, fs::path("/var/lib/touchgate/recordings"));
  EXPECT_EQ(c->recording.max_size, 1ull << 30);
  EXPECT_TRUE(c->recording.end_session_on_cap);
  EXPECT_EQ(c->terminating.env, (std::vector<std::string>{"LANG", "LC_*", "TZ"}));
  EXPECT_EQ(c->terminating.known_hosts, fs::path("/var/lib/touchgate/known_hosts"));
  ASSERT_EQ(c->targets.size(), 2u);
  EXPECT_EQ(c->targets[0].host_key.size(), 51u);  // string "ssh-ed25519" + string 32 bytes
  EXPECT_TRUE(c->targets[1].trust_on_first_use);
  ASSERT_EQ(c->rules.size(), 1u);
  EXPECT_EQ(c->rules[0].remote_user, "deploy");
  EXPECT_TRUE(c->rules[0].record_input);
}

TEST(ConfigTest, TerminatingModeDefaults) {
  auto c = parse(kMinimal);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_FALSE(c->ca.configured());
  EXPECT_EQ(c->ca.cert_lifetime, std::chrono::seconds(60));
  EXPECT_EQ(c->recording.max_size, 256ull << 20);
  EXPECT_FALSE(c->recording.end_session_on_cap);
  EXPECT_EQ(c->terminating.env, (std::vector<std::string>{"LANG", "LC_*"}));
}

TEST(ConfigTest, TerminatingModeErrors) {
  const std::string m = kMinimal;
  expect_error(m + "[ca]\npkcs11_uri = \"pkcs11:object=ca\"\n", 6, "needs pin_file");
  expect_error(m + "[ca]\npkcs11_uri = \"pkcs11:object=ca?pin-value=1234\"\npin_file = \"p\"\n", 7,
               "a PIN never goes into the configuration");
  expect_error(m + "[ca]\npkcs11_uri = \"token=x\"\n", 7, "must be a PKCS#11 URI");
  expect_error(m + "[ca]\npkcs11_uri = \"pkcs11:token=a;bogus=%zz\"\npin_file = \"p\"\n", 7,
               "ca.pkcs11_uri: ");
  expect_error(m + "[ca]\npkcs11_uri = \"pkcs11:object=ca?module-name=softhsm2\"\n"
                   "pin_file = \"p\"\n",
               7, "module-name is not resolved");
  expect_error(m + "[ca]\npkcs11_uri = \"pkcs11:object=ca\"\npin_file = \"p\"\nkey_file = \"k\"\n", 6,
               "not both");
  expect_error(m + "[ca]\ncert_lifetime = \"1h\"\nkey_file = \"k\"\n", 7,
               "ca.cert_lifetime must be between");
  expect_error(m + "[ca]\n", 6, "[ca] needs pkcs11_uri");
  expect_error(m + "[recording]\non_cap = \"pause\"\n", 7, "recording.on_cap must be");
  expect_error(m + "[recording]\nmax_size = \"10K\"\n", 7, "between 1M and 64G");
  expect_error(m + "[terminating]\nenv = [\"LD PRELOAD\"]\n", 7, "is not a variable name");
  expect_error(m + "[[target]]\nname = \"x\"\naddress = \"10.0.0.1\"\nhost_key = \"nonsense\"\n", 9,
               "target.host_key must be an OpenSSH public key line");
  expect_error(m +
                   "[[target]]\nname = \"x\"\naddress = \"10.0.0.1\"\ntrust_on_first_use = true\n"
                   "host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHpfRx1M3bbTD/f5LQp2FRPsMoImHvWyXUfcFXp3g6L4\"\n",
               6, "choose one");
}

TEST(ConfigTest, FutureSectionsAreNotSupportedYet) {
  expect_error(std::string(kMinimal) + "[[group]]\nname = \"x\"\n", 6,
               "group \"x\" has no members");
  expect_error(std::string(kMinimal) + "[[rule]]\n", 6,
               "[[rule]] is missing the required key \"id\"");
}

TEST(ConfigTest, MissingRequired) {
  expect_error("[trust]\nuser_ca_keys = [\"a\"]\n", 1, "missing required section [server]");
  expect_error("[server]\nlisten = [\"127.0.0.1:1\"]\n", 1, "missing required section [trust]");
  expect_error("[trust]\nuser_ca_keys = [\"a\"]\n[server]\nworkers = 1\n", 3,
               "[server] is missing the required key \"listen\"");
  expect_error("[server]\nlisten = [\"127.0.0.1:1\"]\n[trust]\nclock_skew = 5\n", 3,
               "[trust] is missing the required key \"user_ca_keys\"");
  expect_error("[server]\nlisten = [\"127.0.0.1:1\"]\n[trust]\nuser_ca_keys = []\n", 4,
               "trust.user_ca_keys must not be empty");
  expect_error("", 1, "missing required section [server]");
}

TEST(ConfigTest, TomlSyntaxErrorsHaveLineAndColumn) {
  auto c = parse("[server]\nlisten = [\"127.0.0.1:1\"\n[trust]\n");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, "config_invalid");
  EXPECT_THAT(c.error().message, ::testing::MatchesRegex("t\\.toml:[0-9]+:[0-9]+: .+"));
  expect_error("[server]\nworkers = 1\nworkers = 2\n", 3, "workers");
  expect_error("[server]\nlisten = \"unterminated\n", 2, "");
}

TEST(ConfigTest, GarbageNeverEscapes) {
  const std::string inputs[] = {
      std::string("\xff\xfe\x00\x01", 4),
      "[[[",
      "= 1",
      "[server]\nlisten = [\"\xc3\x28\"]\n",
      std::string(100000, '['),
      "a = { b = { c = { d = 1 } } }\n",
      "x = 1979-05-27T07:32:00Z\n",
  };
  for (const std::string& text : inputs) {
    auto c = parse(text);
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().code, "config_invalid");
    EXPECT_THAT(c.error().message, StartsWith("t.toml:"));
  }
}

// ---- trust CA entries --------------------------------------------------------------------------

TEST(ConfigTest, CaEntryErrors) {
  auto cas = [](std::string_view value) {
    return "[server]\nlisten = [\"127.0.0.1:1\"]\n[trust]\nuser_ca_keys = " + std::string(value) +
           "\n";
  };
  expect_error(cas("[\"a/ca.pub\", \"b/ca.pub\"]"), 4,
               "duplicate CA name \"ca\" (first at line 4)");
  expect_error(cas("[{ name = \"x\", path = \"a\" }, { name = \"x\", path = \"b\" }]"), 4,
               "duplicate CA name \"x\"");
  expect_error(cas("[{ name = \"has space\", path = \"a\" }]"), 4, "invalid CA name \"has space\"");
  expect_error(cas("[{ name = \"x\" }]"), 4, "missing the required key \"path\"");
  expect_error(cas("[\"my ca.pub\"]"), 4, "not a valid CA name");
  expect_error(cas("[5]"), 4, "must be a path string or { name, path } table, not an integer");
  expect_error(cas("[\"\"]"), 4, "must not be empty");

  auto c = parse(cas("[{ name = \"my-ca\", path = \"my ca.pub\" }]"));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->trust.user_ca_keys[0].path, fs::path("/etc/tg/my ca.pub"));
}

// ---- targets -----------------------------------------------------------------------------------

TEST(ConfigTest, TargetAddresses) {
  auto c = parse(with_targets(R"(
[[target]]
name = "v4"
address = "10.0.0.1:2201"
[[target]]
name = "v6"
address = "[2001:db8::1]:2202"
[[target]]
name = "v6-default-port"
address = "[::1]"
[[target]]
name = "dns"
address = "Bastion-1.corp_internal.example.com:22"
[[target]]
name = "short"
address = "db"
)"));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->targets.size(), 5u);
  EXPECT_EQ(c->targets[0].address(), "10.0.0.1:2201");
  EXPECT_EQ(c->targets[1].host, "2001:db8::1");
  EXPECT_EQ(c->targets[1].address(), "[2001:db8::1]:2202");
  EXPECT_EQ(c->targets[2].port, 22);
  EXPECT_EQ(c->targets[2].address(), "[::1]:22");
  EXPECT_EQ(c->targets[3].host, "Bastion-1.corp_internal.example.com");
  EXPECT_EQ(c->targets[4].address(), "db:22");
}

TEST(ConfigTest, TargetErrors) {
  auto target = [](std::string_view name, std::string_view address) {
    return with_targets("[[target]]\nname = " + std::string(name) +
                        "\naddress = " + std::string(address) + "\n");
  };
  expect_error(target("\"a\"", "\"::1\""), 7, "brackets");
  expect_error(target("\"a\"", "\"h:0\""), 7, "1 to 65535");
  expect_error(target("\"a\"", "\"h:\""), 7, "1 to 65535");
  expect_error(target("\"a\"", "\":22\""), 7, "missing host");
  expect_error(target("\"a\"", "\"10.1\""), 7, "DNS name");
  expect_error(target("\"a\"", "\"a..b\""), 7, "DNS name");
  expect_error(target("\"a\"", "\"-a.b\""), 7, "DNS name");
  expect_error(target("\"a\"", "\"a b\""), 7, "DNS name");
  expect_error(target("\"a\"", "\"\""), 7, "missing host");
  expect_error(target("\"a\"", "\"[db]:22\""), 7, "IPv6");
  expect_error(target("\"a\"", "\"[::1]x\""), 7, "expected ':'");
  expect_error(target("\"a\"", "22"), 7, "target.address must be a string");
  expect_error(target("\"a b\"", "\"h\""), 6, "invalid target name \"a b\"");
  expect_error(target("\"\"", "\"h\""), 6, "invalid target name");
  expect_error(target("\"" + std::string(65, 'x') + "\"", "\"h\""), 6, "invalid target name");
  expect_error(with_targets("[[target]]\naddress = \"h\"\n"), 5,
               "[[target]] is missing the required key \"name\"");
  expect_error(with_targets("[[target]]\nname = \"a\"\n"), 5,
               "target \"a\" is missing the required key \"address\"");
  expect_error(with_targets("[[target]]\nname = \"a\"\naddress = \"h\"\ntags = [\"x y\"]\n"), 8,
               "invalid tag");
  expect_error(with_targets("[[target]]\nname = \"a\"\naddress = \"h\"\ntags = [\"x\", \"x\"]\n"),
               8, "duplicate tag \"x\"");
  expect_error(with_targets("[[target]]\nname = \"a\"\naddress = \"h\"\ntags = \"x\"\n"), 8,
               "target.tags must be an array");
  expect_error(with_targets("[target]\nname = \"a\"\naddress = \"h\"\n"), 5, "[[target]]");
  expect_error("target = []\n" + std::string(kMinimal), 1, "[[target]]");
}

TEST(ConfigTest, DuplicateTargetNames) {
  expect_error(with_targets(R"([[target]]
name = "db1"
address = "10.0.0.1"
[[target]]
name = "DB1"
address = "10.0.0.2"
)"),
               9, "duplicate target name \"DB1\" (first at line 5)");
}

// ---- load_config from disk ---------------------------------------------------------------------

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/touchgate-config-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const fs::path& file, std::string_view text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  fs::path dir_;
};

TEST_F(LoadConfigTest, ResolvesPathsAgainstTheFilesDirectory) {
  write(dir_ / "etc" / "touchgate.toml", R"([server]
listen = ["127.0.0.1:2222"]
state_dir = "../var"
[trust]
user_ca_keys = ["ca.pub"]
revoked_keys = "/abs/revoked.krl"
)");
  auto c = load_config(dir_ / "etc" / "touchgate.toml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->source, dir_ / "etc" / "touchgate.toml");
  EXPECT_EQ(c->server.state_dir, dir_ / "var");
  EXPECT_EQ(c->server.host_keys[0], dir_ / "var" / "ssh_host_ed25519_key");
  EXPECT_EQ(c->trust.user_ca_keys[0].path, dir_ / "etc" / "ca.pub");
  EXPECT_EQ(*c->trust.revoked_keys, fs::path("/abs/revoked.krl"));
}

TEST_F(LoadConfigTest, RelativeFileNameIsMadeAbsolute) {
  write(dir_ / "conf" / "tg.toml", kMinimal);
  fs::path old = fs::current_path();
  fs::current_path(dir_);
  auto c = load_config("conf/tg.toml");
  fs::current_path(old);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->source, dir_ / "conf" / "tg.toml");
  EXPECT_TRUE(c->source.is_absolute());
  EXPECT_EQ(c->trust.user_ca_keys[0].path, dir_ / "conf" / "ca.pub");
}

TEST_F(LoadConfigTest, ErrorNamesTheFileAndLine) {
  fs::path file = dir_ / "bad.toml";
  write(file,
        "[server]\nlisten = [\"127.0.0.1:2222\"]\nmax_auth_tries = 0\n[trust]\nuser_ca_keys = "
        "[\"a\"]\n");
  auto c = load_config(file);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, "config_invalid");
  EXPECT_EQ(c.error().message,
            file.string() + ":3:18: server.max_auth_tries must be between 1 and 100, not 0");
}

TEST_F(LoadConfigTest, UnreadableFile) {
  auto c = load_config(dir_ / "missing.toml");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, "config_unreadable");
  EXPECT_THAT(c.error().message, HasSubstr("missing.toml: cannot open: No such file or directory"));

  auto d = load_config(dir_);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, "config_unreadable");
  EXPECT_THAT(d.error().message, HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace touchgate::policy
