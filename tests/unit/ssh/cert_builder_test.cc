#include "ssh/cert_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ssh/certificate.h"
#include "ssh/digest.h"
#include "ssh/key.h"
#include "ssh/signature.h"
#include "ssh/validate.h"
#include "ssh/writer.h"
#include "tests/unit/ssh/test_signer.h"
#include "tests/unit/test_util.h"

namespace touchgate::ssh {
namespace {

using ::testing::HasSubstr;
using testing::TestSigner;

constexpr uint64_t kNow = 1700000000;  // 2023-11-14T22:13:20Z

std::array<uint8_t, 32> fixed_nonce() {
  std::array<uint8_t, 32> n{};
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(0xa0 + i);
  return n;
}

const std::vector<KeyType> kTypes = {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kEcdsaP384,
                                     KeyType::kEcdsaP521, KeyType::kRsa};

// signer is one generated key per type for the whole test program (RSA generation is slow).
TestSigner& signer(KeyType type, int which = 0) {
  static std::map<std::pair<KeyType, int>, std::unique_ptr<TestSigner>> keys;
  auto& k = keys[{type, which}];
  if (!k) k = TestSigner::generate(type);
  EXPECT_NE(k, nullptr);
  return *k;
}

CertRequest request(KeyType key_type = KeyType::kEd25519) {
  CertRequest r;
  r.key = signer(key_type, 1).public_key();
  r.serial = 0x0102030405060708;
  r.key_id = "alice@gateway conn=ab-1";
  r.principals = {"alice", "deploy"};
  r.valid_after = kNow - 5;
  r.valid_before = kNow + 60;
  r.critical_options = {{"source-address", "10.0.0.1/32,192.168.7.0/24"},
                        {"force-command", "/usr/bin/rsync --server"}};
  r.extensions = {
      {"permit-pty", ""}, {"permit-agent-forwarding", ""}, {"group@example.com", "ops"}};
  return r;
}

std::vector<uint8_t> one_string(std::string_view s) {
  return Writer().string(s).take();
}

TrustPolicy trusting(const Signer& ca) {
  TrustPolicy p;
  auto key = parse_public_key(ca.public_key());
  EXPECT_TRUE(key.has_value());
  p.cas.push_back({"minting", key ? *key : PublicKey{}});
  p.permit_force_command = true;
  return p;
}

ValidationContext context(const std::string& login = "alice") {
  ValidationContext ctx;
  ctx.login = login;
  ctx.client = *IpAddress::parse("192.168.7.7");
  ctx.now = kNow;
  return ctx;
}

std::string refused(const CertRequest& req, Signer& ca, const std::string& code) {
  const auto nonce = fixed_nonce();
  auto r = build_user_certificate(req, ca, nonce);
  EXPECT_FALSE(r.has_value()) << code;
  if (r) return {};
  EXPECT_EQ(r.error().code, code) << r.error().message;
  return r.error().message;
}

TEST(CertBuilderTest, RoundTripsThroughParserAndValidatorForEveryCaAndKeyType) {
  for (KeyType ca_type : kTypes) {
    for (KeyType key_type : kTypes) {
      SCOPED_TRACE(std::string(key_type_name(ca_type)) + " signs " +
                   std::string(key_type_name(key_type)));
      TestSigner& ca = signer(ca_type);
      const auto nonce = fixed_nonce();
      const CertRequest req = request(key_type);
      auto blob = build_user_certificate(req, ca, nonce);
      ASSERT_TRUE(blob.has_value()) << blob.error().code << ": " << blob.error().message;

      auto c = parse_certificate(*blob);
      ASSERT_TRUE(c.has_value()) << c.error().message;
      EXPECT_EQ(c->type_name, cert_type_name(key_type));
      EXPECT_EQ(c->nonce, std::vector<uint8_t>(nonce.begin(), nonce.end()));
      EXPECT_EQ(c->key.blob, req.key);
      EXPECT_EQ(c->serial, req.serial);
      EXPECT_EQ(c->cert_type, kCertTypeUser);
      EXPECT_EQ(c->key_id, req.key_id);
      EXPECT_EQ(c->principals, req.principals);
      EXPECT_EQ(c->valid_after, req.valid_after);
      EXPECT_EQ(c->valid_before, req.valid_before);
      EXPECT_EQ(c->signature_key, ca.public_key());
      EXPECT_TRUE(verify_signature(c->ca_key, c->signature, c->signed_data()).has_value());

      auto v = validate_certificate(*blob, trusting(ca), context());
      ASSERT_TRUE(v.has_value()) << v.error().code << ": " << v.error().message;
      EXPECT_EQ(v->ca_name(), "minting");
      EXPECT_EQ(v->key_id(), req.key_id);
      EXPECT_EQ(v->serial(), req.serial);
      EXPECT_EQ(v->key_type(), key_type);
      EXPECT_EQ(v->force_command(), "/usr/bin/rsync --server");
      EXPECT_TRUE(v->permit_pty());
      EXPECT_TRUE(v->permit_agent_forwarding());
      EXPECT_FALSE(v->permit_port_forwarding());
    }
  }
}

TEST(CertBuilderTest, OptionsAndExtensionsAreSortedAndEncodedAsOpenSsh) {
  CertRequest req = request();
  req.critical_options.push_back({"verify-required", ""});
  const auto nonce = fixed_nonce();
  auto blob = build_user_certificate(req, signer(KeyType::kEd25519), nonce);
  ASSERT_TRUE(blob.has_value()) << blob.error().message;
  auto c = parse_certificate(*blob);
  ASSERT_TRUE(c.has_value()) << c.error().message;

  ASSERT_EQ(c->critical_options.size(), 3u);
  EXPECT_EQ(c->critical_options[0].name, "force-command");
  EXPECT_EQ(c->critical_options[0].data, one_string("/usr/bin/rsync --server"));
  EXPECT_EQ(c->critical_options[1].name, "source-address");
  EXPECT_EQ(c->critical_options[1].data, one_string("10.0.0.1/32,192.168.7.0/24"));
  EXPECT_EQ(c->critical_options[2].name, "verify-required");
  EXPECT_TRUE(c->critical_options[2].data.empty());

  ASSERT_EQ(c->extensions.size(), 3u);
  EXPECT_EQ(c->extensions[0].name, "group@example.com");
  EXPECT_EQ(c->extensions[0].data, one_string("ops"));
  EXPECT_EQ(c->extensions[1].name, kExtPermitAgentForwarding);
  EXPECT_TRUE(c->extensions[1].data.empty());
  EXPECT_EQ(c->extensions[2].name, kExtPermitPty);
  EXPECT_TRUE(c->extensions[2].data.empty());
}

TEST(CertBuilderTest, SignedPartEndsAtTheCaKeyAndReservedIsEmpty) {
  const auto nonce = fixed_nonce();
  TestSigner& ca = signer(KeyType::kEcdsaP256);
  auto blob = build_user_certificate(request(), ca, nonce);
  ASSERT_TRUE(blob.has_value());
  auto c = parse_certificate(*blob);
  ASSERT_TRUE(c.has_value());
  // signed data ends with string(ca key); then exactly string(signature).
  const std::vector<uint8_t> ca_field = Writer().string(ca.public_key()).take();
  const auto signed_part = c->signed_data();
  ASSERT_GE(signed_part.size(), ca_field.size() + 4);
  EXPECT_TRUE(std::equal(ca_field.begin(), ca_field.end(),
                         signed_part.end() - static_cast<std::ptrdiff_t>(ca_field.size())));
  // the 4 bytes before it: an empty reserved string.
  const auto before = signed_part.end() - static_cast<std::ptrdiff_t>(ca_field.size()) - 4;
  EXPECT_EQ(std::vector<uint8_t>(before, before + 4), std::vector<uint8_t>(4, 0));
  EXPECT_EQ(blob->size(), c->signed_length + 4 + c->signature.size());
  EXPECT_EQ(signature_algorithm(c->signature), "ecdsa-sha2-nistp256");
}

TEST(CertBuilderTest, ForeverAndEpochValidityRoundTrip) {
  CertRequest req = request();
  req.valid_after = 0;
  req.valid_before = std::numeric_limits<uint64_t>::max();
  req.critical_options.clear();
  req.extensions.clear();
  req.key_id.clear();
  const auto nonce = fixed_nonce();
  auto blob = build_user_certificate(req, signer(KeyType::kEd25519), nonce);
  ASSERT_TRUE(blob.has_value());
  auto c = parse_certificate(*blob);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->valid_after, 0u);
  EXPECT_EQ(c->valid_before, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(c->critical_options.empty());
  EXPECT_TRUE(c->extensions.empty());
  EXPECT_EQ(c->key_id, "");
}

TEST(CertBuilderTest, RefusesInvalidRequests) {
  TestSigner& ca = signer(KeyType::kEd25519);
  CertRequest r = request();
  r.principals.clear();
  EXPECT_THAT(refused(r, ca, "cert_build_invalid"), HasSubstr("no principals"));

  r = request();
  r.valid_before = r.valid_after;
  EXPECT_THAT(refused(r, ca, "cert_build_invalid"), HasSubstr("valid_after >= valid_before"));

  r = request();
  r.critical_options.push_back({"source-address", "10.0.0.2/32"});
  EXPECT_THAT(refused(r, ca, "cert_build_invalid"), HasSubstr("repeats critical option"));

  r = request();
  r.extensions.push_back({"permit-pty", ""});
  EXPECT_THAT(refused(r, ca, "cert_build_invalid"), HasSubstr("repeats extension permit-pty"));

  r = request();
  r.critical_options.push_back({"no-such-option", "x"});
  EXPECT_THAT(refused(r, ca, "cert_build_invalid"), HasSubstr("no-such-option"));

  r = request();
  r.extensions.push_back({"permit-port-forwarding", "yes"});
  EXPECT_THAT(refused(r, ca, "cert_build_invalid"), HasSubstr("flag"));

  r = request();
  r.critical_options = {{"force-command", ""}};
  refused(r, ca, "cert_build_invalid");

  r = request();
  r.extensions.push_back({"", ""});
  refused(r, ca, "cert_build_invalid");

  r = request();
  r.key_id = std::string("a\0b", 3);
  refused(r, ca, "cert_build_invalid");

  r = request();
  r.principals.push_back(std::string(1025, 'p'));
  refused(r, ca, "cert_build_invalid");

  r = request();
  const std::vector<uint8_t> short_nonce(16, 1);
  auto built = build_user_certificate(r, ca, short_nonce);
  ASSERT_FALSE(built.has_value());
  EXPECT_EQ(built.error().code, "cert_build_invalid");
}

TEST(CertBuilderTest, RefusesUnsupportedKeys) {
  TestSigner& ca = signer(KeyType::kEd25519);
  CertRequest r = request();
  r.key = {1, 2, 3};
  refused(r, ca, "cert_build_key_unsupported");

  // A certificate is not a key that can be certified.
  const auto nonce = fixed_nonce();
  auto cert = build_user_certificate(request(), ca, nonce);
  ASSERT_TRUE(cert.has_value());
  r = request();
  r.key = *cert;
  refused(r, ca, "cert_build_key_unsupported");
}

// LyingSigner claims one key and signs with another, or fails.
class LyingSigner : public Signer {
 public:
  LyingSigner(const Signer& claimed, Signer* actual) : claimed_(claimed), actual_(actual) {}
  const std::vector<uint8_t>& public_key() const override { return claimed_.public_key(); }
  Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) override {
    if (actual_ == nullptr) return fail("pkcs11_token_missing", "the token is not inserted");
    return actual_->sign(data);
  }
  std::string describe() const override { return "lying"; }

 private:
  const Signer& claimed_;
  Signer* actual_;
};

TEST(CertBuilderTest, RefusesCaSignaturesThatDoNotBelongToTheCaKey) {
  const CertRequest req = request();
  LyingSigner other_type(signer(KeyType::kEd25519), &signer(KeyType::kEcdsaP256));
  EXPECT_THAT(refused(req, other_type, "cert_build_signature_mismatch"),
              HasSubstr("ecdsa-sha2-nistp256"));

  LyingSigner other_curve(signer(KeyType::kEcdsaP384), &signer(KeyType::kEcdsaP256));
  refused(req, other_curve, "cert_build_signature_mismatch");

  LyingSigner other_key(signer(KeyType::kEd25519), &signer(KeyType::kEd25519, 1));
  refused(req, other_key, "cert_build_bad_signature");

  LyingSigner broken(signer(KeyType::kEd25519), nullptr);
  refused(req, broken, "pkcs11_token_missing");

  auto sha1 = TestSigner::generate(KeyType::kRsa);
  ASSERT_NE(sha1, nullptr);
  sha1->set_rsa_hash(TestSigner::RsaHash::kSha1);
  refused(req, *sha1, "cert_build_signature_mismatch");
  sha1->set_rsa_hash(TestSigner::RsaHash::kSha256);
  const auto nonce = fixed_nonce();
  auto ok = build_user_certificate(req, *sha1, nonce);
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(validate_certificate(*ok, trusting(*sha1), context()).has_value());
}

TEST(CertBuilderTest, CertificateLineParsesBack) {
  const auto nonce = fixed_nonce();
  auto blob = build_user_certificate(request(), signer(KeyType::kEd25519), nonce);
  ASSERT_TRUE(blob.has_value());
  const std::string line = certificate_line(*blob, "alice@gateway");
  EXPECT_TRUE(line.starts_with("ssh-ed25519-cert-v01@openssh.com AAAA")) << line;
  EXPECT_TRUE(line.ends_with(" alice@gateway")) << line;
  auto parsed = parse_key_line(line);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->blob, *blob);
  EXPECT_EQ(parsed->comment, "alice@gateway");
  EXPECT_FALSE(certificate_line(*blob, "").ends_with(" "));
}

// -- stock ssh-keygen reads what we mint ------------------------------------------------------

using ::touchgate::testing::run_command;
using ::touchgate::testing::RunResult;
using ::touchgate::testing::TempDir;
using ::touchgate::testing::write_all;

TEST(CertBuilderTest, SshKeygenListsWhatWasMinted) {
  TempDir dir("tg-cert-builder");
  for (KeyType ca_type : kTypes) {
    SCOPED_TRACE(key_type_name(ca_type));
    TestSigner& ca = signer(ca_type);
    CertRequest req = request(KeyType::kEcdsaP256);
    req.serial = 4242;
    req.critical_options.push_back({"verify-required", ""});
    req.extensions = {{"permit-pty", ""}, {"permit-port-forwarding", ""}};
    const auto nonce = fixed_nonce();
    auto blob = build_user_certificate(req, ca, nonce);
    ASSERT_TRUE(blob.has_value()) << blob.error().message;
    const std::string path =
        (dir.path() / ("cert-" + std::string(key_type_name(ca_type)) + ".pub")).string();
    write_all(path, certificate_line(*blob, "minted") + "\n");

    const RunResult r = run_command("TZ=UTC ssh-keygen -L -f '" + path + "' 2>&1");
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string& out = r.output;
    EXPECT_THAT(out, HasSubstr("Type: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate"));
    EXPECT_THAT(out, HasSubstr("Public key: ECDSA-CERT " + fingerprint_sha256(req.key)));
    EXPECT_THAT(out, HasSubstr("Signing CA: "));
    EXPECT_THAT(out, HasSubstr(fingerprint_sha256(ca.public_key())));
    EXPECT_THAT(out, HasSubstr("Key ID: \"alice@gateway conn=ab-1\""));
    EXPECT_THAT(out, HasSubstr("Serial: 4242\n"));
    EXPECT_THAT(out, HasSubstr("Valid: from 2023-11-14T22:13:15 to 2023-11-14T22:14:20\n"));
    EXPECT_THAT(out, HasSubstr("Principals: \n                alice\n                deploy\n"));
    EXPECT_THAT(out, HasSubstr("Critical Options: \n"
                               "                force-command /usr/bin/rsync --server\n"
                               "                source-address 10.0.0.1/32,192.168.7.0/24\n"
                               "                verify-required\n"));
    EXPECT_THAT(out, HasSubstr("Extensions: \n                permit-port-forwarding\n"
                               "                permit-pty\n"));
  }
}

}  // namespace
}  // namespace touchgate::ssh
