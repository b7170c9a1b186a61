// Structured logging: one line per event to stderr, `ts=... level=... event=... key=value ...`.
// Values with spaces, quotes or '=' are double-quoted with escapes. Never pass secrets.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace touchgate::gateway {

enum class Level { kDebug, kInfo, kWarn, kError };

struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  template <class T>
    requires std::is_arithmetic_v<T>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
};

void set_log_level(Level min_level);
// log_event writes one line atomically (a single write(2)); safe from any thread.
void log_event(Level level, std::string_view event, std::initializer_list<Field> fields = {});
// format_log_line is the line log_event would write (without the trailing newline) minus "ts=".
std::string format_log_fields(std::initializer_list<Field> fields);

}  // namespace touchgate::gateway
