#include "policy/duration.h"

#include <array>
#include <utility>

#include <fmt/format.h>

#include "policy/config.h"

namespace touchgate::policy {
namespace {

constexpr const char* kCode = "config_invalid";

}  // namespace

std::string format_duration(uint64_t s) {
  if (s == 0) return "0s";
  std::string out;
  const std::array<std::pair<uint64_t, char>, 4> units{
      {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}}};
  for (auto [size, unit] : units) {
    if (s >= size) {
      out += fmt::format("{}{}", s / size, unit);
      s %= size;
    }
  }
  return out;
}

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  auto bad = [&] {
    return fail(kCode,
                fmt::format("invalid duration \"{}\": expected seconds or a number with unit d, "
                            "h, m or s, largest first (e.g. \"30s\", \"5m\", \"1h30m\")",
                            text));
  };
  if (text.empty() || text.size() > 64) return bad();
  uint64_t total = 0;
  size_t i = 0;
  int last_rank = 4;  // units must appear in the order d, h, m, s, each at most once
  while (i < text.size()) {
    size_t start = i;
    uint64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + static_cast<uint64_t>(text[i] - '0');
      if (n > kMaxDurationSeconds) {
        return fail(kCode, fmt::format("duration \"{}\" is too long (at most {})", text,
                                       format_duration(kMaxDurationSeconds)));
      }
      ++i;
    }
    if (i == start) return bad();
    uint64_t unit = 1;
    int rank = 0;
    if (i == text.size()) {
      if (start != 0) return bad();  // "1h30" is ambiguous: every part after the first needs a unit
    } else {
      switch (text[i]) {
        case 'd':
          unit = 86400;
          rank = 3;
          break;
        case 'h':
          unit = 3600;
          rank = 2;
          break;
        case 'm':
          unit = 60;
          rank = 1;
          break;
        case 's':
          unit = 1;
          rank = 0;
          break;
        default:
          return bad();
      }
      ++i;
      if (rank >= last_rank) return bad();
      last_rank = rank;
    }
    total += n * unit;
    if (total > kMaxDurationSeconds) {
      return fail(kCode, fmt::format("duration \"{}\" is too long (at most {})", text,
                                     format_duration(kMaxDurationSeconds)));
    }
  }
  return std::chrono::seconds(static_cast<std::chrono::seconds::rep>(total));
}

}  // namespace touchgate::policy
