#include "audit/record.h"

#include <openssl/sha.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "audit/line.h"

namespace touchgate::audit {
namespace {

std::string sha256_hex(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

const auto kTime = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796032800123));

TEST(RecordTest, LineHasFixedFieldOrderAndHashCoversEverythingBeforeIt) {
  Record r("connection_accepted");
  r.str("peer", "192.0.2.7:5555").u64("conn", 7).i64("delta", -3).boolean("ok", true);
  const auto line = format_line(1, kTime, kGenesisHash, r);
  const std::string body =
      "{\"seq\":1,\"ts\":\"2026-11-30T10:00:00.123Z\",\"prev\":\"" + std::string(kGenesisHash) +
      "\",\"event\":\"connection_accepted\",\"peer\":\"192.0.2.7:5555\",\"conn\":7,\"delta\":-3,"
      "\"ok\":true";
  // The hash is computed here independently with OpenSSL over the documented bytes.
  const std::string hash = sha256_hex(body);
  EXPECT_EQ(line.hash, hash);
  EXPECT_EQ(line.text, body + ",\"hash\":\"" + hash + "\"}\n");
}

TEST(RecordTest, StringsAreEscapedCanonically) {
  Record r("x");
  r.str("s", std::string("a\"b\\c\n\x01\x7f\xc3\xa9\xff"
                         "d",
                         12));
  EXPECT_EQ(r.fields(),
            ",\"s\":\"a\\\"b\\\\c\\u000a\\u0001\\u007f\xc3\xa9\xef\xbf\xbd"
            "d\"");
  const auto line = format_line(3, kTime, kGenesisHash, r);
  ParsedLine p;
  ASSERT_EQ(parse_line(std::string_view(line.text).substr(0, line.text.size() - 1), &p), nullptr);
  EXPECT_EQ(unescape_string(p.find("s")->raw),
            "a\"b\\c\n\x01\x7f\xc3\xa9\xef\xbf\xbd"
            "d");
}

TEST(RecordTest, InvalidNamesMakeTheRecordInvalid) {
  EXPECT_TRUE(Record("ok_1").str("a_b", "x").valid());
  EXPECT_FALSE(Record("Bad").valid());
  EXPECT_FALSE(Record("").valid());
  EXPECT_FALSE(Record("x").str("seq", "1").valid());
  EXPECT_FALSE(Record("x").str("hash", "1").valid());
  EXPECT_FALSE(Record("x").u64("a", 1).u64("a", 2).valid());
  EXPECT_FALSE(Record("x").str("a\"", "1").valid());
}

TEST(RecordTest, TimestampIsUtcWithMilliseconds) {
  EXPECT_EQ(format_timestamp(kTime), "2026-11-30T10:00:00.123Z");
  EXPECT_EQ(format_timestamp(std::chrono::system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace touchgate::audit
