#include "audit/line.h"

#include <string>

#include <gtest/gtest.h>

#include "audit/record.h"

namespace touchgate::audit {
namespace {

const std::string kZ(kGenesisHash);

std::string good() {
  Record r("login");
  r.str("user", "alice").u64("n", 18446744073709551615ull).i64("m", -9223372036854775807ll - 1);
  r.boolean("b", false);
  auto l = format_line(5, std::chrono::system_clock::time_point{}, kZ, r).text;
  l.pop_back();
  return l;
}

TEST(LineTest, ParsesWhatTheWriterWrites) {
  ParsedLine p;
  const std::string line = good();
  ASSERT_EQ(parse_line(line, &p), nullptr);
  EXPECT_EQ(p.seq, 5u);
  EXPECT_EQ(p.event, "login");
  EXPECT_EQ(p.prev, kZ);
  EXPECT_EQ(p.fields.size(), 9u);
  EXPECT_EQ(record_hash(p.hashed), p.hash);
  ASSERT_NE(p.find("b"), nullptr);
  EXPECT_EQ(p.find("b")->kind, ValueKind::kBoolean);
}

TEST(LineTest, RefusesAnythingElse) {
  ParsedLine p;
  const std::string line = good();
  const std::string head =
      "{\"seq\":1,\"ts\":\"1970-01-01T00:00:00.000Z\",\"prev\":\"" + kZ + "\",\"event\":\"e\"";
  const std::string tail = ",\"hash\":\"" + kZ + "\"}";
  EXPECT_EQ(parse_line(head + tail, &p), nullptr);
  const char* bad[] = {
      ",\"a\":01",                    // leading zero
      ",\"a\":-0",                    // negative zero
      ",\"a\":1.5",                   // not an integer
      ",\"a\":18446744073709551616",  // too big
      ",\"a\":-9223372036854775809",  // too small
      ",\"a\":\"\\n\"",               // non-canonical escape
      ",\"a\":\"\\u0041\"",           // escape of a printable character
      ",\"a\":\"\x01\"",              // raw control character
      ",\"a\":\"\xff\"",              // not UTF-8
      ",\"a\":null",                  // not a value we write
      ",\"a\":{}",                    // no nesting
      ", \"a\":1",                    // whitespace
      ",\"A\":1",                     // bad name
      ",\"seq\":2",                   // duplicate
      ",\"a\":\"x",                   // unterminated
  };
  for (const char* b : bad) EXPECT_NE(parse_line(head + b + tail, &p), nullptr) << b;
  EXPECT_NE(parse_line(line + " ", &p), nullptr);
  EXPECT_NE(parse_line(line.substr(0, line.size() - 1), &p), nullptr);
  EXPECT_NE(parse_line("", &p), nullptr);
  EXPECT_NE(parse_line("{}", &p), nullptr);
  // Fixed places: seq first, hash last.
  EXPECT_NE(parse_line("{\"ts\":\"1970-01-01T00:00:00.000Z\",\"seq\":1,\"prev\":\"" + kZ +
                           "\",\"event\":\"e\"" + tail,
                       &p),
            nullptr);
  EXPECT_NE(parse_line(head + ",\"hash\":\"" + kZ + "\",\"a\":1}", &p), nullptr);
  EXPECT_NE(parse_line(std::string(kMaxLine + 1, 'x'), &p), nullptr);
}

}  // namespace
}  // namespace touchgate::audit
