#include "audit/record.h"

#include <pwd.h>

#include <ctime>

#include <fmt/format.h>

#include "ssh/digest.h"
#include "ssh/text.h"

namespace touchgate::audit {
namespace {

constexpr std::string_view kReserved[] = {"seq", "ts", "prev", "event", "hash"};


}  // namespace

bool is_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

void append_json_string(std::string& out, std::string_view s) { ssh::append_json_string(out, s); }

std::string to_hex(std::span<const uint8_t> data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<time_t>(ms / 1000);
  auto frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  struct tm tm {};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::string record_hash(std::string_view hashed_part) {
  const auto h = ssh::sha256(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(hashed_part.data()), hashed_part.size()));
  return to_hex(h);
}

Record::Record(std::string_view event) : event_(event) {
  valid_ = is_name(event);
}

bool Record::add_name(std::string_view name) {
  bool ok = is_name(name);
  for (auto r : kReserved)
    if (name == r) ok = false;
  for (const auto& n : names_)
    if (n == name) ok = false;
  if (!ok) {
    valid_ = false;
    return false;
  }
  names_.emplace_back(name);
  fields_.append(",\"");
  fields_.append(name);
  fields_.append("\":");
  return true;
}

Record& Record::str(std::string_view name, std::string_view value) {
  if (add_name(name)) append_json_string(fields_, value);
  return *this;
}

Record& Record::u64(std::string_view name, uint64_t value) {
  if (add_name(name)) fields_.append(fmt::format("{}", value));
  return *this;
}

Record& Record::i64(std::string_view name, int64_t value) {
  if (add_name(name)) fields_.append(fmt::format("{}", value));
  return *this;
}

Record& Record::boolean(std::string_view name, bool value) {
  if (add_name(name)) fields_.append(value ? "true" : "false");
  return *this;
}

FormattedLine format_line(uint64_t seq, std::chrono::system_clock::time_point ts,
                          std::string_view prev, const Record& record) {
  FormattedLine out;
  out.text.reserve(160 + record.fields().size());
  out.text.append(fmt::format("{{\"seq\":{},\"ts\":\"{}\",\"prev\":\"", seq, format_timestamp(ts)));
  out.text.append(prev);
  out.text.append("\",\"event\":\"");
  out.text.append(record.event());
  out.text.push_back('"');
  out.text.append(record.fields());
  out.hash = record_hash(out.text);
  out.text.append(",\"hash\":\"");
  out.text.append(out.hash);
  out.text.append("\"}\n");
  return out;
}

Record admin_record(std::string_view event, uint32_t uid) {
  std::string name = "uid" + std::to_string(uid);
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    name = found->pw_name;
  }
  Record r(event);
  r.str("admin", name).u64("uid", uid);
  return r;
}

}  // namespace touchgate::audit
