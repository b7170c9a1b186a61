#include "gateway/control_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace touchgate::gateway {
namespace {

using ::testing::HasSubstr;

// refused parses text and checks it is refused with `code` and a message mentioning `what`.
void refused(std::string_view text, std::string_view what,
             std::string_view code = "control_bad_request") {
  auto r = parse_request(text);
  ASSERT_FALSE(r.has_value()) << "accepted: " << text;
  EXPECT_EQ(r.error().code, code) << text;
  EXPECT_THAT(r.error().message, HasSubstr(std::string(what))) << text;
}

TEST(ControlRequestTest, EveryVerb) {
  auto ping = parse_request("ping\n");
  ASSERT_TRUE(ping.has_value()) << ping.error().message;
  EXPECT_EQ(ping->verb, ControlVerb::kPing);

  auto reload = parse_request("reload\n");
  ASSERT_TRUE(reload.has_value());
  EXPECT_EQ(reload->verb, ControlVerb::kReload);

  auto list = parse_request("sessions list\n");
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(list->verb, ControlVerb::kSessionsList);

  auto kill = parse_request("sessions kill 42\n");
  ASSERT_TRUE(kill.has_value());
  EXPECT_EQ(kill->verb, ControlVerb::kSessionsKill);
  EXPECT_EQ(kill->connection_id, 42u);
  EXPECT_EQ(kill->channel, 0u);

  auto channel = parse_request("sessions kill 42/3\n");
  ASSERT_TRUE(channel.has_value()) << channel.error().message;
  EXPECT_EQ(channel->verb, ControlVerb::kSessionsKill);
  EXPECT_EQ(channel->connection_id, 42u);
  EXPECT_EQ(channel->channel, 3u);

  auto user = parse_request("sessions kill --user alice.b@corp-1_x\n");
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(user->verb, ControlVerb::kSessionsKillUser);
  EXPECT_EQ(user->principal, "alice.b@corp-1_x");
}

TEST(ControlRequestTest, ConnectionIdLimits) {
  auto max = parse_request("sessions kill 18446744073709551615\n");
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(max->connection_id, UINT64_MAX);
  auto zeros = parse_request("sessions kill 00000000000000000001\n");  // 20 digits
  ASSERT_TRUE(zeros.has_value());
  EXPECT_EQ(zeros->connection_id, 1u);

  refused("sessions kill 18446744073709551616\n", "below 2^64");
  refused("sessions kill 99999999999999999999\n", "below 2^64");
  refused("sessions kill 000000000000000000001\n", "1-20 digits");  // 21 digits
  refused("sessions kill -1\n", "the connection id \"-1\"");
  refused("sessions kill +1\n", "the connection id \"+1\"");
  refused("sessions kill 0x10\n", "the connection id \"0x10\"");
  refused("sessions kill 1e3\n", "the connection id \"1e3\"");
}

TEST(ControlRequestTest, ChannelLimits) {
  auto max = parse_request("sessions kill 1/18446744073709551615\n");
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(max->channel, UINT64_MAX);
  refused("sessions kill 1/0\n", "the channel \"0\" is not a number of 1-20 digits from 1");
  refused("sessions kill 1/\n", "the channel \"\"");
  refused("sessions kill 1/2/3\n", "the channel \"2/3\"");
  refused("sessions kill 1/18446744073709551616\n", "the channel \"18446744073709551616\"");
  refused("sessions kill /2\n", "the connection id \"\"");
  refused("sessions kill x/2\n", "the connection id \"x\"");
}

TEST(ControlRequestTest, Framing) {
  refused("", "one line ending in a newline");
  refused("ping", "one line ending in a newline");
  refused("\n", "the request is empty");
  refused("ping\n\n", "a second line follows");
  refused("ping\nreload\n", "a second line follows");
  refused("ping\r\n", "control character");
  refused(std::string("pi\0ng\n", 6), "control character");
  refused("ping\x7f\n", "control character");
  refused("sessions\tlist\n", "control character");
  refused("sessions kill --user \xc3\xa9lise\n", "outside ASCII");
  refused(" ping\n", "exactly one space");
  refused("ping \n", "exactly one space");
  refused("sessions  list\n", "exactly one space");
  refused(std::string(kMaxControlRequest, 'a') + "\n", "longer than 4096 bytes",
          "control_request_too_long");
}

TEST(ControlRequestTest, Grammar) {
  refused("PING\n", "unknown request \"PING\"");
  refused("shutdown now\n", "unknown request \"shutdown\"");
  refused("ping pong\n", "unexpected \"pong\" after \"ping\"");
  refused("reload now\n", "unexpected \"now\" after \"reload\"");
  refused("sessions\n", "needs \"list\" or \"kill\"");
  refused("sessions show\n", "unknown request \"sessions show\"");
  refused("sessions list --json\n", "unexpected \"--json\" after \"sessions list\"");
  refused("sessions kill\n", "needs a connection id, ID/CHANNEL or --user");
  refused("sessions kill 1 2\n", "unexpected \"2\" after \"sessions kill 1\"");
  refused("sessions kill --user\n", "needs a principal");
  refused("sessions kill --user a b\n", "unexpected \"b\" after \"sessions kill --user a\"");
  refused("sessions kill --user a b c d e f\n", "unexpected \"b\"");
  refused("sessions kill --user a,b\n", "the principal \"a,b\"");
  refused("sessions kill --user " + std::string(257, 'a') + "\n", "1-256 printable characters");
  // Every login a rule may name can be named here too (j.doe+ext, 256 characters).
  EXPECT_TRUE(parse_request("sessions kill --user j.doe+ext\n").has_value());
  EXPECT_TRUE(parse_request("sessions kill --user " + std::string(256, 'a') + "\n").has_value());
  refused("sessions kill --user=alice\n", "the connection id \"--user=alice\"");
  // A long word is shown shortened.
  auto r = parse_request(std::string(100, 'x') + "\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("\"" + std::string(32, 'x') + "...\""));
}

TEST(ControlRequestTest, EncodeRoundTrips) {
  for (const char* text : {"ping\n", "reload\n", "sessions list\n", "sessions kill 7\n",
                           "sessions kill 7/2\n", "sessions kill --user bob\n"}) {
    auto r = parse_request(text);
    ASSERT_TRUE(r.has_value()) << text;
    EXPECT_EQ(encode_request(*r), text);
  }
}

TEST(ControlReplyTest, StatusLines) {
  EXPECT_EQ(format_ok(), "ok\n");
  EXPECT_EQ(format_ok("killed 2"), "ok killed 2\n");
  EXPECT_EQ(format_error(Error{"no_such_session", "no session 9"}),
            "error no_such_session no session 9\n");
  // A message never breaks the line; a malformed code is not passed on.
  EXPECT_EQ(format_error(Error{"x", "a\nb\rc"}), "error x a?b?c\n");
  EXPECT_EQ(format_error(Error{"Bad Code", "m"}), "error internal_error m\n");

  auto ok = parse_status("ok");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, "");
  auto killed = parse_status("ok killed 3");
  ASSERT_TRUE(killed.has_value());
  EXPECT_EQ(*killed, "killed 3");
  auto err = parse_status("error config_invalid /etc/tg.toml:3:1: bad things");
  ASSERT_FALSE(err.has_value());
  EXPECT_EQ(err.error().code, "config_invalid");
  EXPECT_EQ(err.error().message, "/etc/tg.toml:3:1: bad things");
  for (const char* bad : {"", "okay", "error", "error  x", "error X y", "ERROR x y", "hello"}) {
    auto b = parse_status(bad);
    ASSERT_FALSE(b.has_value()) << bad;
    EXPECT_EQ(b.error().code, "control_bad_reply") << bad;
  }
}

TEST(ControlReplyTest, SessionJson) {
  SessionInfo s;
  s.id = 12;
  s.user = "alice";
  s.source = "127.0.0.1:50412";
  s.since = 1772356364;  // 2026-03-01T09:12:44Z
  s.factor = "touch+pin";
  s.key_fp = "SHA256:abc";
  s.channels.push_back({1, "db1", "10.0.0.5:22", 1772356370, 100, 2000, ""});
  s.channels.push_back({3, "web", "10.0.0.6:22", 1772356380, 5, 7, "staging"});
  EXPECT_EQ(format_session(s),
            "{\"id\":12,\"user\":\"alice\",\"source\":\"127.0.0.1:50412\","
            "\"since\":\"2026-03-01T09:12:44Z\",\"channels\":["
            "{\"channel\":1,\"target\":\"db1\",\"address\":\"10.0.0.5:22\",\"rule\":\"\","
            "\"since\":\"2026-03-01T09:12:50Z\",\"bytes_up\":100,\"bytes_down\":2000},"
            "{\"channel\":3,\"target\":\"web\",\"address\":\"10.0.0.6:22\","
            "\"rule\":\"staging\",\"since\":\"2026-03-01T09:13:00Z\",\"bytes_up\":5,"
            "\"bytes_down\":7}],"
            "\"bytes_up\":105,\"bytes_down\":2007,\"factor\":\"touch+pin\","
            "\"key_fp\":\"SHA256:abc\"}\n");
}

TEST(ControlReplyTest, FindingLines) {
  EXPECT_EQ(format_finding_line("warning", "/etc/tg.toml:30: [r1] never decides (rule_shadowed)"),
            "warning /etc/tg.toml:30: [r1] never decides (rule_shadowed)\n");
  // Text from the file never breaks the reply's lines.
  EXPECT_EQ(format_finding_line("note", "a\nb\x7f"), "note a?b?\n");
}

TEST(ControlReplyTest, SessionJsonEscapesText) {
  SessionInfo s;
  s.user = std::string("a\"b\\c\nd\x01") + "\xc3\xa9" + "\xff" + "\xed\xa0\x80";
  s.factor = "none";
  const std::string line = format_session(s);
  // Bytes that are not UTF-8 become U+FFFD (its UTF-8 bytes), one per byte.
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_THAT(line, HasSubstr("\"user\":\"a\\\"b\\\\c\\u000ad\\u0001\xc3\xa9" + fffd + fffd + fffd +
                              fffd + "\""));
  EXPECT_THAT(line, HasSubstr("\"channels\":[]"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(ControlReplyTest, Rfc3339) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(1772356364), "2026-03-01T09:12:44Z");
}


TEST(ControlRequestTest, AuditKeyChange) {
  const std::string fp = "SHA256:o57P+X2zo7zI5fJgR/KJ12HfbAXnh4fjYnNjJI83HSE";
  for (auto [word, change] : {std::pair{"key-added", KeyChange::kAdded},
                              std::pair{"key-revoked", KeyChange::kRevoked},
                              std::pair{"clone-cleared", KeyChange::kCloneCleared}}) {
    const std::string line = "audit " + std::string(word) + " " + fp + "\n";
    auto r = parse_request(line);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->verb, ControlVerb::kAuditKey);
    EXPECT_EQ(r->change, change);
    EXPECT_EQ(r->fingerprint, fp);
    EXPECT_EQ(encode_request(*r), line);
  }
  refused("audit\n", "needs key-added, key-revoked or clone-cleared");
  refused("audit key-added\n", "needs key-added");
  refused("audit key-deleted " + fp + "\n", "unknown request \"audit key-deleted\"");
  refused("audit key-added SHA256:short\n", "is not SHA256: followed by 43 base64");
  refused("audit key-added " + fp.substr(7) + "\n", "is not SHA256:");
  refused("audit key-added " + fp.substr(0, fp.size() - 1) + "=\n", "is not SHA256:");
  refused("audit key-added " + fp + " extra\n", "unexpected \"extra\"");
}

}  // namespace
}  // namespace touchgate::gateway
