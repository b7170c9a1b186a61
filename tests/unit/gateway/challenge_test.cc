// The MFA challenge text: what a touch signs must name everything it authorizes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/mfa_dialog.h"
#include "ssh/validate.h"
#include "tests/unit/ssh/cert_data.h"

namespace touchgate::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ssh::VerifiedCertificate certificate() {
  ssh::TrustPolicy trust;
  auto ca = ssh::parse_key_line(ssh::testdata::read_text("ca_ed25519.pub"));
  EXPECT_TRUE(ca.has_value());
  auto key = ssh::parse_public_key(ca->blob);
  EXPECT_TRUE(key.has_value());
  trust.cas.push_back({"sso", *key});
  ssh::ValidationContext ctx;
  ctx.login = "alice";
  ctx.now = 1700000000;
  auto v = ssh::validate_certificate(ssh::testdata::read_blob("cert_ed25519-cert.pub"), trust, ctx);
  EXPECT_TRUE(v.has_value()) << (v ? "" : v.error().message);
  return *v;
}

TEST(ChallengeTest, BindsEverythingTheTouchAuthorizes) {
  auto cert = certificate();
  ChallengeContext ctx{"gw1", "touchgate-mfa@gw1", "0123abcd-7", "192.0.2.1:5555", "alice",
                       &cert, "db1 10.0.0.5:22", 0, ""};
  std::array<uint8_t, 32> nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(i);
  std::string m = challenge_message(ctx, nonce, 1700000000);
  EXPECT_EQ(m.rfind("touchgate-mfa-v1\n", 0), 0u);
  EXPECT_THAT(m, HasSubstr("gateway: gw1\n"));
  EXPECT_THAT(m, HasSubstr("namespace: touchgate-mfa@gw1\n"));
  EXPECT_THAT(m, HasSubstr("nonce: 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"));
  EXPECT_THAT(m, HasSubstr("connection: 0123abcd-7\n"));
  EXPECT_THAT(m, HasSubstr("client: 192.0.2.1:5555\n"));
  EXPECT_THAT(m, HasSubstr("principal: alice\n"));
  EXPECT_THAT(m, HasSubstr("certificate-ca: sso\n"));
  EXPECT_THAT(m, HasSubstr("certificate-key-id: alice-ed25519\n"));
  EXPECT_THAT(m, HasSubstr("certificate-serial: 100\n"));
  EXPECT_THAT(m, HasSubstr("certificate-key: " + cert.key_fingerprint() + "\n"));
  EXPECT_THAT(m, HasSubstr("target: db1 10.0.0.5:22\n"));
  EXPECT_THAT(m, HasSubstr("time: 2023-11-14T22:13:20Z\n"));

  // Another nonce, another message.
  nonce[0] ^= 1;
  EXPECT_NE(challenge_message(ctx, nonce, 1700000000), m);
}

TEST(ChallengeTest, ValuesCannotForgeLines) {
  auto cert = certificate();
  ChallengeContext ctx{"gw1", "touchgate-mfa@gw1", "x-1", "192.0.2.1:5555",
                       "alice\ntarget: prod", &cert, "db1%0A 10.0.0.5:22", 0, ""};
  std::string m = challenge_message(ctx, {}, 0);
  EXPECT_THAT(m, HasSubstr("principal: alice%0Atarget: prod\n"));
  EXPECT_THAT(m, HasSubstr("target: db1%250A 10.0.0.5:22\n"));
  EXPECT_THAT(m, Not(HasSubstr("\ntarget: prod\n")));
}

}  // namespace
}  // namespace touchgate::gateway
