// The control socket's wire format (docs/architecture.md, "Control socket"): one request line from
// `touchgate`, a status line and for `sessions list` one JSON object per line back. Pure: no I/O.
// Trust boundary: a request comes from a local peer whose credentials were checked, but its bytes
// are still parsed strictly; nothing in a request reaches a log or a reply unescaped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"

namespace touchgate::gateway {

// The longest request accepted, "\n" included.
inline constexpr size_t kMaxControlRequest = 4096;

enum class ControlVerb {
  kPing,              // "ping"
  kReload,            // "reload"
  kSessionsList,      // "sessions list"
  kSessionsKill,      // "sessions kill <connection-id>[/<channel>]"
  kSessionsKillUser,  // "sessions kill --user <principal>"
  kAuditKey,          // "audit key-added|key-revoked|clone-cleared <SHA256:fingerprint>"
};

// What `touchgate keys` changed, for the audit record the gateway writes (kAuditKey).
enum class KeyChange { kAdded, kRevoked, kCloneCleared };

struct ControlRequest {
  ControlVerb verb = ControlVerb::kPing;
  uint64_t connection_id = 0;  // kSessionsKill
  uint64_t channel = 0;        // kSessionsKill: only this channel of the connection (0: all of it)
  std::string principal;       // kSessionsKillUser: 1-256 printable ASCII, no space or comma
  KeyChange change = KeyChange::kAdded;  // kAuditKey
  std::string fingerprint;               // kAuditKey: "SHA256:" + 43 base64 characters
};

// key_change_word is "key-added", "key-revoked" or "clone-cleared".
std::string_view key_change_word(KeyChange change);
// key_change_event is the audit event of a change: "admin_key_added", "admin_key_revoked",
// "admin_clone_cleared".
std::string_view key_change_event(KeyChange change);

// parse_request reads one whole request: UTF-8 words separated by single spaces, ending in exactly
// one "\n" that is its last byte. Refused (code control_bad_request, message says why): no final
// newline, an empty line, a control character or byte >= 0x80 (every valid request is ASCII),
// leading/trailing/double spaces, unknown verbs, missing or extra words, a connection id or channel
// number that is not 1-20 digits or exceeds 2^64-1, a channel number 0, a principal outside 1-256
// printable ASCII, no space or comma. Longer than kMaxControlRequest: control_request_too_long.
Result<ControlRequest> parse_request(std::string_view bytes);

// encode_request is the request's line ("sessions kill 12\n", "sessions kill 12/3\n");
// parse_request(encode_request(r)) gives r back for every r whose principal is valid.
std::string encode_request(const ControlRequest& request);

// ---- replies -----------------------------------------------------------------------------------

// One channel of a session, as `sessions list` reports it.
struct ChannelInfo {
  uint64_t channel = 0;   // channel number within its connection
  std::string target;     // [[target]] name
  std::string address;    // host:port connected to (the configured one until connected)
  int64_t since = 0;      // unix seconds the channel was opened
  uint64_t bytes_up = 0;  // client → target
  uint64_t bytes_down = 0;
  std::string rule;  // the rule that allowed it ("" while none has: its touch is awaited)
};

// One authenticated connection.
struct SessionInfo {
  uint64_t id = 0;     // connection id (as in the daemon's logs: conn=ID)
  std::string user;    // the login (certificate principal)
  std::string source;  // client "ip:port"
  int64_t since = 0;   // unix seconds the connection was accepted
  std::vector<ChannelInfo> channels;
  std::string factor;  // strongest factor of the last verified touch, "none" without one
  std::string key_fp;  // SHA256 fingerprint of that touch's key, "" without one
};

// format_ok is "ok\n", or "ok DETAIL\n" (DETAIL: one line, e.g. "killed 2").
std::string format_ok(std::string_view detail = {});
// format_error is "error CODE MESSAGE\n"; a code that is not [a-z0-9_]{1,64} becomes
// "internal_error", and control characters in the message become '?'.
std::string format_error(const Error& error);
// format_finding_line is one line of a reload reply about the new file: "warning TEXT\n"
// (`severity`), TEXT being "FILE:LINE: [RULE] MESSAGE (CODE)"; control characters become '?'.
// (The reply counts lint notes in one line, "notes N".)
std::string format_finding_line(std::string_view severity, std::string_view text);
// format_session renders one session as a JSON object on one line ("\n"-terminated). The field
// names are part of touchgate's interface: id, user, source, since, channels (channel, target,
// address, rule, since, bytes_up, bytes_down), bytes_up, bytes_down (sums), factor, key_fp. Times
// are RFC 3339 UTC ("2026-03-01T09:12:44Z"); text is escaped so the line is valid JSON in any case.
std::string format_session(const SessionInfo& session);

// parse_status reads a reply's first line (without its "\n"): "ok" gives "", "ok DETAIL" gives
// DETAIL; "error CODE MESSAGE" gives Error{CODE, MESSAGE}; anything else is
// control_bad_reply.
Result<std::string> parse_status(std::string_view line);

// format_rfc3339 renders unix seconds as "2026-03-01T09:12:44Z".
std::string format_rfc3339(int64_t unix_seconds);

}  // namespace touchgate::gateway
