// Time windows of policy rules: days of the week and hours of the day, in a named time zone (the
// system's IANA database, /usr/share/zoneinfo, read through Howard Hinnant's date library).
//
// Semantics (see touchgate-policy(5)):
// - `days`: names mon tue wed thu fri sat sun (any case) and ranges "mon-fri", "fri-mon" (wraps);
//   empty = every day.
// - `hours`: ranges "HH:MM-HH:MM" (24 h, 00:00..24:00); end after start = same day; end before
//   start = the window runs past midnight into the next day and belongs to the day it STARTS on
//   ("22:00-06:00" with days = ["fri"] is Friday 22:00 to Saturday 06:00); start == end is refused
//   (use "00:00-24:00" for the whole day). Empty = the whole day.
// - The instant is converted to wall-clock time in the zone; so on a DST change a window keeps its
//   wall-clock bounds (a 01:00-03:00 window is one hour long on the spring-forward night in
//   Europe/Berlin, three on the fall-back night). The start is inclusive, the end exclusive.
// - Zone names are checked before the database is consulted: only [A-Za-z0-9/_+-], no leading
//   '/', no empty component, so config text cannot name a file outside the zoneinfo tree.
// - The library reads the transitions listed in the zoneinfo files and ignores their trailing
//   POSIX rule, so instants after a zone's last listed transition (2037 in Debian's files) get
//   that transition's offset (standard time, for zones with DST).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"

namespace date {
class time_zone;
}

namespace touchgate::policy {

struct HourRange {
  int start_min = 0;  // 0..1439
  int end_min = 0;    // 1..1440, != start_min; end < start runs past midnight
};

class TimeWindow {
 public:
  // parse builds a window. Codes: "window_invalid" with a message naming the bad entry, e.g.
  // `unknown day "mnday" (use mon tue wed thu fri sat sun or a range like mon-fri)`,
  // `invalid hours "9-17" (use HH:MM-HH:MM, e.g. 09:00-18:00)`, `unknown time zone "Europe/Berln"`.
  // An empty zone means UTC.
  static Result<TimeWindow> parse(const std::vector<std::string>& days,
                                  const std::vector<std::string>& hours, std::string_view zone);

  // contains: is the instant inside the window?
  bool contains(std::chrono::system_clock::time_point t) const;

  // closes_after: the first whole minute after t at which the window no longer contains the time
  // (t itself when it is outside); nullopt when the window never closes (always(), or it stays
  // open for the next 8 days). Used to end a session when its rule's window closes.
  std::optional<std::chrono::system_clock::time_point> closes_after(
      std::chrono::system_clock::time_point t) const;

  // local_description renders the instant as the window sees it: "Sat 2026-11-28 10:05
  // Europe/Berlin (CET)".
  std::string local_description(std::chrono::system_clock::time_point t) const;

  // describe renders the window: "mon-fri 09:00-18:00 Europe/Berlin"; "every day 00:00-24:00 UTC".
  std::string describe() const;

  // never: no instant can match (no day selected); used by `policy check`.
  bool never() const { return day_mask_ == 0; }
  bool always() const;  // every day, whole day
  uint8_t day_mask() const { return day_mask_; }  // bit 0 = Monday ... bit 6 = Sunday
  const std::vector<HourRange>& hours() const { return hours_; }
  const std::string& zone_name() const { return zone_name_; }

 private:
  uint8_t day_mask_ = 0x7f;
  std::vector<HourRange> hours_;  // empty = whole day
  const date::time_zone* zone_ = nullptr;
  std::string zone_name_ = "UTC";
};

// parse_instant accepts an ISO 8601 time with a UTC offset, or a Unix time, for `policy explain
// --at` and policy tests: "2026-11-28T10:05:00Z", "2026-11-28T10:05:00+01:00", "2026-11-28T10:05Z",
// "2026-11-28 10:05" (no designator = UTC), "@1795860300" (seconds since 1970-01-01T00:00:00Z).
// Strict: exact field widths, real dates, no trailing text; 1970..2199. Code "time_invalid".
Result<std::chrono::system_clock::time_point> parse_instant(std::string_view text);

}  // namespace touchgate::policy
