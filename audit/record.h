// Audit records: the builder callers fill and the one function that renders a record as a line of
// the chained log (docs/audit-format.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace touchgate::audit {

// kGenesisHash is the `prev` of the very first record of a log: 64 zeros.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Record is one event and its fields, in the order the caller adds them. Values are escaped as
// they are added (control characters as \u00xx, '"' and '\\'; bytes that are not UTF-8 become
// U+FFFD). A Record whose event or a field name is not [a-z0-9_]+, or whose field name repeats or
// is one the log writes itself (seq, ts, prev, event, hash), is not valid(): the log refuses it.
class Record {
 public:
  explicit Record(std::string_view event);

  Record& str(std::string_view name, std::string_view value);
  Record& u64(std::string_view name, uint64_t value);
  Record& i64(std::string_view name, int64_t value);
  Record& boolean(std::string_view name, bool value);

  const std::string& event() const { return event_; }
  // fields is the rendered `,"name":value` sequence.
  const std::string& fields() const { return fields_; }
  bool valid() const { return valid_; }

 private:
  bool add_name(std::string_view name);

  std::string event_;
  std::string fields_;
  std::vector<std::string> names_;
  bool valid_ = true;
};

// admin_record starts the record of an administrator's action: event, "admin" (the account name
// of uid, or "uid<N>" when it has none) and "uid".
Record admin_record(std::string_view event, uint32_t uid);

// is_name is true for a non-empty [a-z0-9_]+ string of at most 64 bytes.
bool is_name(std::string_view s);

// append_json_string appends s as a JSON string (quotes included) in the log's canonical escaping.
void append_json_string(std::string& out, std::string_view s);

// to_hex is lowercase hex.
std::string to_hex(std::span<const uint8_t> data);

// format_timestamp renders t as "2026-11-30T10:00:00.123Z" (UTC, milliseconds).
std::string format_timestamp(std::chrono::system_clock::time_point t);

// record_hash is the lowercase hex SHA-256 of the hashed part of a line.
std::string record_hash(std::string_view hashed_part);

struct FormattedLine {
  std::string text;  // the whole line including the final '\n'
  std::string hash;  // its `hash`
};

// format_line renders a record with its chain fields:
// {"seq":N,"ts":"...","prev":"...","event":"...",<fields>,"hash":"..."}\n
FormattedLine format_line(uint64_t seq, std::chrono::system_clock::time_point ts,
                          std::string_view prev, const Record& record);

}  // namespace touchgate::audit
