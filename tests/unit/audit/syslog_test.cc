#include "audit/syslog.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "audit/line.h"
#include "audit/log.h"
#include "audit/verify.h"
#include "audit_test_util.h"
#include "ssh/text.h"

namespace touchgate::audit {
namespace {

using namespace touchgate::audit::testing;

// Receiver is a syslog daemon's end: a unix datagram socket bound at path.
class Receiver {
 public:
  explicit Receiver(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.string().size());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
      std::abort();
  }
  ~Receiver() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // recv returns the next message, or "" after timeout.
  std::string recv(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    std::string buf(65536, '\0');
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// settle waits until the sink has handled n lines (on_written runs after the durable callbacks).
void settle(const SyslogSink& sink, uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (sink.sent() + sink.dropped() < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

ParsedLine parsed(const std::string& line) {
  ParsedLine p;
  EXPECT_EQ(parse_line(line, &p), nullptr) << line;
  return p;
}

// expected is the message for a line as the log wrote it.
std::string expected(int pri, const std::string& line) {
  const auto p = parsed(line);
  return fmt::format(
      "<{}>1 {} gw1.example touchgated {} {} [touchgate@32473 seq=\"{}\" hash=\"{}\"] {}", pri,
      p.ts, ::getpid(), p.event, p.seq, p.hash, line);
}

std::unique_ptr<SyslogSink> make_sink(
    const std::filesystem::path& socket, std::string facility = "local3",
    std::chrono::milliseconds reconnect = std::chrono::seconds(1)) {
  SyslogOptions so;
  so.socket = socket;
  so.facility = std::move(facility);
  so.hostname = "gw1.example";
  so.reconnect_interval = reconnect;
  auto sink = SyslogSink::create(so);
  EXPECT_TRUE(sink) << sink.error().message;
  return std::move(*sink);
}

TEST(SyslogTest, FacilitiesAndSeverities) {
  EXPECT_EQ(syslog_facility("auth"), 4);
  EXPECT_EQ(syslog_facility("authpriv"), 10);
  EXPECT_EQ(syslog_facility("daemon"), 3);
  EXPECT_EQ(syslog_facility("local0"), 16);
  EXPECT_EQ(syslog_facility("local7"), 23);
  EXPECT_EQ(syslog_facility("local8"), std::nullopt);
  EXPECT_EQ(syslog_facility("kern"), std::nullopt);
  EXPECT_EQ(syslog_facility(""), std::nullopt);

  EXPECT_EQ(syslog_severity("channel_open", ""), 5);
  EXPECT_EQ(syslog_severity("policy_decision", "allow"), 5);
  EXPECT_EQ(syslog_severity("policy_decision", "deny"), 4);
  EXPECT_EQ(syslog_severity("suspected_clone", "deny"), 4);
  EXPECT_EQ(syslog_severity("recovered", ""), 4);
  EXPECT_EQ(syslog_severity("audit_recovered", ""), 4);
  EXPECT_EQ(syslog_severity("checkpoint", ""), 6);
  EXPECT_EQ(syslog_severity("segment_start", ""), 6);

  SyslogOptions so;
  so.facility = "kern";
  auto bad = SyslogSink::create(so);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "audit_bad_facility");
}

TEST(SyslogTest, EscapesStructuredDataAndHeaderFields) {
  EXPECT_EQ(sd_escape("plain"), "plain");
  EXPECT_EQ(sd_escape(R"(a"b\c]d[e)"), R"(a\"b\\c\]d[e)");
  // A line that is not a record goes out whole, with nil header fields; a hostname with spaces
  // or control characters is made PRINTUSASCII.
  EXPECT_EQ(format_syslog(4, "gw 1\x01", 42, "not a record ]\"\\"),
            "<37>1 - gw_1_ touchgated 42 - - not a record ]\"\\");
  EXPECT_EQ(format_syslog(4, "", 42, "x"), "<37>1 - - touchgated 42 - - x");
  // MSGID is at most 32 characters.
  const std::string event(40, 'e');
  const auto line =
      format_line(7, std::chrono::system_clock::now(), kGenesisHash, Record(event)).text;
  const auto msg = format_syslog(16, "h", 1, line.substr(0, line.size() - 1));
  EXPECT_NE(msg.find(" touchgated 1 " + std::string(32, 'e') + " [touchgate@32473 seq=\"7\" "),
            std::string::npos)
      << msg;
}

TEST(SyslogTest, EveryDurableLineGoesOutInRfc5424Framing) {
  TempDir t;
  Receiver rx(t.path() / "log.sock");
  auto sink = make_sink(t.path() / "log.sock");
  auto o = options_for(t);
  o.max_segment_bytes = 600;  // rotates: checkpoint + segment_start go out too
  std::vector<std::string> seen;
  o.on_written = [&](std::string_view line) {
    seen.emplace_back(line);
    sink->send(line);
  };
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log) << log.error().message;
    ASSERT_TRUE(append_wait(**log, Record("connection_accepted").str("client", "192.0.2.1")));
    ASSERT_TRUE(append_wait(**log, Record("auth_refused")
                                       .str("user", "mallory")
                                       .str("outcome", "deny")
                                       .str("message", "no such user ]\"\\")));
    ASSERT_TRUE(append_wait(**log, Record("policy_decision").str("outcome", "allow")));
    ASSERT_TRUE(append_wait(**log, Record("suspected_clone").str("outcome", "deny")));
    ASSERT_TRUE((*log)->close());
  }
  // on_written saw exactly the lines of the files, in order.
  std::vector<std::string> file_lines;
  for (const auto& seg : list_segments(o.dir))
    for (auto& l : read_lines(o.dir / seg)) file_lines.push_back(std::move(l));
  ASSERT_EQ(seen, file_lines);
  ASSERT_GT(list_segments(o.dir).size(), 1u);

  // local3 = 19: notice 157, warning 156, info 158.
  bool saw_segment_start = false;
  for (const auto& line : file_lines) {
    const auto p = parsed(line);
    const Field* outcome = p.find("outcome");
    int pri = 157;
    if (p.event == "checkpoint" || p.event == "segment_start") pri = 158;
    if (p.event == "suspected_clone" || (outcome && outcome->raw == "deny")) pri = 156;
    saw_segment_start |= p.event == "segment_start";
    EXPECT_EQ(rx.recv(), expected(pri, line));
  }
  EXPECT_TRUE(saw_segment_start);
  EXPECT_EQ(rx.recv(std::chrono::milliseconds(50)), "");
  EXPECT_EQ(sink->sent(), file_lines.size());
  EXPECT_EQ(sink->dropped(), 0u);
}

TEST(SyslogTest, LongMessagesAreCutAtACharacterBoundary) {
  TempDir t;
  Receiver rx(t.path() / "log.sock");
  // 'é' is two bytes: wherever the cut falls, it must not split one.
  for (const size_t pad : {0, 1}) {
    auto sink = make_sink(t.path() / "log.sock", "auth");
    std::string value(pad, 'a');
    for (int i = 0; i < 5000; ++i) value += "\xc3\xa9";
    const auto line = format_line(3, std::chrono::system_clock::now(), kGenesisHash,
                                  Record("mfa_verified").str("proof", value))
                          .text;
    const std::string_view text(line.data(), line.size() - 1);
    sink->send(text);
    const auto msg = rx.recv();
    ASSERT_LE(msg.size(), kMaxMessage);
    EXPECT_GE(msg.size(), kMaxMessage - 1);
    ASSERT_TRUE(msg.ends_with(kTruncatedMarker));
    EXPECT_TRUE(msg.starts_with("<37>1 "));
    const auto body = msg.substr(0, msg.size() - kTruncatedMarker.size());
    const size_t json = body.find(" {\"seq\":3,");
    ASSERT_NE(json, std::string::npos);
    const auto kept = body.substr(json + 1);
    EXPECT_TRUE(text.starts_with(kept));
    for (size_t i = 0; i < kept.size();) {
      const size_t n = ssh::utf8_sequence_length(kept, i);
      ASSERT_GT(n, 0u) << "at " << i;
      i += n;
    }
  }
  // A message of exactly the limit is not cut; one byte more is.
  const auto now = std::chrono::system_clock::now();
  const auto line_of = [&](size_t n) {
    const auto l = format_line(3, now, kGenesisHash, Record("e").str("v", std::string(n, 'a')));
    return l.text.substr(0, l.text.size() - 1);
  };
  const size_t fixed = format_syslog(4, "h", 1, line_of(0)).size();
  const auto exact = format_syslog(4, "h", 1, line_of(kMaxMessage - fixed));
  EXPECT_EQ(exact.size(), kMaxMessage);
  EXPECT_FALSE(exact.ends_with(kTruncatedMarker));
  const auto over = format_syslog(4, "h", 1, line_of(kMaxMessage - fixed + 1));
  EXPECT_EQ(over.size(), kMaxMessage);
  EXPECT_TRUE(over.ends_with(kTruncatedMarker));
}

TEST(SyslogTest, MissingSocketDropsWithoutFailingTheLogAndReconnects) {
  TempDir t;
  const auto sock = t.path() / "log.sock";
  auto sink = make_sink(sock, "authpriv", std::chrono::milliseconds(100));
  auto o = options_for(t);
  o.on_written = [&](std::string_view line) { sink->send(line); };
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 3; ++i) {
    auto seq = append_wait(**log, Record("e").u64("i", static_cast<uint64_t>(i)));
    ASSERT_TRUE(seq) << seq.error().message;
    EXPECT_EQ(*seq, static_cast<uint64_t>(i + 1));
  }
  EXPECT_TRUE((*log)->healthy());
  settle(*sink, 3);
  EXPECT_EQ(sink->dropped(), 3u);
  EXPECT_EQ(sink->sent(), 0u);
  {
    // The socket appears: within a reconnect interval the copies flow again.
    Receiver rx(sock);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    auto seq = append_wait(**log, Record("after").str("outcome", "deny"));
    ASSERT_TRUE(seq);
    const auto msg = rx.recv();
    settle(*sink, 4);
    EXPECT_TRUE(msg.starts_with("<84>1 ")) << msg;  // authpriv (10) * 8 + warning (4)
    EXPECT_NE(msg.find(" after [touchgate@32473 seq=\"4\" "), std::string::npos) << msg;
    EXPECT_EQ(sink->sent(), 1u);
  }
  // The reader goes away (ECONNREFUSED, then no socket): drops again, the log goes on.
  ASSERT_TRUE(append_wait(**log, Record("gone")));
  settle(*sink, 5);
  EXPECT_EQ(sink->dropped(), 4u);
  {
    Receiver rx(sock);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_TRUE(append_wait(**log, Record("back")));
    EXPECT_NE(rx.recv().find(" back [touchgate@32473 seq=\"6\" "), std::string::npos);
  }
  ASSERT_TRUE((*log)->close());
  EXPECT_EQ(sink->sent(), 2u);
  EXPECT_EQ(sink->dropped(), 5u);  // the closing checkpoint found no reader
  EXPECT_EQ(read_lines(o.dir / "audit-00000000000000000001.jsonl").size(), 7u);
}

TEST(SyslogTest, AFullReceiveQueueDropsButKeepsTheConnection) {
  TempDir t;
  Receiver rx(t.path() / "log.sock");
  auto sink = make_sink(t.path() / "log.sock");
  const auto line =
      format_line(1, std::chrono::system_clock::now(), kGenesisHash, Record("e")).text;
  const std::string_view text(line.data(), line.size() - 1);
  // Nobody reads: the receive queue fills (net.unix.max_dgram_qlen and the socket's buffer).
  constexpr int kSends = 2000;
  for (int i = 0; i < kSends; ++i) sink->send(text);
  EXPECT_EQ(sink->sent() + sink->dropped(), static_cast<uint64_t>(kSends));
  EXPECT_GT(sink->dropped(), 0u);
  // Drain; the connection is still good, no reconnect delay.
  while (!rx.recv(std::chrono::milliseconds(10)).empty()) {
  }
  const auto sent = sink->sent();
  sink->send(text);
  EXPECT_EQ(sink->sent(), sent + 1);
  EXPECT_FALSE(rx.recv().empty());
}

}  // namespace
}  // namespace touchgate::audit
