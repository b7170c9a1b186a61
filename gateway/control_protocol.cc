// Trust boundary: request bytes from a local peer of the control socket; replies from the daemon
// read by touchgate.
#include "gateway/control_protocol.h"

#include "ssh/text.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace touchgate::gateway {
namespace {

constexpr const char* kBad = "control_bad_request";
constexpr size_t kMaxIdDigits = 20;
constexpr size_t kMaxPrincipal = 256;
constexpr size_t kMaxCode = 64;

// The principals a rule may name (touchgate-policy(5)): printable ASCII, no space or comma.
bool is_principal_char(char c) { return c > ' ' && c <= '~' && c != ','; }

bool valid_principal(std::string_view s) {
  return !s.empty() && s.size() <= kMaxPrincipal &&
         std::all_of(s.begin(), s.end(), is_principal_char);
}

bool valid_code(std::string_view s) {
  return !s.empty() && s.size() <= kMaxCode && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// parse_id accepts 1-20 decimal digits whose value fits 64 bits.
bool parse_id(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > kMaxIdDigits) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// valid_fingerprint: "SHA256:" and 43 characters of unpadded base64 (OpenSSH's form).
bool valid_fingerprint(std::string_view s) {
  constexpr std::string_view kPrefix = "SHA256:";
  if (s.size() != kPrefix.size() + 43 || s.substr(0, kPrefix.size()) != kPrefix) return false;
  return std::all_of(s.begin() + kPrefix.size(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
  });
}

// shown is a word of a refused request as a message quotes it: at most 32 characters (printable
// ASCII: parse_request checks that before splitting).
std::string shown(std::string_view word) {
  std::string out;
  out.reserve(40);
  out.push_back('"');
  out.append(word.substr(0, 32));
  if (word.size() > 32) out.append("...");
  out.push_back('"');
  return out;
}


void append_json_string(std::string* out, std::string_view s) { ssh::append_json_string(*out, s); }

void append_field(std::string* out, std::string_view name) {
  if (out->back() != '{') out->push_back(',');
  append_json_string(out, name);
  out->push_back(':');
}

void append_string_field(std::string* out, std::string_view name, std::string_view value) {
  append_field(out, name);
  append_json_string(out, value);
}

void append_number_field(std::string* out, std::string_view name, uint64_t value) {
  append_field(out, name);
  *out += std::to_string(value);
}

}  // namespace

Result<ControlRequest> parse_request(std::string_view bytes) {
  if (bytes.size() > kMaxControlRequest) {
    return fail("control_request_too_long",
                "the request is longer than " + std::to_string(kMaxControlRequest) + " bytes");
  }
  if (bytes.empty() || bytes.back() != '\n') {
    return fail(kBad, "the request must be one line ending in a newline");
  }
  std::string_view line = bytes.substr(0, bytes.size() - 1);
  for (char ch : line) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') return fail(kBad, "one request per connection: a second line follows");
    if (c < 0x20 || c == 0x7f) return fail(kBad, "the request contains a control character");
    if (c >= 0x80) return fail(kBad, "the request contains a character outside ASCII");
  }
  if (line.empty()) return fail(kBad, "the request is empty");

  // Every request has at most four words; a fifth is reported as unexpected.
  std::vector<std::string_view> words;
  size_t start = 0;
  for (;;) {
    const size_t space = line.find(' ', start);
    const size_t end = space == std::string_view::npos ? line.size() : space;
    if (end == start) return fail(kBad, "words are separated by exactly one space");
    words.push_back(line.substr(start, end - start));
    if (space == std::string_view::npos || words.size() == 5) break;
    start = space + 1;
  }

  // extra refuses words[n] and what follows it.
  const auto extra = [&](size_t n) {
    std::string before;
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) before.push_back(' ');
      before.append(words[i]);
    }
    std::string message = "unexpected ";
    message.append(shown(words[n])).append(" after \"").append(before).push_back('"');
    return fail(kBad, message);
  };
  ControlRequest r;
  if (words[0] == "ping" || words[0] == "reload") {
    if (words.size() > 1) return extra(1);
    r.verb = words[0] == "ping" ? ControlVerb::kPing : ControlVerb::kReload;
    return r;
  }
  if (words[0] == "audit") {
    if (words.size() < 3) {
      return fail(kBad, "\"audit\" needs key-added, key-revoked or clone-cleared and a fingerprint");
    }
    if (words.size() > 3) return extra(3);
    if (words[1] == "key-added") {
      r.change = KeyChange::kAdded;
    } else if (words[1] == "key-revoked") {
      r.change = KeyChange::kRevoked;
    } else if (words[1] == "clone-cleared") {
      r.change = KeyChange::kCloneCleared;
    } else {
      std::string what = "audit ";
      what.append(words[1]);
      return fail(kBad, "unknown request " + shown(what) +
                            " (expected audit key-added, key-revoked, clone-cleared)");
    }
    if (!valid_fingerprint(words[2])) {
      return fail(kBad, "the fingerprint " + shown(words[2]) +
                            " is not SHA256: followed by 43 base64 characters");
    }
    r.verb = ControlVerb::kAuditKey;
    r.fingerprint = std::string(words[2]);
    return r;
  }
  if (words[0] != "sessions") {
    return fail(kBad, "unknown request " + shown(words[0]) +
                          " (expected ping, reload, sessions list, sessions kill, audit)");
  }
  if (words.size() < 2) return fail(kBad, "\"sessions\" needs \"list\" or \"kill\"");
  if (words[1] == "list") {
    if (words.size() > 2) return extra(2);
    r.verb = ControlVerb::kSessionsList;
    return r;
  }
  if (words[1] != "kill") {
    return fail(kBad, "unknown request " + shown("sessions " + std::string(words[1])) +
                          " (expected sessions list, sessions kill)");
  }
  if (words.size() < 3) {
    return fail(kBad, "\"sessions kill\" needs a connection id, ID/CHANNEL or --user PRINCIPAL");
  }
  if (words[2] == "--user") {
    if (words.size() < 4) return fail(kBad, "\"sessions kill --user\" needs a principal");
    if (words.size() > 4) return extra(4);
    if (!valid_principal(words[3])) {
      return fail(kBad, "the principal " + shown(words[3]) +
                            " is not 1-256 printable characters without spaces or commas");
    }
    r.verb = ControlVerb::kSessionsKillUser;
    r.principal = std::string(words[3]);
    return r;
  }
  if (words.size() > 3) return extra(3);
  // "ID" or "ID/CHANNEL".
  const size_t slash = words[2].find('/');
  if (!parse_id(words[2].substr(0, slash), &r.connection_id)) {
    return fail(kBad, "the connection id " + shown(words[2].substr(0, slash)) +
                          " is not a number of 1-20 digits below 2^64");
  }
  if (slash != std::string_view::npos) {
    const std::string_view channel = words[2].substr(slash + 1);
    if (!parse_id(channel, &r.channel) || r.channel == 0) {
      return fail(kBad, "the channel " + shown(channel) +
                            " is not a number of 1-20 digits from 1 to 2^64-1");
    }
  }
  r.verb = ControlVerb::kSessionsKill;
  return r;
}

std::string encode_request(const ControlRequest& request) {
  switch (request.verb) {
    case ControlVerb::kPing:
      return "ping\n";
    case ControlVerb::kReload:
      return "reload\n";
    case ControlVerb::kSessionsList:
      return "sessions list\n";
    case ControlVerb::kSessionsKill:
      return "sessions kill " + std::to_string(request.connection_id) +
             (request.channel != 0 ? "/" + std::to_string(request.channel) : std::string()) + "\n";
    case ControlVerb::kSessionsKillUser:
      return "sessions kill --user " + request.principal + "\n";
    case ControlVerb::kAuditKey:
    {
      std::string line = "audit ";
      line.append(key_change_word(request.change));
      line.push_back(' ');
      line.append(request.fingerprint);
      line.push_back('\n');
      return line;
    }
  }
  return "ping\n";
}

std::string_view key_change_event(KeyChange change) {
  switch (change) {
    case KeyChange::kAdded:
      return "admin_key_added";
    case KeyChange::kRevoked:
      return "admin_key_revoked";
    case KeyChange::kCloneCleared:
      return "admin_clone_cleared";
  }
  return "admin_key_added";
}

std::string_view key_change_word(KeyChange change) {
  switch (change) {
    case KeyChange::kAdded:
      return "key-added";
    case KeyChange::kRevoked:
      return "key-revoked";
    case KeyChange::kCloneCleared:
      return "clone-cleared";
  }
  return "key-added";
}

std::string format_ok(std::string_view detail) {
  std::string out = "ok";
  if (!detail.empty()) {
    out.push_back(' ');
    for (char c : detail) out.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
  }
  out.push_back('\n');
  return out;
}

namespace {

// text_line: "<word> <text>\n" with every control character of text as '?' (one line each).
std::string text_line(std::string_view word, std::string_view text) {
  std::string out(word);
  out.push_back(' ');
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(c < 0x20 || c == 0x7f ? '?' : ch);
  }
  out.push_back('\n');
  return out;
}

}  // namespace

std::string format_finding_line(std::string_view severity, std::string_view text) {
  return text_line(severity, text);
}

std::string format_error(const Error& error) {
  return text_line("error " + (valid_code(error.code) ? error.code : std::string("internal_error")),
                   error.message);
}

std::string format_session(const SessionInfo& s) {
  std::string out = "{";
  uint64_t up = 0, down = 0;
  append_number_field(&out, "id", s.id);
  append_string_field(&out, "user", s.user);
  append_string_field(&out, "source", s.source);
  append_string_field(&out, "since", format_rfc3339(s.since));
  append_field(&out, "channels");
  out.push_back('[');
  for (size_t i = 0; i < s.channels.size(); ++i) {
    const ChannelInfo& c = s.channels[i];
    if (i > 0) out.push_back(',');
    out.push_back('{');
    append_number_field(&out, "channel", c.channel);
    append_string_field(&out, "target", c.target);
    append_string_field(&out, "address", c.address);
    append_string_field(&out, "rule", c.rule);
    append_string_field(&out, "since", format_rfc3339(c.since));
    append_number_field(&out, "bytes_up", c.bytes_up);
    append_number_field(&out, "bytes_down", c.bytes_down);
    out.push_back('}');
    up += c.bytes_up;
    down += c.bytes_down;
  }
  out.push_back(']');
  append_number_field(&out, "bytes_up", up);
  append_number_field(&out, "bytes_down", down);
  append_string_field(&out, "factor", s.factor);
  append_string_field(&out, "key_fp", s.key_fp);
  out += "}\n";
  return out;
}

Result<std::string> parse_status(std::string_view line) {
  if (line == "ok") return std::string();
  if (line.substr(0, 3) == "ok ") return std::string(line.substr(3));
  if (line.substr(0, 6) == "error ") {
    std::string_view rest = line.substr(6);
    const size_t space = rest.find(' ');
    std::string_view code = rest.substr(0, space);
    std::string_view message = space == std::string_view::npos ? "" : rest.substr(space + 1);
    if (valid_code(code)) return fail(std::string(code), std::string(message));
  }
  return fail("control_bad_reply", "touchgated sent a reply that is not \"ok\" or \"error\"");
}

std::string format_rfc3339(int64_t unix_seconds) {
  std::tm tm{};
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  if (gmtime_r(&t, &tm) == nullptr) return "1970-01-01T00:00:00Z";
  char buf[96];  // room for any int fields: the compiler checks the worst case
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace touchgate::gateway
