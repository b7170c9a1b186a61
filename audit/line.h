// The strict scanner for one line of the audit log (trust boundary: log files read back from
// disk, which an attacker may have edited). It accepts exactly what format_line writes: a
// top-level object without whitespace whose values are strings, integers or booleans, with the
// chain fields in their fixed places (docs/audit-format.md). It never allocates beyond the
// capacity a reused ParsedLine already has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace touchgate::audit {

// Longest line a reader accepts (the '\n' not counted); longer lines are malformed.
inline constexpr size_t kMaxLine = 1u << 20;
// Most fields a line may carry (chain fields included).
inline constexpr size_t kMaxFields = 256;

enum class ValueKind { kString, kInteger, kBoolean };

struct Field {
  std::string_view name;
  ValueKind kind = ValueKind::kString;
  // raw is the value as written: for a string, the bytes between the quotes (still escaped).
  std::string_view raw;
};

struct ParsedLine {
  uint64_t seq = 0;
  std::string_view ts;     // "YYYY-MM-DDTHH:MM:SS.mmmZ"
  std::string_view prev;   // 64 lowercase hex
  std::string_view event;  // [a-z0-9_]+
  std::string_view hash;   // 64 lowercase hex
  // hashed is the part of the line the hash covers: from '{' up to ',"hash":"'.
  std::string_view hashed;
  std::vector<Field> fields;  // every field in order, chain fields included

  // find returns the field named name, or nullptr.
  const Field* find(std::string_view name) const;
};

// parse_line parses line (without its '\n') into out, whose views point into line. It returns
// nullptr on success, else a static sentence saying what is wrong. The hash is NOT checked here.
const char* parse_line(std::string_view line, ParsedLine* out);

// unescape_string decodes the raw bytes of a string value that parse_line accepted.
std::string unescape_string(std::string_view raw);

// parse_u64 reads an integer value written without sign; false if it is negative or too big.
bool parse_u64(std::string_view raw, uint64_t* out);

}  // namespace touchgate::audit
