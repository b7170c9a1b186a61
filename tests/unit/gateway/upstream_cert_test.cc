#include "gateway/upstream_cert.h"

#include <gtest/gtest.h>

#include <ctime>

#include "../ssh/test_signer.h"
#include "ssh/certificate.h"
#include "ssh/validate.h"

namespace touchgate::gateway {
namespace {

TEST(UpstreamCertTest, MintsAShortLivedCertificateWithOnlyWhatIsAsked) {
  auto ca = ssh::testing::TestSigner::generate(ssh::KeyType::kEcdsaP256);
  ASSERT_NE(ca, nullptr);
  MintRequest req;
  req.connection = "0123456789abcdef-7";
  req.principal = "alice";
  req.remote_user = "deploy";
  req.source_ip = "127.0.0.1";
  req.pty = true;
  req.lifetime = std::chrono::seconds(60);
  auto creds = mint_upstream_credentials(*ca, req);
  ASSERT_TRUE(creds.has_value()) << creds.error().message;
  ASSERT_NE(creds->key, nullptr);
  EXPECT_EQ(creds->key_id, "touchgate:0123456789abcdef-7:alice");
  EXPECT_EQ(creds->cert_line.rfind("ssh-ed25519-cert-v01@openssh.com ", 0), 0u);

  auto c = ssh::parse_certificate(creds->cert);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->key_id, creds->key_id);
  EXPECT_EQ(c->serial, creds->serial);
  EXPECT_LT(c->serial, uint64_t{1} << 63);
  EXPECT_EQ(c->principals, std::vector<std::string>{"deploy"});
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  EXPECT_LE(c->valid_after, now);
  EXPECT_LE(c->valid_before, now + 60);
  EXPECT_GT(c->valid_before, now + 50);
  ASSERT_EQ(c->critical_options.size(), 1u);
  EXPECT_EQ(c->critical_options[0].name, "source-address");
  ASSERT_EQ(c->extensions.size(), 1u);
  EXPECT_EQ(c->extensions[0].name, "permit-pty");  // no agent, X11 or port forwarding
  EXPECT_EQ(c->signature_key, ca->public_key());

  // A second login gets another key and another serial.
  auto again = mint_upstream_credentials(*ca, req);
  ASSERT_TRUE(again.has_value());
  EXPECT_NE(again->serial, creds->serial);
  EXPECT_NE(again->cert, creds->cert);

  req.pty = false;
  req.source_ip.clear();
  auto bare = mint_upstream_credentials(*ca, req);
  ASSERT_TRUE(bare.has_value());
  auto b = ssh::parse_certificate(bare->cert);
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->extensions.empty());
  EXPECT_TRUE(b->critical_options.empty());
}

}  // namespace
}  // namespace touchgate::gateway
