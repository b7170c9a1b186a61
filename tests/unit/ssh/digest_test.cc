#include "ssh/digest.h"

#include <gtest/gtest.h>

#include "ssh/reader.h"

namespace touchgate::ssh {
namespace {

TEST(DigestTest, Base64RoundTripsAllLengths) {
  std::vector<uint8_t> data;
  for (int n = 0; n < 40; ++n) {
    auto enc = base64_encode(data);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(*dec, data);
    auto dec2 = base64_decode(base64_encode_unpadded(data));
    ASSERT_TRUE(dec2.has_value());
    EXPECT_EQ(*dec2, data);
    data.push_back(static_cast<uint8_t>(n * 37 + 11));
  }
}

TEST(DigestTest, Base64KnownVectors) {
  EXPECT_EQ(base64_encode(as_bytes("foobar")), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(as_bytes("fooba")), "Zm9vYmE=");
  EXPECT_EQ(base64_encode(as_bytes("f")), "Zg==");
}

TEST(DigestTest, Base64RefusesGarbage) {
  EXPECT_FALSE(base64_decode("Zm9v YmFy").has_value());
  EXPECT_FALSE(base64_decode("Z").has_value());
  EXPECT_FALSE(base64_decode("Zh==").has_value());  // non-zero unused bits
  EXPECT_FALSE(base64_decode("Zg=").has_value());
  EXPECT_FALSE(base64_decode("Zm9v!").has_value());
}

TEST(DigestTest, FingerprintMatchesOpenSshFormat) {
  // SHA256 of the empty string, as OpenSSH would print it.
  EXPECT_EQ(fingerprint_sha256({}), "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
}

TEST(DigestTest, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal(as_bytes("abc"), as_bytes("abc")));
  EXPECT_FALSE(constant_time_equal(as_bytes("abc"), as_bytes("abd")));
  EXPECT_FALSE(constant_time_equal(as_bytes("abc"), as_bytes("ab")));
}

}  // namespace
}  // namespace touchgate::ssh
