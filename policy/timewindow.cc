// Time windows and instants. Parses operator config text (days, hours, zone names) and operator
// command-line text (instants); zone names are vetted before they reach the tz database.
#include "policy/timewindow.h"

#include <array>
#include <bitset>
#include <exception>
#include <utility>

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

namespace touchgate::policy {
namespace {

constexpr const char* kWindowCode = "window_invalid";
constexpr const char* kTimeCode = "time_invalid";
constexpr uint8_t kAllDays = 0x7f;
constexpr int kMinutesPerDay = 24 * 60;
constexpr size_t kMaxZoneName = 128;
constexpr std::array<std::string_view, 7> kDayNames = {"mon", "tue", "wed", "thu",
                                                       "fri", "sat", "sun"};

// day_index returns 0 (Monday) .. 6 (Sunday) for a three-letter name in any case, or -1.
int day_index(std::string_view name) {
  if (name.size() != 3) return -1;
  std::array<char, 3> lower{};
  for (size_t i = 0; i < 3; ++i) {
    char c = name[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string_view l(lower.data(), lower.size());
  for (size_t i = 0; i < kDayNames.size(); ++i) {
    if (kDayNames[i] == l) return static_cast<int>(i);
  }
  return -1;
}

// parse_days folds day names and ranges into a mask (bit 0 = Monday). Empty = every day.
Result<uint8_t> parse_days(const std::vector<std::string>& days) {
  if (days.empty()) return kAllDays;
  uint8_t mask = 0;
  for (const auto& entry : days) {
    auto bad = [&] {
      return fail(kWindowCode,
                  fmt::format("unknown day \"{}\" (use mon tue wed thu fri sat sun or a range "
                              "like mon-fri)",
                              entry));
    };
    std::string_view text(entry);
    size_t dash = text.find('-');
    if (dash == std::string_view::npos) {
      int d = day_index(text);
      if (d < 0) return bad();
      mask = static_cast<uint8_t>(mask | (1u << d));
      continue;
    }
    int first = day_index(text.substr(0, dash));
    int last = day_index(text.substr(dash + 1));
    if (first < 0 || last < 0) return bad();
    // Walk forward from first, wrapping after Sunday: "fri-mon" is fri sat sun mon.
    for (int d = first;; d = (d + 1) % 7) {
      mask = static_cast<uint8_t>(mask | (1u << d));
      if (d == last) break;
    }
  }
  return mask;
}

// two_digits reads exactly two ASCII digits at text[pos], or returns -1.
int two_digits(std::string_view text, size_t pos) {
  if (pos + 2 > text.size()) return -1;
  char a = text[pos];
  char b = text[pos + 1];
  if (a < '0' || a > '9' || b < '0' || b > '9') return -1;
  return (a - '0') * 10 + (b - '0');
}

// parse_clock reads "HH:MM" (00:00..23:59, and 24:00 when allow_24) into minutes, or -1.
int parse_clock(std::string_view text, bool allow_24) {
  if (text.size() != 5 || text[2] != ':') return -1;
  int h = two_digits(text, 0);
  int m = two_digits(text, 3);
  if (h < 0 || m < 0 || m > 59) return -1;
  if (h == 24 && m == 0 && allow_24) return kMinutesPerDay;
  if (h > 23) return -1;
  return h * 60 + m;
}

Result<std::vector<HourRange>> parse_hours(const std::vector<std::string>& hours) {
  std::vector<HourRange> out;
  out.reserve(hours.size());
  for (const auto& entry : hours) {
    std::string_view text(entry);
    int start = -1;
    int end = -1;
    if (text.size() == 11 && text[5] == '-') {
      start = parse_clock(text.substr(0, 5), false);
      end = parse_clock(text.substr(6), true);
    }
    if (start < 0 || end < 0) {
      return fail(kWindowCode,
                  fmt::format("invalid hours \"{}\" (use HH:MM-HH:MM, e.g. 09:00-18:00)", entry));
    }
    if (start == end) {
      return fail(kWindowCode, fmt::format("invalid hours \"{}\": start equals end (use "
                                           "00:00-24:00 for the whole day)",
                                           entry));
    }
    // "22:00-00:00" ends at midnight of the same day.
    if (end == 0) end = kMinutesPerDay;
    out.push_back(HourRange{start, end});
  }
  return out;
}

// plausible_zone_name admits only what IANA names are made of, so that no config text can make
// the tz library open a path of its choosing: no '.', hence no "..", no leading '/', no empty
// path component.
bool plausible_zone_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxZoneName) return false;
  if (name.front() == '/' || name.back() == '/') return false;
  if (name.find("..") != std::string_view::npos || name.find("//") != std::string_view::npos) {
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '+' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// trimmed drops the trailing newline some tz library messages carry.
std::string trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

Result<const date::time_zone*> find_zone(std::string_view name) {
  if (!plausible_zone_name(name)) {
    return fail(
        kWindowCode,
        fmt::format("invalid time zone \"{}\" (use an IANA name like Europe/Berlin)", name));
  }
  try {
    (void)date::get_tzdb();
  } catch (const std::exception& e) {
    return fail(kWindowCode, fmt::format("cannot read the time zone database for \"{}\": {}", name,
                                         trimmed(e.what())));
  }
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(name);
  } catch (const std::exception&) {
    return fail(kWindowCode, fmt::format("unknown time zone \"{}\"", name));
  }
  try {
    // The zone's transitions are read on first use: do it now, so that a broken file is a
    // config error and contains() never does I/O.
    (void)zone->get_info(date::sys_seconds{});
  } catch (const std::exception& e) {
    return fail(kWindowCode,
                fmt::format("cannot read time zone \"{}\": {}", name, trimmed(e.what())));
  }
  return zone;
}

// Local wall-clock fields of an instant.
struct Wall {
  date::local_seconds local;
  int weekday = 0;  // 0 = Monday
  int minute = 0;   // of the day, 0..1439
};

Wall wall_clock(const date::time_zone* zone, std::chrono::system_clock::time_point t) {
  auto sys = std::chrono::floor<std::chrono::seconds>(t);
  Wall w;
  w.local = zone != nullptr ? zone->to_local(sys) : date::local_seconds{sys.time_since_epoch()};
  auto day = std::chrono::floor<date::days>(w.local);
  w.weekday = static_cast<int>(date::weekday{day}.iso_encoding()) - 1;
  w.minute = static_cast<int>(std::chrono::floor<std::chrono::minutes>(w.local - day).count());
  return w;
}

std::string format_clock(int minutes) {
  return fmt::format("{:02}:{:02}", minutes / 60, minutes % 60);
}

// format_days renders a mask as runs, wrapping past Sunday: "mon-fri", "mon-wed,fri", "fri-mon".
std::string format_days(uint8_t mask) {
  if ((mask & kAllDays) == kAllDays) return "every day";
  if ((mask & kAllDays) == 0) return "no day";
  auto has = [&](int d) { return (mask & (1u << ((d % 7 + 7) % 7))) != 0; };
  std::string out;
  for (int d = 0; d < 7; ++d) {
    if (!has(d) || has(d - 1)) continue;  // not the first day of a run
    int last = d;
    while (has(last + 1)) ++last;
    if (!out.empty()) out += ',';
    out += kDayNames[static_cast<size_t>(d)];
    if (last != d) {
      out += '-';
      out += kDayNames[static_cast<size_t>(last % 7)];
    }
  }
  return out;
}

}  // namespace

Result<TimeWindow> TimeWindow::parse(const std::vector<std::string>& days,
                                     const std::vector<std::string>& hours, std::string_view zone) {
  TimeWindow w;
  auto mask = parse_days(days);
  if (!mask) return tl::unexpected(mask.error());
  w.day_mask_ = *mask;
  auto ranges = parse_hours(hours);
  if (!ranges) return tl::unexpected(ranges.error());
  w.hours_ = std::move(*ranges);
  if (!zone.empty()) {
    auto z = find_zone(zone);
    if (!z) return tl::unexpected(z.error());
    w.zone_ = *z;
    w.zone_name_ = std::string(zone);
  }
  return w;
}

bool TimeWindow::contains(std::chrono::system_clock::time_point t) const {
  if (day_mask_ == 0) return false;
  Wall w = wall_clock(zone_, t);
  bool today = (day_mask_ & (1u << w.weekday)) != 0;
  if (hours_.empty()) return today;
  bool yesterday = (day_mask_ & (1u << ((w.weekday + 6) % 7))) != 0;
  for (const auto& r : hours_) {
    if (r.start_min < r.end_min) {
      if (today && w.minute >= r.start_min && w.minute < r.end_min) return true;
    } else {
      // Past midnight: the evening part belongs to today, the morning part to yesterday.
      if (today && w.minute >= r.start_min) return true;
      if (yesterday && w.minute < r.end_min) return true;
    }
  }
  return false;
}

std::optional<std::chrono::system_clock::time_point> TimeWindow::closes_after(
    std::chrono::system_clock::time_point t) const {
  if (always()) return std::nullopt;
  if (!contains(t)) return t;
  // Windows open and close on whole local minutes, and zone offsets are whole minutes: step by
  // minute (a 09:00-18:00 window costs at most 540 steps).
  const auto start = std::chrono::floor<std::chrono::minutes>(t);
  for (int i = 1; i <= 8 * kMinutesPerDay; ++i) {
    const auto next = start + std::chrono::minutes(i);
    if (!contains(next)) return next;
  }
  return std::nullopt;
}

bool TimeWindow::always() const {
  if (day_mask_ != kAllDays) return false;
  if (hours_.empty()) return true;
  // Every day is selected, so a range past midnight covers its evening and its morning alike.
  std::bitset<kMinutesPerDay> covered;
  for (const auto& r : hours_) {
    if (r.start_min < r.end_min) {
      for (int m = r.start_min; m < r.end_min; ++m) covered.set(static_cast<size_t>(m));
    } else {
      for (int m = r.start_min; m < kMinutesPerDay; ++m) covered.set(static_cast<size_t>(m));
      for (int m = 0; m < r.end_min; ++m) covered.set(static_cast<size_t>(m));
    }
  }
  return covered.all();
}

std::string TimeWindow::local_description(std::chrono::system_clock::time_point t) const {
  Wall w = wall_clock(zone_, t);
  date::year_month_day ymd{std::chrono::floor<date::days>(w.local)};
  std::string abbrev = "UTC";
  if (zone_ != nullptr) {
    abbrev = zone_->get_info(std::chrono::floor<std::chrono::seconds>(t)).abbrev;
  }
  static constexpr std::array<std::string_view, 7> kShort = {"Mon", "Tue", "Wed", "Thu",
                                                             "Fri", "Sat", "Sun"};
  std::string out =
      fmt::format("{} {:04}-{:02}-{:02} {} {}", kShort[static_cast<size_t>(w.weekday)],
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), format_clock(w.minute), zone_name_);
  if (abbrev != zone_name_) out += fmt::format(" ({})", abbrev);
  return out;
}

std::string TimeWindow::describe() const {
  std::string out = format_days(day_mask_);
  out += ' ';
  if (hours_.empty()) {
    out += "00:00-24:00";
  } else {
    for (size_t i = 0; i < hours_.size(); ++i) {
      if (i != 0) out += ',';
      out += format_clock(hours_[i].start_min);
      out += '-';
      out += format_clock(hours_[i].end_min);
    }
  }
  out += ' ';
  out += zone_name_;
  return out;
}

Result<std::chrono::system_clock::time_point> parse_instant(std::string_view text) {
  using std::chrono::seconds;
  auto bad = [&] {
    return fail(kTimeCode, fmt::format("invalid time \"{}\" (use 2026-11-28T10:05:00Z, "
                                       "2026-11-28T10:05:00+01:00, \"2026-11-28 10:05\" (UTC) or "
                                       "@UNIX_SECONDS, between 1970 and 2199)",
                                       text));
  };
  // 2199-12-31T23:59:59Z: far enough for any policy, well inside system_clock's range.
  constexpr int64_t kMaxSeconds = 7258118399;
  if (text.empty() || text.size() > 32) return bad();

  if (text.front() == '@') {
    std::string_view digits = text.substr(1);
    if (digits.empty() || digits.size() > 10) return bad();
    int64_t n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return bad();
      n = n * 10 + (c - '0');
    }
    if (n > kMaxSeconds) return bad();
    return std::chrono::system_clock::time_point{seconds{n}};
  }

  // YYYY-MM-DD
  if (text.size() < 16 || text[4] != '-' || text[7] != '-') return bad();
  int y_hi = two_digits(text, 0);
  int y_lo = two_digits(text, 2);
  int mo = two_digits(text, 5);
  int d = two_digits(text, 8);
  if (y_hi < 0 || y_lo < 0 || mo < 0 || d < 0) return bad();
  date::year_month_day ymd{date::year{y_hi * 100 + y_lo}, date::month{static_cast<unsigned>(mo)},
                           date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return bad();
  // 'T' or ' ', then HH:MM and optionally :SS
  char sep = text[10];
  if (sep != 'T' && sep != 't' && sep != ' ') return bad();
  if (text[13] != ':') return bad();
  int h = two_digits(text, 11);
  int mi = two_digits(text, 14);
  if (h < 0 || h > 23 || mi < 0 || mi > 59) return bad();
  size_t pos = 16;
  int s = 0;
  if (pos < text.size() && text[pos] == ':') {
    s = two_digits(text, pos + 1);
    if (s < 0 || s > 59) return bad();
    pos += 3;
  }
  // Zone designator: none (UTC), 'Z', or +HH:MM / -HH:MM.
  int64_t offset = 0;
  if (pos < text.size()) {
    char z = text[pos];
    if (z == 'Z' || z == 'z') {
      pos += 1;
    } else if (z == '+' || z == '-') {
      if (pos + 6 != text.size() || text[pos + 3] != ':') return bad();
      int oh = two_digits(text, pos + 1);
      int om = two_digits(text, pos + 4);
      if (oh < 0 || oh > 23 || om < 0 || om > 59) return bad();
      offset = (z == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      pos += 6;
    } else {
      return bad();
    }
  }
  if (pos != text.size()) return bad();

  // date::days counts in int: widen before scaling to seconds.
  int64_t day_number = date::sys_days{ymd}.time_since_epoch().count();
  int64_t total = day_number * 86400 + h * 3600 + mi * 60 + s - offset;
  if (total < 0 || total > kMaxSeconds) return bad();
  return std::chrono::system_clock::time_point{seconds{total}};
}

}  // namespace touchgate::policy
