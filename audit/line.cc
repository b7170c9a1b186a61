// Trust boundary: lines of audit log files read back from disk.
#include "audit/line.h"

#include <charconv>

#include "ssh/text.h"

namespace touchgate::audit {
namespace {

bool is_lower_hex(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_timestamp(std::string_view s) {
  // 2026-11-30T10:00:00.123Z
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != kShape.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (kShape[i] == 'd') {
      if (s[i] < '0' || s[i] > '9') return false;
    } else if (s[i] != kShape[i]) {
      return false;
    }
  }
  return true;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}


int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// scan_string reads a string starting after its opening quote at s[*pos]; on success *pos is
// past the closing quote and *raw holds the content.
const char* scan_string(std::string_view s, size_t* pos, std::string_view* raw) {
  const size_t start = *pos;
  size_t i = start;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == '"') {
      *raw = s.substr(start, i - start);
      *pos = i + 1;
      return nullptr;
    }
    if (c == '\\') {
      if (i + 1 >= s.size()) return "unterminated escape";
      const char e = s[i + 1];
      if (e == '"' || e == '\\') {
        i += 2;
        continue;
      }
      // Only \u00xx for control characters and DEL, in lowercase hex: the writer's form.
      if (e != 'u' || i + 6 > s.size() || s[i + 2] != '0' || s[i + 3] != '0')
        return "escape not in canonical form";
      const int h = hex_value(s[i + 4]), l = hex_value(s[i + 5]);
      if (h < 0 || l < 0) return "escape not in canonical form";
      const int v = h * 16 + l;
      if (!(v < 0x20 || v == 0x7f)) return "escape not in canonical form";
      i += 6;
      continue;
    }
    if (c < 0x20 || c == 0x7f) return "raw control character in string";
    if (c < 0x80) {
      ++i;
      continue;
    }
    const size_t n = ssh::utf8_sequence_length(s, i);
    if (n == 0) return "invalid UTF-8 in string";
    i += n;
  }
  return "unterminated string";
}

const char* scan_integer(std::string_view s, size_t* pos, std::string_view* raw) {
  const size_t start = *pos;
  size_t i = start;
  bool negative = false;
  if (i < s.size() && s[i] == '-') {
    negative = true;
    ++i;
  }
  const size_t digits = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == digits) return "bad value";
  if (s[digits] == '0' && i - digits > 1) return "integer with leading zero";
  if (negative && i - digits == 1 && s[digits] == '0') return "negative zero";
  *raw = s.substr(start, i - start);
  if (negative) {
    int64_t v = 0;
    auto r = std::from_chars(raw->data(), raw->data() + raw->size(), v);
    if (r.ec != std::errc() || r.ptr != raw->data() + raw->size()) return "integer out of range";
  } else {
    uint64_t v = 0;
    auto r = std::from_chars(raw->data(), raw->data() + raw->size(), v);
    if (r.ec != std::errc() || r.ptr != raw->data() + raw->size()) return "integer out of range";
  }
  *pos = i;
  return nullptr;
}

}  // namespace

const Field* ParsedLine::find(std::string_view name) const {
  for (const auto& f : fields)
    if (f.name == name) return &f;
  return nullptr;
}

bool parse_u64(std::string_view raw, uint64_t* out) {
  if (raw.empty() || raw[0] == '-') return false;
  auto r = std::from_chars(raw.data(), raw.data() + raw.size(), *out);
  return r.ec == std::errc() && r.ptr == raw.data() + raw.size();
}

std::string unescape_string(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\' || i + 1 >= raw.size()) {
      out.push_back(raw[i]);
    } else if (raw[i + 1] == 'u' && i + 5 < raw.size()) {
      out.push_back(static_cast<char>(hex_value(raw[i + 4]) * 16 + hex_value(raw[i + 5])));
      i += 5;
    } else {
      out.push_back(raw[i + 1]);
      ++i;
    }
  }
  return out;
}

const char* parse_line(std::string_view s, ParsedLine* out) {
  out->fields.clear();
  out->hashed = {};
  if (s.size() > kMaxLine) return "line too long";
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return "not a JSON object";
  size_t pos = 1;
  size_t hash_at = 0;  // offset of the ',' before "hash"
  while (true) {
    const size_t field_start = pos - 1;  // the '{' or ','
    if (pos >= s.size() || s[pos] != '"') return "expected a field name";
    ++pos;
    const size_t name_start = pos;
    while (pos < s.size() && is_name_char(s[pos])) ++pos;
    if (pos == name_start || pos - name_start > 64) return "bad field name";
    if (pos + 1 >= s.size() || s[pos] != '"' || s[pos + 1] != ':') return "bad field name";
    Field f;
    f.name = s.substr(name_start, pos - name_start);
    pos += 2;
    if (pos >= s.size()) return "missing value";
    if (s[pos] == '"') {
      ++pos;
      f.kind = ValueKind::kString;
      if (const char* e = scan_string(s, &pos, &f.raw)) return e;
    } else if (s.compare(pos, 4, "true") == 0) {
      f.kind = ValueKind::kBoolean;
      f.raw = s.substr(pos, 4);
      pos += 4;
    } else if (s.compare(pos, 5, "false") == 0) {
      f.kind = ValueKind::kBoolean;
      f.raw = s.substr(pos, 5);
      pos += 5;
    } else {
      f.kind = ValueKind::kInteger;
      if (const char* e = scan_integer(s, &pos, &f.raw)) return e;
    }
    if (out->fields.size() >= kMaxFields) return "too many fields";
    for (const auto& g : out->fields)
      if (g.name == f.name) return "duplicate field name";
    out->fields.push_back(f);
    if (f.name == "hash") hash_at = field_start;
    if (pos >= s.size()) return "unterminated object";
    if (s[pos] == '}') {
      if (pos + 1 != s.size()) return "trailing bytes after object";
      break;
    }
    if (s[pos] != ',') return "expected ',' or '}'";
    ++pos;
  }

  const auto& fs = out->fields;
  if (fs.size() < 5) return "missing chain fields";
  if (fs[0].name != "seq" || fs[0].kind != ValueKind::kInteger || !parse_u64(fs[0].raw, &out->seq))
    return "first field is not seq";
  if (out->seq == 0) return "seq 0";
  if (fs[1].name != "ts" || fs[1].kind != ValueKind::kString || !is_timestamp(fs[1].raw))
    return "second field is not ts";
  if (fs[2].name != "prev" || fs[2].kind != ValueKind::kString || !is_lower_hex(fs[2].raw, 64))
    return "third field is not prev";
  if (fs[3].name != "event" || fs[3].kind != ValueKind::kString || fs[3].raw.empty() ||
      fs[3].raw.size() > 64)
    return "fourth field is not event";
  for (char c : fs[3].raw)
    if (!is_name_char(c)) return "bad event name";
  const auto& last = fs.back();
  if (last.name != "hash" || last.kind != ValueKind::kString || !is_lower_hex(last.raw, 64))
    return "last field is not hash";
  out->ts = fs[1].raw;
  out->prev = fs[2].raw;
  out->event = fs[3].raw;
  out->hash = last.raw;
  out->hashed = s.substr(0, hash_at);
  return nullptr;
}

}  // namespace touchgate::audit
