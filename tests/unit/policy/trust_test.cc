#include "policy/trust.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "policy/config.h"
#include "ssh/key.h"

// Test data: tests/data/policy/, made by tests/data/policy/generate.sh with ssh-keygen.
namespace touchgate::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

const fs::path kData = fs::path(TOUCHGATE_TEST_DATA) / "policy";

TrustConfig::CaFile ca(std::string name, const std::string& file) {
  return TrustConfig::CaFile{std::move(name), kData / file, ""};
}

TrustConfig trust_of(std::vector<TrustConfig::CaFile> cas) {
  TrustConfig t;
  t.user_ca_keys = std::move(cas);
  return t;
}

// first_key_blob returns the blob of the first key line of a data file.
std::vector<uint8_t> first_key_blob(const std::string& file) {
  std::ifstream in(kData / file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto parsed = ssh::parse_key_line(line);
    EXPECT_TRUE(parsed.has_value()) << file << ": " << parsed.error().message;
    return parsed ? parsed->blob : std::vector<uint8_t>();
  }
  ADD_FAILURE() << "no key in " << file;
  return {};
}

void expect_trust_error(const TrustConfig& t, std::string_view code, std::string_view prefix,
                        std::string_view what) {
  auto p = load_trust(t);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, code);
  EXPECT_THAT(p.error().message, StartsWith(std::string(prefix)));
  EXPECT_THAT(p.error().message, HasSubstr(std::string(what)));
}

TEST(LoadTrustTest, SingleKeyFileUsesTheConfiguredName) {
  auto p = load_trust(trust_of({ca("sso", "ca_ed25519.pub")}));
  ASSERT_TRUE(p.has_value()) << p.error().message;
  ASSERT_EQ(p->cas.size(), 1u);
  EXPECT_EQ(p->cas[0].name, "sso");
  EXPECT_EQ(p->cas[0].key.type, ssh::KeyType::kEd25519);
  EXPECT_EQ(p->cas[0].key.blob, first_key_blob("ca_ed25519.pub"));
  EXPECT_EQ(p->revoked, nullptr);
  EXPECT_EQ(p->max_lifetime_seconds, 0u);
  EXPECT_EQ(p->clock_skew_seconds, 60u);
  EXPECT_FALSE(p->allow_ssh_rsa_sha1);
  EXPECT_FALSE(p->permit_force_command);
}

TEST(LoadTrustTest, SeveralKeysInOneFileAreNumbered) {
  auto p = load_trust(trust_of({ca("sso", "two_cas.pub"), ca("legacy", "ca_rsa.pub")}));
  ASSERT_TRUE(p.has_value()) << p.error().message;
  ASSERT_EQ(p->cas.size(), 3u);
  EXPECT_EQ(p->cas[0].name, "sso#1");
  EXPECT_EQ(p->cas[0].key.type, ssh::KeyType::kEd25519);
  EXPECT_EQ(p->cas[0].key.blob, first_key_blob("ca_ed25519.pub"));
  EXPECT_EQ(p->cas[1].name, "sso#2");  // on a CRLF line
  EXPECT_EQ(p->cas[1].key.type, ssh::KeyType::kEcdsaP256);
  EXPECT_EQ(p->cas[1].key.blob, first_key_blob("ca_ecdsa.pub"));
  EXPECT_EQ(p->cas[2].name, "legacy");
  EXPECT_EQ(p->cas[2].key.type, ssh::KeyType::kRsa);
}

TEST(LoadTrustTest, SettingsAreCopied) {
  TrustConfig t = trust_of({ca("sso", "ca_ed25519.pub")});
  t.max_cert_lifetime = std::chrono::hours(12);
  t.clock_skew = std::chrono::seconds(0);
  t.allow_ssh_rsa_sha1 = true;
  t.permit_force_command = true;
  auto p = load_trust(t);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->max_lifetime_seconds, 43200u);
  EXPECT_EQ(p->clock_skew_seconds, 0u);
  EXPECT_TRUE(p->allow_ssh_rsa_sha1);
  EXPECT_TRUE(p->permit_force_command);
}

TEST(LoadTrustTest, BadCaFilesAreRefused) {
  const std::string d = kData.string() + "/";
  expect_trust_error(trust_of({ca("x", "cert_as_ca.pub")}), "trust_invalid",
                     d + "cert_as_ca.pub:1: ",
                     "a certificate (ssh-ed25519-cert-v01@openssh.com) cannot be a CA key");
  expect_trust_error(trust_of({ca("x", "comments_only.pub")}), "trust_invalid",
                     d + "comments_only.pub: no CA key in file", "");
  expect_trust_error(trust_of({ca("x", "bad_line3.pub")}), "trust_invalid",
                     d + "bad_line3.pub:3: ", "");
  expect_trust_error(trust_of({ca("x", "rsa1024_ca.pub")}), "trust_invalid",
                     d + "rsa1024_ca.pub:1: ", "");
  expect_trust_error(trust_of({ca("x", "missing.pub")}), "trust_invalid",
                     d + "missing.pub: cannot open: ", "No such file or directory");
  expect_trust_error(trust_of({ca("x", "")}), "trust_invalid", d + ": not a regular file", "");
  expect_trust_error(trust_of({ca("x", "touchgate.toml")}), "trust_invalid",
                     d + "touchgate.toml:2: ", "");
  // One bad file among good ones refuses the whole set.
  expect_trust_error(trust_of({ca("a", "ca_ed25519.pub"), ca("b", "bad_line3.pub")}),
                     "trust_invalid", d + "bad_line3.pub:3: ", "");
  expect_trust_error(trust_of({}), "trust_invalid", "no user_ca_keys configured", "");
  // A security key as CA: its sk signatures would fail every certificate; refused at load.
  const fs::path sk = fs::path(TOUCHGATE_TEST_DATA) / "touch" / "sk_ed25519.pub";
  expect_trust_error(trust_of({TrustConfig::CaFile{"sk", sk, ""}}), "trust_invalid",
                     sk.string() + ":1: ",
                     "a security-key CA key (sk-ssh-ed25519@openssh.com) is not supported");
}

TEST(LoadTrustTest, BinaryKrl) {
  TrustConfig t = trust_of({ca("sso", "ca_ed25519.pub")});
  t.revoked_keys = kData / "revoked.krl";
  auto p = load_trust(t);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  ASSERT_NE(p->revoked, nullptr);
  const auto ca_blob = first_key_blob("ca_ed25519.pub");
  const auto other_ca = first_key_blob("ca_ecdsa.pub");
  EXPECT_TRUE(p->revoked->cert_revoked(ca_blob, 7, "alice"));
  EXPECT_FALSE(p->revoked->cert_revoked(ca_blob, 8, "alice"));
  EXPECT_TRUE(p->revoked->cert_revoked(ca_blob, 8, "mallory"));
  EXPECT_FALSE(p->revoked->cert_revoked(other_ca, 7, "alice"));
}

TEST(LoadTrustTest, PlainRevokedKeysFile) {
  TrustConfig t = trust_of({ca("sso", "ca_ed25519.pub")});
  t.revoked_keys = kData / "revoked_keys.txt";
  auto p = load_trust(t);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  ASSERT_NE(p->revoked, nullptr);
  EXPECT_TRUE(p->revoked->key_revoked(first_key_blob("revoked_keys.txt")));
  EXPECT_FALSE(p->revoked->key_revoked(first_key_blob("ca_ed25519.pub")));
}

TEST(LoadTrustTest, BadRevocationListsAreRefused) {
  const std::string d = kData.string() + "/";
  TrustConfig t = trust_of({ca("sso", "ca_ed25519.pub")});
  t.revoked_keys = kData / "truncated.krl";
  expect_trust_error(t, "revoked_keys_invalid", d + "truncated.krl: ", "");
  t.revoked_keys = kData / "bad_revoked.txt";
  expect_trust_error(t, "revoked_keys_invalid", d + "bad_revoked.txt: ", "line 2");
  t.revoked_keys = kData / "missing.krl";
  expect_trust_error(t, "revoked_keys_invalid", d + "missing.krl: cannot open: ", "No such file");
}

TEST(LoadTrustTest, FromAConfigFileWithRelativePaths) {
  auto c = load_config(kData / "touchgate.toml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  auto p = load_trust(c->trust);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  ASSERT_EQ(p->cas.size(), 3u);
  EXPECT_EQ(p->cas[0].name, "two_cas#1");
  EXPECT_EQ(p->cas[1].name, "two_cas#2");
  EXPECT_EQ(p->cas[2].name, "legacy");
  ASSERT_NE(p->revoked, nullptr);
  EXPECT_TRUE(p->revoked->cert_revoked(first_key_blob("ca_ed25519.pub"), 7, ""));
  EXPECT_EQ(p->max_lifetime_seconds, 12u * 3600);
  EXPECT_EQ(p->clock_skew_seconds, 90u);
  EXPECT_TRUE(p->permit_force_command);
  EXPECT_EQ(c->server.state_dir, kData / "state");
}

}  // namespace
}  // namespace touchgate::policy

namespace touchgate::policy {
namespace {

TEST(TrustOriginTest, MissingCaFileNamesTheConfigEntryFirst) {
  auto c = TrustConfig::CaFile{"sso", "/nonexistent/ca.pub", "touchgate.toml:8:17"};
  TrustConfig t;
  t.user_ca_keys.push_back(c);
  auto r = load_trust(t);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message.rfind("touchgate.toml:8:17: user_ca_keys: /nonexistent/ca.pub", 0), 0u)
      << r.error().message;
}

}  // namespace
}  // namespace touchgate::policy
