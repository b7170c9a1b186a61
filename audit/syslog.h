// SyslogSink: a copy of every audit record as an RFC 5424 message to a local datagram socket
// (/dev/log by default), for a central log collector. The audit log stays the truth: the copy
// never blocks and never fails the log. A message that cannot be sent (no socket, nobody
// listening, a full receive queue) is dropped and counted; the sink reconnects at most once per
// reconnect_interval.
//
// Wiring: Options::on_written = [&sink](std::string_view line) { sink.send(line); }.
//
// One message per record:
//
//   <PRI>1 TS HOST touchgated PID EVENT [touchgate@32473 seq="N" hash="H"] {"seq":N,...}
//
// PRI = facility * 8 + severity: warning (4) for a denial or a problem (a record with
// "outcome":"deny", suspected_clone, recovered, audit_recovered), info (6) for the log's
// bookkeeping (checkpoint, segment_start), notice (5) for every other record. TS is the record's
// ts, EVENT its event (MSGID, at most 32 characters), MSG the record's line (no BOM). Messages
// longer than kMaxMessage are cut at a UTF-8 boundary and end in kTruncatedMarker.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "ssh/error.h"

namespace touchgate::audit {

struct SyslogOptions {
  std::filesystem::path socket = "/dev/log";
  std::string facility = "authpriv";  // auth, authpriv, daemon, local0..local7
  // HOSTNAME field; gethostname() when empty.
  std::string hostname;
  std::chrono::milliseconds reconnect_interval = std::chrono::seconds(1);
};

// Private Enterprise Number of the structured data element "touchgate@32473" (the RFC 5612
// documentation number).
inline constexpr std::string_view kSyslogSdId = "touchgate@32473";
inline constexpr size_t kMaxMessage = 8192;
inline constexpr std::string_view kTruncatedMarker = "...[truncated]";

// syslog_facility is the RFC 5424 facility code of a name, or nullopt for another name.
std::optional<int> syslog_facility(std::string_view name);

// syslog_severity is the RFC 5424 severity of a record with that event and `outcome` ("" when
// it has none): see above.
int syslog_severity(std::string_view event, std::string_view outcome);

// sd_escape escapes '"', '\\' and ']' for an SD-PARAM value (RFC 5424 section 6.3.3).
std::string sd_escape(std::string_view value);

// format_syslog renders one record line as a message (at most kMaxMessage bytes). A line that is
// not a record (it does not parse) goes out as MSG with "-" for TIMESTAMP, MSGID and the
// structured data, at severity notice.
std::string format_syslog(int facility, std::string_view hostname, pid_t pid,
                          std::string_view line);

class SyslogSink {
 public:
  // create fails with "audit_bad_facility" for an unknown facility name. It does not connect: a
  // missing socket only drops messages until it appears.
  static Result<std::unique_ptr<SyslogSink>> create(SyslogOptions options);
  ~SyslogSink();
  SyslogSink(const SyslogSink&) = delete;
  SyslogSink& operator=(const SyslogSink&) = delete;

  // send sends one record line (without '\n'); never blocks. Thread-safe.
  void send(std::string_view line);

  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  SyslogSink(SyslogOptions options, int facility);
  bool connect_socket();  // under mu_
  void disconnect();      // under mu_

  SyslogOptions opts_;
  int facility_;
  pid_t pid_;

  std::mutex mu_;
  int fd_ = -1;
  std::chrono::steady_clock::time_point next_connect_{};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace touchgate::audit
