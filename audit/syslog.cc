#include "audit/syslog.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "audit/line.h"

namespace touchgate::audit {
namespace {

constexpr int kWarning = 4, kNotice = 5, kInfo = 6;
constexpr size_t kMaxHostname = 255, kMaxMsgId = 32;

// append_token renders a header field as RFC 5424 wants it: 1*N PRINTUSASCII, "-" when empty.
void append_token(std::string& out, std::string_view s, size_t max) {
  if (s.empty()) {
    out += '-';
    return;
  }
  for (const char c : s.substr(0, max)) out += c > ' ' && c < 0x7f ? c : '_';
}

std::string local_hostname() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return {};
  return std::string(buf.data());
}

}  // namespace

std::optional<int> syslog_facility(std::string_view name) {
  if (name == "auth") return 4;
  if (name == "authpriv") return 10;
  if (name == "daemon") return 3;
  if (name.size() == 6 && name.starts_with("local") && name[5] >= '0' && name[5] <= '7')
    return 16 + (name[5] - '0');
  return std::nullopt;
}

int syslog_severity(std::string_view event, std::string_view outcome) {
  if (outcome == "deny" || event == "suspected_clone" || event == "recovered" ||
      event == "audit_recovered")
    return kWarning;
  if (event == "checkpoint" || event == "segment_start") return kInfo;
  return kNotice;
}

std::string sd_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

std::string format_syslog(int facility, std::string_view hostname, pid_t pid,
                          std::string_view line) {
  // The writer's own lines: parse_line only reuses the capacity of a ParsedLine it had before.
  thread_local ParsedLine p;
  const bool record = parse_line(line, &p) == nullptr;
  std::string_view outcome;
  if (record) {
    if (const Field* f = p.find("outcome"); f != nullptr && f->kind == ValueKind::kString)
      outcome = f->raw;
  }
  const int severity = record ? syslog_severity(p.event, outcome) : kNotice;

  std::string msg;
  msg.reserve(std::min(kMaxMessage, line.size() + 256));
  fmt::format_to(std::back_inserter(msg), "<{}>1 ", facility * 8 + severity);
  append_token(msg, record ? p.ts : std::string_view(), 64);
  msg += ' ';
  append_token(msg, hostname, kMaxHostname);
  fmt::format_to(std::back_inserter(msg), " touchgated {} ", pid);
  append_token(msg, record ? p.event : std::string_view(), kMaxMsgId);
  if (record) {
    fmt::format_to(std::back_inserter(msg), " [{} seq=\"{}\" hash=\"{}\"] ", kSyslogSdId, p.seq,
                   sd_escape(p.hash));
  } else {
    msg += " - ";
  }
  if (msg.size() + line.size() <= kMaxMessage) {
    msg += line;
    return msg;
  }
  // Cut so that the message with the marker is kMaxMessage bytes at most, never inside a UTF-8
  // sequence (a byte 10xxxxxx continues the character before it).
  size_t keep = kMaxMessage - msg.size() - kTruncatedMarker.size();
  while (keep > 0 && (static_cast<unsigned char>(line[keep]) & 0xc0) == 0x80) --keep;
  msg += line.substr(0, keep);
  msg += kTruncatedMarker;
  return msg;
}

Result<std::unique_ptr<SyslogSink>> SyslogSink::create(SyslogOptions options) {
  const auto facility = syslog_facility(options.facility);
  if (!facility)
    return fail(
        "audit_bad_facility",
        fmt::format("unknown syslog facility \"{}\" (auth, authpriv, daemon, local0..local7)",
                    options.facility));
  std::unique_ptr<SyslogSink> sink(new SyslogSink(std::move(options), *facility));
  std::lock_guard lk(sink->mu_);
  (void)sink->connect_socket();  // a missing socket is not an error: messages wait for it
  return sink;
}

SyslogSink::SyslogSink(SyslogOptions options, int facility)
    : opts_(std::move(options)), facility_(facility), pid_(::getpid()) {
  if (opts_.hostname.empty()) opts_.hostname = local_hostname();
}

SyslogSink::~SyslogSink() {
  std::lock_guard lk(mu_);
  disconnect();
}

bool SyslogSink::connect_socket() {
  next_connect_ = std::chrono::steady_clock::now() + opts_.reconnect_interval;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = opts_.socket.string();
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    disconnect();
    return false;
  }
  return true;
}

void SyslogSink::disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void SyslogSink::send(std::string_view line) {
  const std::string msg = format_syslog(facility_, opts_.hostname, pid_, line);
  std::lock_guard lk(mu_);
  if (fd_ < 0 && (std::chrono::steady_clock::now() < next_connect_ || !connect_socket())) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ssize_t n;
  do {
    n = ::send(fd_, msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    sent_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  // A full receive queue (EAGAIN) or a message it refuses costs this message only; anything else
  // (the reader went away: ECONNREFUSED, ENOTCONN, ...) means a new connection, later.
  if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EMSGSIZE)
    disconnect();
}

}  // namespace touchgate::audit
