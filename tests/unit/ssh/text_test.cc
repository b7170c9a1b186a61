#include "ssh/text.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

namespace touchgate::ssh {
namespace {

// reference is append_json_string written the slow, obvious way: one byte at a time.
std::string reference(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (const size_t n = utf8_sequence_length(s, i); n != 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out + "\"";
}

std::string escaped(std::string_view s) {
  std::string out = "prefix:";
  append_json_string(out, s);
  return out.substr(7);
}

TEST(TextTest, EscapesEveryKindOfByte) {
  EXPECT_EQ(escaped(""), "\"\"");
  EXPECT_EQ(escaped("plain text"), "\"plain text\"");
  EXPECT_EQ(escaped("a\"b\\c\nd\x01\x7f"), R"("a\"b\\c\u000ad\u0001\u007f")");
  EXPECT_EQ(escaped("caf\xc3\xa9"), "\"caf\xc3\xa9\"");          // UTF-8 kept
  EXPECT_EQ(escaped("x\xff" "y"), "\"x\xef\xbf\xbdy\"");          // not UTF-8: U+FFFD
  EXPECT_EQ(escaped("\xe2\x82"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");  // truncated sequence
}

// A special byte at every position of strings long enough for the 16-byte fast path, and at
// both ends of every block.
TEST(TextTest, SpecialBytesAtEveryPositionOfLongRuns) {
  const std::string specials[] = {"\"", "\\", "\n", std::string(1, '\0'), "\x1f", "\x7f",
                                  "\x80", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xed\xa0\x80", " ", "~"};
  for (size_t len : {15u, 16u, 17u, 31u, 32u, 33u, 64u, 100u}) {
    for (size_t pos = 0; pos <= len; ++pos) {
      for (const auto& sp : specials) {
        std::string s(len, 'a');
        s.insert(pos, sp);
        ASSERT_EQ(escaped(s), reference(s)) << "len " << len << " pos " << pos;
      }
    }
  }
}

// Long runs of bytes to escape (binary output) span many blocks of the escape buffer.
TEST(TextTest, LongRunsOfEscapedBytes) {
  const std::string nuls(10001, '\0');
  std::string expected = "\"";
  for (size_t k = 0; k < nuls.size(); ++k) expected += "\\u0000";
  EXPECT_EQ(escaped(nuls), expected + "\"");
  std::string mixed;
  for (int k = 0; k < 3000; ++k) mixed += k % 3 == 0 ? "\xff" : (k % 3 == 1 ? "\"" : "\x01");
  mixed += "tail \xc3\xa9";
  EXPECT_EQ(escaped(mixed), reference(mixed));
}

TEST(TextTest, MatchesTheByteByByteReferenceOnRandomInput) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string s(rng() % 300, '\0');
    const int mode = round % 3;  // mostly ASCII, mostly printable, anything
    for (auto& c : s) {
      const uint32_t r = rng();
      if (mode == 0) {
        c = static_cast<char>(r % 64 == 0 ? r >> 8 : 0x20 + (r >> 8) % 95);
      } else if (mode == 1) {
        c = static_cast<char>(r % 4 == 0 ? 0xc0 + (r >> 8) % 0x40 : 0x80 + (r >> 8) % 0x40);
      } else {
        c = static_cast<char>(r);
      }
    }
    ASSERT_EQ(escaped(s), reference(s)) << "round " << round;
  }
}

}  // namespace
}  // namespace touchgate::ssh
