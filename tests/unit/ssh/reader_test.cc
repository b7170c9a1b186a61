#include "ssh/reader.h"

#include <gtest/gtest.h>

#include <vector>

#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

TEST(ReaderTest, ReadsIntegersBigEndian) {
  std::vector<uint8_t> b = {0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x2a, 0x07};
  Reader r(b);
  uint32_t a = 0;
  uint64_t c = 0;
  uint8_t d = 0;
  ASSERT_TRUE(r.u32(&a));
  ASSERT_TRUE(r.u64(&c));
  ASSERT_TRUE(r.u8(&d));
  EXPECT_EQ(a, 0x01020304u);
  EXPECT_EQ(c, 42u);
  EXPECT_EQ(d, 7);
  EXPECT_TRUE(r.finish());
  EXPECT_FALSE(r.u8(&d));
}

TEST(ReaderTest, ShortInputConsumesNothing) {
  std::vector<uint8_t> b = {0, 0, 0, 5, 'a', 'b'};
  Reader r(b);
  Bytes s;
  EXPECT_FALSE(r.string(&s));
  EXPECT_EQ(r.offset(), 0u);
  uint64_t v = 0;
  EXPECT_FALSE(r.u64(&v));
  EXPECT_EQ(r.remaining(), 6u);
}

TEST(ReaderTest, StringCapIsEnforced) {
  auto b = Writer().string(std::string_view("hello")).take();
  Reader r(b);
  Bytes s;
  EXPECT_FALSE(r.string(&s, 4));
  EXPECT_TRUE(r.string(&s, 5));
  EXPECT_EQ(as_text(s), "hello");
}

TEST(ReaderTest, HugeLengthIsRefusedWithoutOverflow) {
  std::vector<uint8_t> b = {0xff, 0xff, 0xff, 0xff, 'x'};
  Reader r(b);
  Bytes s;
  EXPECT_FALSE(r.string(&s, 0xffffffffu));
}

TEST(ReaderTest, TextRefusesEmbeddedNul) {
  std::vector<uint8_t> b = {0, 0, 0, 3, 'a', 0, 'b'};
  Reader r(b);
  std::string_view t;
  EXPECT_FALSE(r.text(&t));
  EXPECT_EQ(r.offset(), 0u);
}

TEST(ReaderTest, NestedReaderSeesOnlyItsString) {
  Writer inner;
  inner.u32(7);
  auto b = Writer().string(inner.bytes()).u8(9).take();
  Reader r(b);
  Reader sub;
  ASSERT_TRUE(r.nested(&sub));
  uint32_t v = 0;
  ASSERT_TRUE(sub.u32(&v));
  EXPECT_EQ(v, 7u);
  EXPECT_TRUE(sub.finish());
  EXPECT_FALSE(r.finish());
}

TEST(ReaderTest, MpintRulesFollowRfc4251) {
  auto ok = [](std::vector<uint8_t> body) {
    auto b = Writer().string(std::span<const uint8_t>(body)).take();
    Reader r(b);
    Bytes m;
    return r.mpint(&m) ? std::optional<std::vector<uint8_t>>(std::vector<uint8_t>(m.begin(), m.end()))
                       : std::nullopt;
  };
  EXPECT_EQ(ok({}), std::vector<uint8_t>{});                       // zero
  EXPECT_EQ(ok({0x00, 0x80}), (std::vector<uint8_t>{0x80}));       // padded positive
  EXPECT_EQ(ok({0x7f}), (std::vector<uint8_t>{0x7f}));
  EXPECT_FALSE(ok({0x80}).has_value());                            // negative
  EXPECT_FALSE(ok({0x00, 0x7f}).has_value());                      // non-minimal
  EXPECT_FALSE(ok({0x00}).has_value());                            // non-minimal zero
}

TEST(WriterTest, MpintRoundTrips) {
  std::vector<uint8_t> mag = {0x00, 0x00, 0xff, 0x01};
  auto b = Writer().mpint(mag).take();
  EXPECT_EQ(b, (std::vector<uint8_t>{0, 0, 0, 3, 0x00, 0xff, 0x01}));
  Reader r(b);
  Bytes m;
  ASSERT_TRUE(r.mpint(&m));
  EXPECT_EQ(std::vector<uint8_t>(m.begin(), m.end()), (std::vector<uint8_t>{0xff, 0x01}));
}

}  // namespace
}  // namespace touchgate::ssh
