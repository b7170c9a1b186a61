#include "policy/timewindow.h"

#include <date/date.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace touchgate::policy {
namespace {

using Clock = std::chrono::system_clock;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::HasSubstr;
using Strings = std::vector<std::string>;

// utc builds an instant from UTC fields, independently of parse_instant.
Clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return Clock::time_point{date::sys_days{date::year{y} / date::month{mo} / date::day{d}} +
                           hours{h} + minutes{mi} + seconds{s}};
}

TimeWindow window(const Strings& days, const Strings& hrs, std::string_view zone = "") {
  auto w = TimeWindow::parse(days, hrs, zone);
  if (!w) {
    ADD_FAILURE() << "refused: " << w.error().message;
    return TimeWindow{};
  }
  return *w;
}

void expect_window_error(const Strings& days, const Strings& hrs, std::string_view zone,
                         std::string_view what) {
  auto w = TimeWindow::parse(days, hrs, zone);
  ASSERT_FALSE(w.has_value()) << "accepted: " << w->describe();
  EXPECT_EQ(w.error().code, "window_invalid");
  EXPECT_THAT(w.error().message, HasSubstr(std::string(what)));
}

// minutes_inside counts the whole UTC minutes of [from, from + span) that the window contains.
int minutes_inside(const TimeWindow& w, Clock::time_point from, hours span) {
  int n = 0;
  for (auto t = from; t < from + span; t += minutes{1}) n += w.contains(t) ? 1 : 0;
  return n;
}

// --- days ---

TEST(TimeWindowDays, NamesInAnyCase) {
  EXPECT_EQ(window({"Mon", "TUE", "sun"}, {}).day_mask(), 0b1000011);
  EXPECT_EQ(window({"thu"}, {}).day_mask(), 0b0001000);
}

TEST(TimeWindowDays, EmptyIsEveryDay) {
  auto w = window({}, {});
  EXPECT_EQ(w.day_mask(), 0x7f);
  EXPECT_FALSE(w.never());
}

TEST(TimeWindowDays, Ranges) {
  EXPECT_EQ(window({"mon-fri"}, {}).day_mask(), 0b0011111);
  EXPECT_EQ(window({"sat-sun"}, {}).day_mask(), 0b1100000);
  EXPECT_EQ(window({"MON-Wed"}, {}).day_mask(), 0b0000111);
  EXPECT_EQ(window({"wed-wed"}, {}).day_mask(), 0b0000100);
}

TEST(TimeWindowDays, WrappingRange) {
  EXPECT_EQ(window({"fri-mon"}, {}).day_mask(), 0b1110001);  // fri sat sun mon
  EXPECT_EQ(window({"sun-tue"}, {}).day_mask(), 0b1000011);
}

TEST(TimeWindowDays, DuplicatesAreFine) {
  EXPECT_EQ(window({"mon", "mon-tue", "MON"}, {}).day_mask(), 0b0000011);
}

TEST(TimeWindowDays, Refused) {
  expect_window_error({"mnday"}, {}, "",
                      "unknown day \"mnday\" (use mon tue wed thu fri sat sun or a range like "
                      "mon-fri)");
  for (const char* bad : {"monday", "", "mon-", "-fri", "mon-fry", "mon - fri", "mon,tue",
                          "mon-tue-wed", "m", "mo n"}) {
    SCOPED_TRACE(bad);
    expect_window_error({"tue", bad}, {}, "", "unknown day \"" + std::string(bad) + "\"");
  }
}

// --- hours ---

TEST(TimeWindowHours, Parsed) {
  auto w = window({}, {"09:00-18:00", "22:00-06:00", "00:00-24:00", "22:30-00:00", "23:59-24:00"});
  ASSERT_EQ(w.hours().size(), 5u);
  EXPECT_EQ(w.hours()[0].start_min, 540);
  EXPECT_EQ(w.hours()[0].end_min, 1080);
  EXPECT_EQ(w.hours()[1].start_min, 1320);
  EXPECT_EQ(w.hours()[1].end_min, 360);
  EXPECT_EQ(w.hours()[2].start_min, 0);
  EXPECT_EQ(w.hours()[2].end_min, 1440);
  EXPECT_EQ(w.hours()[3].start_min, 1350);  // "-00:00" ends at midnight of the same day
  EXPECT_EQ(w.hours()[3].end_min, 1440);
  EXPECT_EQ(w.hours()[4].start_min, 1439);
  EXPECT_EQ(w.hours()[4].end_min, 1440);
}

TEST(TimeWindowHours, Refused) {
  expect_window_error({}, {"9:00-17:00"}, "",
                      "invalid hours \"9:00-17:00\" (use HH:MM-HH:MM, e.g. 09:00-18:00)");
  expect_window_error({}, {"25:00-26:00"}, "", "invalid hours \"25:00-26:00\"");
  expect_window_error({}, {"10:00-10:00"}, "", "invalid hours \"10:00-10:00\": start equals end");
  expect_window_error({}, {"00:00-00:00"}, "", "start equals end");
  for (const char* bad : {"9-17", "09:00-24:01", "24:00-06:00", "09:60-10:00", "09:00-18:00 ",
                          " 09:00-18:00", "09:00 - 18:00", "09:00-18", "0a:00-10:00", "",
                          "09:00-18:00-19:00", "09.00-18.00", "-1:00-02:00"}) {
    SCOPED_TRACE(bad);
    expect_window_error({}, {"08:00-09:00", bad}, "", "invalid hours \"" + std::string(bad) + "\"");
  }
}

// --- contains, UTC ---

TEST(TimeWindowContains, SameDayEdges) {
  auto w = window({"mon-fri"}, {"09:00-18:00"});
  // 2026-11-30 is a Monday.
  EXPECT_FALSE(w.contains(utc(2026, 11, 30, 8, 59, 59)));
  EXPECT_TRUE(w.contains(utc(2026, 11, 30, 9, 0)));  // start inclusive
  EXPECT_TRUE(w.contains(utc(2026, 11, 30, 17, 59, 59)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 30, 18, 0)));  // end exclusive
  EXPECT_TRUE(w.contains(utc(2026, 11, 27, 12, 0)));   // Friday
  EXPECT_FALSE(w.contains(utc(2026, 11, 28, 12, 0)));  // Saturday
  EXPECT_FALSE(w.contains(utc(2026, 11, 29, 12, 0)));  // Sunday
}

TEST(TimeWindowContains, SubSecondBeforeEndIsInside) {
  auto w = window({}, {"09:00-18:00"});
  EXPECT_TRUE(w.contains(utc(2026, 11, 30, 17, 59, 59) + std::chrono::milliseconds(999)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 30, 8, 59, 59) + std::chrono::milliseconds(999)));
}

TEST(TimeWindowContains, AcrossMidnightBelongsToStartDay) {
  auto w = window({"fri"}, {"22:00-06:00"});
  // 2026-11-27 is a Friday.
  EXPECT_FALSE(w.contains(utc(2026, 11, 27, 21, 59)));
  EXPECT_TRUE(w.contains(utc(2026, 11, 27, 22, 0)));
  EXPECT_TRUE(w.contains(utc(2026, 11, 27, 23, 59, 59)));
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 0, 0)));  // Saturday midnight
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 3, 0)));  // Saturday 03:00
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 5, 59, 59)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 28, 6, 0)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 27, 3, 0)));    // Friday 03:00: Thursday's night
  EXPECT_FALSE(w.contains(utc(2026, 11, 28, 22, 30)));  // Saturday evening
  EXPECT_FALSE(w.contains(utc(2026, 11, 26, 23, 0)));   // Thursday evening
}

TEST(TimeWindowContains, AcrossMidnightFromSundayIntoMonday) {
  auto w = window({"sun"}, {"22:00-06:00"});
  EXPECT_TRUE(w.contains(utc(2026, 11, 30, 3, 0)));   // Monday 03:00: Sunday's night
  EXPECT_FALSE(w.contains(utc(2026, 11, 29, 3, 0)));  // Sunday 03:00: Saturday's night
  EXPECT_TRUE(w.contains(utc(2026, 11, 29, 23, 0)));
}

TEST(TimeWindowContains, SeveralRanges) {
  auto w = window({}, {"08:00-10:00", "16:00-18:00"});
  EXPECT_TRUE(w.contains(utc(2026, 11, 30, 9, 0)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 30, 12, 0)));
  EXPECT_TRUE(w.contains(utc(2026, 11, 30, 17, 0)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 30, 18, 0)));
}

TEST(TimeWindowContains, EmptyHoursIsWholeDay) {
  auto w = window({"sat"}, {});
  EXPECT_FALSE(w.contains(utc(2026, 11, 27, 23, 59, 59)));
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 0, 0)));
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 23, 59, 59)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 29, 0, 0)));
}

TEST(TimeWindowContains, MidnightEndIsSameDay) {
  auto w = window({"fri"}, {"22:00-00:00"});
  EXPECT_TRUE(w.contains(utc(2026, 11, 27, 23, 59)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 28, 0, 0)));
}

// --- time zones and DST ---

TEST(TimeWindowZone, BerlinSpringForward) {
  // 2026-03-29 (Sunday): 02:00 CET becomes 03:00 CEST at 01:00Z.
  auto w = window({}, {"01:00-04:00"}, "Europe/Berlin");
  EXPECT_FALSE(w.contains(utc(2026, 3, 28, 23, 59, 59)));  // 00:59:59 CET
  EXPECT_TRUE(w.contains(utc(2026, 3, 29, 0, 0)));         // 01:00 CET
  EXPECT_TRUE(w.contains(utc(2026, 3, 29, 0, 59, 59)));    // 01:59:59 CET
  EXPECT_TRUE(w.contains(utc(2026, 3, 29, 1, 0)));         // 03:00 CEST
  EXPECT_TRUE(w.contains(utc(2026, 3, 29, 1, 59, 59)));    // 03:59:59 CEST
  EXPECT_FALSE(w.contains(utc(2026, 3, 29, 2, 0)));        // 04:00 CEST
  // Three wall-clock hours, two real ones.
  EXPECT_EQ(minutes_inside(w, utc(2026, 3, 28, 12, 0), hours{24}), 120);
  EXPECT_EQ(w.local_description(utc(2026, 3, 29, 0, 59, 59)),
            "Sun 2026-03-29 01:59 Europe/Berlin (CET)");
  EXPECT_EQ(w.local_description(utc(2026, 3, 29, 1, 0)),
            "Sun 2026-03-29 03:00 Europe/Berlin (CEST)");
}

TEST(TimeWindowZone, BerlinSpringForwardGapHourNeverMatches) {
  auto w = window({}, {"02:00-03:00"}, "Europe/Berlin");
  EXPECT_EQ(minutes_inside(w, utc(2026, 3, 28, 12, 0), hours{24}), 0);
  EXPECT_EQ(minutes_inside(w, utc(2026, 3, 27, 12, 0), hours{24}), 60);  // the night before
}

TEST(TimeWindowZone, BerlinFallBack) {
  // 2026-10-25 (Sunday): 03:00 CEST becomes 02:00 CET at 01:00Z.
  auto w = window({}, {"01:00-04:00"}, "Europe/Berlin");
  EXPECT_FALSE(w.contains(utc(2026, 10, 24, 22, 59, 59)));  // 00:59:59 CEST
  EXPECT_TRUE(w.contains(utc(2026, 10, 24, 23, 0)));        // 01:00 CEST
  EXPECT_TRUE(w.contains(utc(2026, 10, 25, 0, 30)));        // 02:30 CEST
  EXPECT_TRUE(w.contains(utc(2026, 10, 25, 1, 30)));        // 02:30 CET, the second time
  EXPECT_TRUE(w.contains(utc(2026, 10, 25, 2, 59, 59)));    // 03:59:59 CET
  EXPECT_FALSE(w.contains(utc(2026, 10, 25, 3, 0)));        // 04:00 CET
  // Three wall-clock hours, four real ones.
  EXPECT_EQ(minutes_inside(w, utc(2026, 10, 24, 12, 0), hours{24}), 240);
  EXPECT_EQ(w.local_description(utc(2026, 10, 25, 0, 30)),
            "Sun 2026-10-25 02:30 Europe/Berlin (CEST)");
  EXPECT_EQ(w.local_description(utc(2026, 10, 25, 1, 30)),
            "Sun 2026-10-25 02:30 Europe/Berlin (CET)");
}

TEST(TimeWindowZone, BerlinFallBackRepeatedHourMatchesTwice) {
  auto w = window({"sun"}, {"02:00-03:00"}, "Europe/Berlin");
  EXPECT_EQ(minutes_inside(w, utc(2026, 10, 24, 12, 0), hours{24}), 120);
}

TEST(TimeWindowZone, NewYorkLocalDayDiffersFromUtcDay) {
  auto w = window({"mon-fri"}, {}, "America/New_York");
  // Monday 2026-11-30 02:00Z is Sunday 21:00 EST.
  EXPECT_FALSE(w.contains(utc(2026, 11, 30, 2, 0)));
  EXPECT_EQ(w.local_description(utc(2026, 11, 30, 2, 0)),
            "Sun 2026-11-29 21:00 America/New_York (EST)");
  EXPECT_TRUE(w.contains(utc(2026, 11, 30, 5, 0)));   // Monday 00:00 EST
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 2, 0)));   // Saturday UTC, Friday 21:00 EST
  EXPECT_FALSE(w.contains(utc(2026, 11, 28, 5, 0)));  // Saturday 00:00 EST
  // Summer: Monday 2026-07-06 02:00Z is Sunday 22:00 EDT; 04:00Z is Monday 00:00 EDT.
  EXPECT_FALSE(w.contains(utc(2026, 7, 6, 2, 0)));
  EXPECT_FALSE(w.contains(utc(2026, 7, 6, 3, 59)));
  EXPECT_TRUE(w.contains(utc(2026, 7, 6, 4, 0)));
}

TEST(TimeWindowZone, NewYorkEveningHours) {
  auto w = window({"mon-fri"}, {"20:00-23:00"}, "America/New_York");
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 1, 30)));    // Friday 20:30 EST
  EXPECT_FALSE(w.contains(utc(2026, 11, 29, 1, 30)));   // Saturday 20:30 EST
  EXPECT_FALSE(w.contains(utc(2026, 11, 27, 20, 30)));  // Friday 15:30 EST
}

TEST(TimeWindowZone, EmptyAndExplicitUtc) {
  auto implicit = window({"sat"}, {"10:00-11:00"});
  auto explicit_utc = window({"sat"}, {"10:00-11:00"}, "UTC");
  EXPECT_EQ(implicit.zone_name(), "UTC");
  EXPECT_EQ(explicit_utc.zone_name(), "UTC");
  for (const auto* w : {&implicit, &explicit_utc}) {
    EXPECT_TRUE(w->contains(utc(2026, 11, 28, 10, 5)));
    EXPECT_FALSE(w->contains(utc(2026, 11, 28, 11, 0)));
    EXPECT_EQ(w->local_description(utc(2026, 11, 28, 10, 5)), "Sat 2026-11-28 10:05 UTC");
  }
}

TEST(TimeWindowZone, UnknownZone) {
  auto w = TimeWindow::parse({}, {}, "Europe/Berln");
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, "window_invalid");
  EXPECT_EQ(w.error().message, "unknown time zone \"Europe/Berln\"");
}

TEST(TimeWindowZone, ImplausibleNamesRefusedBeforeLookup) {
  for (const char* bad : {"../../etc/passwd", "/etc/passwd", "Europe/../../etc/passwd",
                          "Europe//Berlin", "Europe/Berlin/", "Europe/Berlin\n", "Europe/Berlin ",
                          "Europe/Berlin.tmp", "Europe\\Berlin", "zone.tab"}) {
    SCOPED_TRACE(bad);
    expect_window_error({}, {}, bad, "invalid time zone \"" + std::string(bad) + "\"");
  }
  expect_window_error({}, {}, std::string(200, 'A'), "invalid time zone");
}

TEST(TimeWindowZone, NamesWithPlusAndMinus) {
  // Etc/GMT-3 is three hours AHEAD of UTC (POSIX sign convention).
  auto w = window({}, {"09:00-10:00"}, "Etc/GMT-3");
  EXPECT_TRUE(w.contains(utc(2026, 11, 28, 6, 30)));
  EXPECT_FALSE(w.contains(utc(2026, 11, 28, 9, 30)));
  auto p = window({}, {"09:00-10:00"}, "Etc/GMT+3");
  EXPECT_TRUE(p.contains(utc(2026, 11, 28, 12, 30)));
}

// --- rendering ---

TEST(TimeWindowDescribe, Formats) {
  EXPECT_EQ(window({"mon-fri"}, {"09:00-18:00"}, "Europe/Berlin").describe(),
            "mon-fri 09:00-18:00 Europe/Berlin");
  EXPECT_EQ(window({}, {}).describe(), "every day 00:00-24:00 UTC");
  EXPECT_EQ(window({"mon", "tue", "wed", "fri"}, {}).describe(), "mon-wed,fri 00:00-24:00 UTC");
  EXPECT_EQ(window({"fri-mon"}, {"22:00-06:00"}).describe(), "fri-mon 22:00-06:00 UTC");
  EXPECT_EQ(window({"sun", "mon", "wed"}, {}).describe(), "wed,sun-mon 00:00-24:00 UTC");
  EXPECT_EQ(window({"sat"}, {"22:00-00:00", "08:00-09:30"}).describe(),
            "sat 22:00-24:00,08:00-09:30 UTC");
  EXPECT_EQ(window({"mon-sun"}, {}).describe(), "every day 00:00-24:00 UTC");
}

TEST(TimeWindowDescribe, LocalDescription) {
  auto w = window({}, {}, "Europe/Berlin");
  EXPECT_EQ(w.local_description(utc(2026, 11, 28, 9, 5)),
            "Sat 2026-11-28 10:05 Europe/Berlin (CET)");
  EXPECT_EQ(w.local_description(utc(2026, 11, 28, 23, 30)),
            "Sun 2026-11-29 00:30 Europe/Berlin (CET)");
  EXPECT_EQ(w.local_description(utc(2026, 7, 1, 12, 0)),
            "Wed 2026-07-01 14:00 Europe/Berlin (CEST)");
}

TEST(TimeWindowClosesAfter, NextClosingMinute) {
  auto w = window({"mon-fri"}, {"09:00-18:00"});
  // Monday 2026-11-30 10:00:30 UTC: closes at 18:00 the same day.
  EXPECT_EQ(w.closes_after(utc(2026, 11, 30, 10, 0, 30)), utc(2026, 11, 30, 18, 0));
  // Outside the window: closed already.
  EXPECT_EQ(w.closes_after(utc(2026, 11, 30, 19, 0)), utc(2026, 11, 30, 19, 0));
  // Across midnight, belonging to Friday: closes Saturday 06:00.
  auto night = window({"fri"}, {"22:00-06:00"});
  EXPECT_EQ(night.closes_after(utc(2026, 12, 4, 23, 0)), utc(2026, 12, 5, 6, 0));
  // Adjacent ranges are one window: 08:00-12:00 and 12:00-14:00 close at 14:00.
  auto split = window({}, {"08:00-12:00", "12:00-14:00"});
  EXPECT_EQ(split.closes_after(utc(2026, 11, 30, 11, 0)), utc(2026, 11, 30, 14, 0));
  // A window that is always open never closes.
  EXPECT_EQ(window({}, {}).closes_after(utc(2026, 11, 30, 11, 0)), std::nullopt);
  // Wall clock in the zone: 09:00-18:00 Europe/Berlin closes at 17:00 UTC in winter.
  auto berlin = window({"mon-fri"}, {"09:00-18:00"}, "Europe/Berlin");
  EXPECT_EQ(berlin.closes_after(utc(2026, 11, 30, 10, 0)), utc(2026, 11, 30, 17, 0));
}

TEST(TimeWindowDescribe, Always) {
  EXPECT_TRUE(window({}, {}).always());
  EXPECT_TRUE(window({"mon-sun"}, {"00:00-24:00"}).always());
  EXPECT_TRUE(window({}, {"00:00-12:00", "12:00-24:00"}).always());
  EXPECT_TRUE(window({}, {"18:00-09:00", "09:00-18:00"}).always());
  EXPECT_FALSE(window({}, {"00:00-23:59"}).always());
  EXPECT_FALSE(window({}, {"18:00-09:00", "09:01-18:00"}).always());
  EXPECT_FALSE(window({"mon-sat"}, {}).always());
}

// --- instants ---

TEST(ParseInstant, AcceptedForms) {
  const auto want = utc(2026, 11, 28, 10, 5);
  for (const char* text :
       {"2026-11-28T10:05:00Z", "2026-11-28T11:05:00+01:00", "2026-11-28T05:05:00-05:00",
        "2026-11-28T10:05Z", "2026-11-28 10:05", "2026-11-28 10:05:00", "2026-11-28T10:05",
        "@1795860300", "2026-11-28T15:35+05:30"}) {
    SCOPED_TRACE(text);
    auto t = parse_instant(text);
    ASSERT_TRUE(t.has_value()) << t.error().message;
    EXPECT_EQ(*t, want);
  }
}

TEST(ParseInstant, FieldsAndOffsets) {
  EXPECT_EQ(parse_instant("2026-11-28T10:05:07Z").value(), utc(2026, 11, 28, 10, 5, 7));
  EXPECT_EQ(parse_instant("2026-11-29T00:30+05:00").value(), utc(2026, 11, 28, 19, 30));
  EXPECT_EQ(parse_instant("2028-02-29 23:59:59").value(), utc(2028, 2, 29, 23, 59, 59));
  EXPECT_EQ(parse_instant("@0").value(), utc(1970, 1, 1, 0, 0));
  EXPECT_EQ(parse_instant("1970-01-01T00:00:00Z").value(), utc(1970, 1, 1, 0, 0));
  EXPECT_EQ(parse_instant("2199-12-31T23:59:59Z").value(), utc(2199, 12, 31, 23, 59, 59));
}

TEST(ParseInstant, Refused) {
  for (const char* bad : {"",
                          "2026-13-01T00:00Z",
                          "2026-00-01T00:00Z",
                          "2026-02-30T00:00Z",
                          "2027-02-29 10:00",
                          "2026-11-31 10:00",
                          "2026-11-00 10:00",
                          "2026-11-28T24:00Z",
                          "2026-11-28T10:60Z",
                          "2026-11-28T10:05:60Z",
                          "2026-11-28T10:05:00Zjunk",
                          "2026-11-28T10:05:00Z ",
                          "2026-11-28T10:05:00+0100",
                          "2026-11-28T10:05:00+01",
                          "2026-11-28T10:05+24:00",
                          "2026-11-28",
                          "26-11-28 10:05",
                          "2026-1-28 10:05",
                          "2026-11-28X10:05",
                          "2026-11-28T10:5Z",
                          "2026-11-28T10:05:0Z",
                          " 2026-11-28 10:05",
                          "2026/11/28 10:05",
                          "@",
                          "@12a",
                          "@-5",
                          "@ 5",
                          "@99999999999",
                          "@7258118400",
                          "1795860300",
                          "1969-12-31T23:59:59Z",
                          "1970-01-01T00:30+01:00",
                          "2200-01-01T00:00Z"}) {
    SCOPED_TRACE(bad);
    auto t = parse_instant(bad);
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.error().code, "time_invalid");
    EXPECT_THAT(t.error().message, HasSubstr("invalid time \"" + std::string(bad) + "\""));
    EXPECT_THAT(t.error().message, HasSubstr("2026-11-28T10:05:00+01:00"));
    EXPECT_THAT(t.error().message, HasSubstr("@UNIX_SECONDS"));
  }
}

}  // namespace
}  // namespace touchgate::policy
