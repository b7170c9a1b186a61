#include "ssh/validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/ssh/cert_data.h"

#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ssh/digest.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

using ::testing::HasSubstr;

using testdata::fingerprints;
using testdata::kCertDir;
using testdata::read_blob;
using testdata::read_text;
constexpr uint64_t kNow = 1700000000;  // 2023-11-14, inside 20200101:20990101
constexpr uint64_t k20300101 = 1893456000;
constexpr uint64_t kForever = std::numeric_limits<uint64_t>::max();

std::vector<uint8_t> cert(const std::string& name) {
  return read_blob(name + "-cert.pub");
}

TrustedCa trusted(const std::string& name) {
  auto key = parse_public_key(read_blob(name + ".pub"));
  EXPECT_TRUE(key.has_value()) << name;
  return {name, key ? *key : PublicKey{}};
}

std::shared_ptr<const RevocationList> revocations(const std::string& file) {
  auto text = read_text(file);
  auto list = RevocationList::parse(as_bytes(text));
  EXPECT_TRUE(list.has_value()) << file << ": " << (list ? "" : list.error().message);
  return std::make_shared<const RevocationList>(list ? *list : RevocationList::empty());
}

class ValidateTest : public ::testing::Test {
 protected:
  ValidateTest() {
    for (const char* ca : {"ca_ed25519", "ca_ecdsa256", "ca_ecdsa384", "ca_ecdsa521", "ca_rsa"}) {
      trust_.cas.push_back(trusted(ca));
    }
    ctx_.login = "alice";
    ctx_.client = *IpAddress::parse("192.168.7.7");
    ctx_.now = kNow;
  }

  Result<VerifiedCertificate> validate(const std::vector<uint8_t>& blob) {
    return validate_certificate(blob, trust_, ctx_);
  }
  Result<VerifiedCertificate> validate(const std::string& name) { return validate(cert(name)); }

  // refused expects a refusal with `code` and returns its message.
  std::string refused(const std::string& name, const std::string& code) {
    return refused(cert(name), code);
  }
  std::string refused(const std::vector<uint8_t>& blob, const std::string& code) {
    auto r = validate(blob);
    EXPECT_FALSE(r.has_value());
    if (r) return {};
    EXPECT_EQ(r.error().code, code) << r.error().message;
    return r.error().message;
  }

  TrustPolicy trust_;
  ValidationContext ctx_;
};

TEST_F(ValidateTest, AcceptsEveryUserKeyType) {
  for (const char* name : {"cert_ed25519", "cert_ecdsa256", "cert_ecdsa384", "cert_ecdsa521",
                           "cert_rsa", "cert_ecdsa_sk", "cert_ed25519_sk"}) {
    SCOPED_TRACE(name);
    auto v = validate(std::string(name));
    ASSERT_TRUE(v.has_value()) << v.error().message;
    EXPECT_EQ(v->login(), "alice");
    EXPECT_EQ(v->serial(), 100u);
  }
}

TEST_F(ValidateTest, AcceptsEveryCaType) {
  for (const char* name : {"cert_by_ecdsa256", "cert_by_ecdsa384", "cert_by_ecdsa521",
                           "cert_by_rsa_sha256", "cert_by_rsa_sha512", "cert_rsa_by_rsa"}) {
    SCOPED_TRACE(name);
    auto v = validate(std::string(name));
    EXPECT_TRUE(v.has_value()) << v.error().message;
  }
}

TEST_F(ValidateTest, ReportsWhatTheCertificateSays) {
  auto fps = fingerprints();
  ctx_.login = "bob";
  auto v = validate("cert_ecdsa_sk");
  ASSERT_TRUE(v.has_value()) << v.error().message;
  EXPECT_EQ(v->login(), "bob");
  EXPECT_EQ(v->ca_name(), "ca_ed25519");
  EXPECT_EQ(v->ca_fingerprint(), fps.at("ca_ed25519.pub"));
  EXPECT_EQ(v->key_fingerprint(), fps.at("user_ecdsa_sk.pub"));
  EXPECT_EQ(v->key_fingerprint(), fps.at("cert_ecdsa_sk-cert.pub"));
  EXPECT_EQ(v->key_id(), "alice-ecdsa_sk");
  EXPECT_EQ(v->principals(), (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(v->valid_after(), 1577836800u);
  EXPECT_EQ(v->valid_before(), 4070908800u);
  EXPECT_EQ(v->key_type(), KeyType::kSkEcdsaP256);
  EXPECT_FALSE(v->verify_required());
  EXPECT_FALSE(v->no_touch_required());
  EXPECT_TRUE(v->permit_pty());
  EXPECT_TRUE(v->permit_port_forwarding());
  EXPECT_TRUE(v->permit_agent_forwarding());
  EXPECT_FALSE(v->force_command().has_value());
}

TEST_F(ValidateTest, ExtensionsAndFlags) {
  auto verify = validate("cert_verify_required");
  ASSERT_TRUE(verify) << verify.error().message;
  EXPECT_TRUE(verify->verify_required());
  auto notouch = validate("cert_no_touch");
  ASSERT_TRUE(notouch) << notouch.error().message;
  EXPECT_TRUE(notouch->no_touch_required());
  EXPECT_EQ(notouch->key_type(), KeyType::kSkEd25519);
  auto clear = validate("cert_clear");
  ASSERT_TRUE(clear) << clear.error().message;
  EXPECT_TRUE(clear->permit_pty());
  EXPECT_FALSE(clear->permit_port_forwarding());
  EXPECT_FALSE(clear->permit_agent_forwarding());
  // Unknown extensions are ignored, as sshd does.
  EXPECT_TRUE(validate("cert_unknown_extension"));
}

TEST_F(ValidateTest, MalformedAndUnsupported) {
  auto blob = cert("cert_ed25519");
  EXPECT_THAT(refused(std::vector<uint8_t>(blob.begin(), blob.end() - 1), "cert_malformed"),
              HasSubstr("certificate"));
  blob.push_back(0);
  refused(blob, "cert_malformed");
  refused(std::vector<uint8_t>{}, "cert_malformed");
  refused(read_blob("user_ed25519.pub"), "cert_unsupported_type");
  refused("cert_rsa1024", "cert_unsupported_type");
}

TEST_F(ValidateTest, HostCertificateIsRefused) {
  EXPECT_EQ(refused("cert_host", "cert_not_user_certificate"),
            "certificate is a host certificate, not a user certificate");
}

TEST_F(ValidateTest, UntrustedCaIsNamedByFingerprint) {
  auto fps = fingerprints();
  EXPECT_EQ(refused("cert_by_other", "cert_untrusted_ca"),
            "certificate signed by an untrusted CA (" + fps.at("ca_other.pub") + ")");
  trust_.cas.clear();
  refused("cert_ed25519", "cert_untrusted_ca");
}

TEST_F(ValidateTest, RotationOverlapTrustsEveryListedCa) {
  trust_.cas = {trusted("ca_other"), trusted("ca_ecdsa384")};
  EXPECT_TRUE(validate("cert_by_other"));
  auto v = validate("cert_by_ecdsa384");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->ca_name(), "ca_ecdsa384");
  refused("cert_ed25519", "cert_untrusted_ca");
}

TEST_F(ValidateTest, TamperedCertificateFailsTheSignature) {
  for (const char* name : {"cert_ed25519", "cert_by_ecdsa521", "cert_by_rsa_sha512"}) {
    SCOPED_TRACE(name);
    auto c = parse_certificate(cert(name));
    ASSERT_TRUE(c);
    // Flip a nonce byte: still well-formed, but no longer what the CA signed.
    auto blob = c->blob;
    const size_t nonce_at = 4 + c->type_name.size() + 4;
    blob[nonce_at] ^= 0x01;
    EXPECT_THAT(refused(blob, "cert_bad_signature"), HasSubstr("invalid"));
    // Add a principal and keep the CA's signature: the classic forgery.
    auto edited = *c;
    edited.principals.push_back("root");
    Writer w;
    w.string(edited.type_name).string(std::span<const uint8_t>(edited.nonce));
    Reader key(edited.key.blob);
    Bytes type;
    ASSERT_TRUE(key.string(&type));
    w.raw(key.rest()).u64(edited.serial).u32(edited.cert_type).string(edited.key_id);
    Writer principals;
    for (const auto& p : edited.principals) principals.string(p);
    w.string(principals.bytes()).u64(edited.valid_after).u64(edited.valid_before);
    Writer ext;
    for (const auto& o : edited.extensions)
      ext.string(o.name).string(std::span<const uint8_t>(o.data));
    w.string(std::string_view()).string(ext.bytes()).string(std::string_view());
    w.string(std::span<const uint8_t>(edited.signature_key))
        .string(std::span<const uint8_t>(edited.signature));
    ctx_.login = "root";
    refused(w.take(), "cert_bad_signature");
    ctx_.login = "alice";
    // Corrupt the signature itself.
    blob = c->blob;
    blob[blob.size() - 5] ^= 0x01;
    refused(blob, "cert_bad_signature");
  }
}

TEST_F(ValidateTest, Sha1CaSignatureOnlyWhenAllowed) {
  EXPECT_THAT(refused("cert_by_rsa_sha1", "cert_sha1_signature"), HasSubstr("SHA-1"));
  trust_.allow_ssh_rsa_sha1 = true;
  EXPECT_TRUE(validate("cert_by_rsa_sha1"));
}

TEST_F(ValidateTest, NotYetValidRespectsSkew) {
  EXPECT_EQ(refused("cert_not_yet_valid", "cert_not_yet_valid"),
            "certificate not valid before 2098-01-01T00:00:00Z");
  const uint64_t after = 4039372800;  // 2098-01-01
  ctx_.now = after - 10;
  trust_.clock_skew_seconds = 9;
  refused("cert_not_yet_valid", "cert_not_yet_valid");
  trust_.clock_skew_seconds = 10;
  EXPECT_TRUE(validate("cert_not_yet_valid"));
  trust_.clock_skew_seconds = 0;
  ctx_.now = after;
  EXPECT_TRUE(validate("cert_not_yet_valid"));
}

TEST_F(ValidateTest, ExpiredRespectsSkew) {
  EXPECT_EQ(refused("cert_expired", "cert_expired"), "certificate expired at 2001-01-01T00:00:00Z");
  const uint64_t before = k20300101 + 86400;
  ctx_.now = before - 1;
  EXPECT_TRUE(validate("cert_24h"));
  ctx_.now = before;
  refused("cert_24h", "cert_expired");
  trust_.clock_skew_seconds = 5;
  ctx_.now = before + 4;
  EXPECT_TRUE(validate("cert_24h"));
  ctx_.now = before + 5;
  EXPECT_EQ(refused("cert_24h", "cert_expired"), "certificate expired at 2030-01-02T00:00:00Z");
}

TEST_F(ValidateTest, ForeverDoesNotOverflow) {
  trust_.clock_skew_seconds = kForever;
  ctx_.now = kForever - 1;
  EXPECT_TRUE(validate("cert_forever"));
  ctx_.now = 0;
  EXPECT_TRUE(validate("cert_forever"));
  // A huge skew accepts any period: the sums saturate instead of wrapping around.
  ctx_.now = kNow;
  EXPECT_TRUE(validate("cert_24h"));
}

TEST_F(ValidateTest, LifetimeLimit) {
  ctx_.now = k20300101 + 3600;
  trust_.max_lifetime_seconds = 12 * 3600;
  EXPECT_EQ(refused("cert_24h", "cert_lifetime_exceeded"),
            "certificate lifetime 24h exceeds the limit of 12h");
  trust_.max_lifetime_seconds = 24 * 3600;
  EXPECT_TRUE(validate("cert_24h"));
  trust_.max_lifetime_seconds = 24 * 3600 - 1;
  EXPECT_THAT(refused("cert_24h", "cert_lifetime_exceeded"), HasSubstr("86399s"));
  trust_.max_lifetime_seconds = 90 * 24 * 3600;
  EXPECT_EQ(refused("cert_forever", "cert_lifetime_exceeded"),
            "certificate lifetime forever exceeds the limit of 2160h");
  trust_.max_lifetime_seconds = 0;
  EXPECT_TRUE(validate("cert_forever"));
}

TEST_F(ValidateTest, Principals) {
  EXPECT_EQ(refused("cert_no_principals", "cert_no_principals"),
            "certificate has no principals (valid for nobody)");
  ctx_.login = "carol";
  EXPECT_EQ(refused("cert_ed25519", "cert_principal_mismatch"),
            "certificate principals [alice, bob] do not include login carol");
  ctx_.login = "Alice";  // exact match only
  refused("cert_ed25519", "cert_principal_mismatch");
  ctx_.login = "bo\x1b[0m";
  EXPECT_THAT(refused("cert_ed25519", "cert_principal_mismatch"), HasSubstr("login bo\\x1b[0m"));
}

TEST_F(ValidateTest, UnknownCriticalOption) {
  EXPECT_EQ(refused("cert_unknown_critical", "cert_unknown_critical_option"),
            "certificate has unsupported critical option unknown-option@example.com");
}

TEST_F(ValidateTest, SourceAddress) {
  for (const char* ok : {"192.168.200.1", "10.0.0.1", "::ffff:10.0.0.1", "2001:db8::42"}) {
    ctx_.client = *IpAddress::parse(ok);
    EXPECT_TRUE(validate("cert_source_address")) << ok;
  }
  ctx_.client = *IpAddress::parse("10.0.0.2");
  EXPECT_EQ(refused("cert_source_address", "cert_source_address"),
            "source address 10.0.0.2 not allowed by certificate (allowed: "
            "192.168.0.0/16,10.0.0.1,2001:db8::/32)");
  ctx_.client = *IpAddress::parse("2001:db9::1");
  refused("cert_source_address", "cert_source_address");
  // 10.1.2.3/8 has host bits set: OpenSSH refuses such a list, and so do we.
  ctx_.client = *IpAddress::parse("10.1.2.3");
  EXPECT_THAT(refused("cert_bad_source_address", "cert_source_address"), HasSubstr("malformed"));
}

TEST_F(ValidateTest, ForceCommand) {
  EXPECT_THAT(refused("cert_force_command", "cert_force_command"), HasSubstr("/usr/bin/uptime"));
  trust_.permit_force_command = true;
  auto v = validate("cert_force_command");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->force_command(), std::optional<std::string>("/usr/bin/uptime"));
}

TEST_F(ValidateTest, RevokedCaKey) {
  trust_.revoked = revocations("revoked_ca.krl");
  EXPECT_THAT(refused("cert_ed25519", "cert_ca_revoked"), HasSubstr("revoked CA ca_ed25519"));
  EXPECT_TRUE(validate("cert_by_ecdsa256"));
}

TEST_F(ValidateTest, RevokedBySerial) {
  trust_.revoked = revocations("revoked_serial.krl");
  EXPECT_EQ(refused("cert_revoked_serial", "cert_revoked"), "certificate revoked (serial 7)");
  EXPECT_TRUE(validate("cert_ed25519"));
}

TEST_F(ValidateTest, RevokedByKeyId) {
  trust_.revoked = revocations("revoked_id.krl");
  EXPECT_EQ(refused("cert_revoked_id", "cert_revoked"), "certificate revoked (serial 34)");
  EXPECT_TRUE(validate("cert_revoked_serial"));
}

TEST_F(ValidateTest, RevokedCertifiedKey) {
  trust_.revoked = revocations("revoked_key.krl");
  refused("cert_revoked_key", "cert_revoked");
  refused("cert_ecdsa256", "cert_revoked");  // same user key, another certificate
  EXPECT_TRUE(validate("cert_ed25519"));
  // A plain revoked-keys file works the same way.
  trust_.revoked = revocations("user_ecdsa256.pub");
  refused("cert_revoked_key", "cert_revoked");
  EXPECT_TRUE(validate("cert_ed25519"));
}

TEST_F(ValidateTest, ChecksRunInTheDocumentedOrder) {
  // Host certificate from an untrusted CA: the type is checked first.
  trust_.cas.clear();
  refused("cert_host", "cert_not_user_certificate");
  // Untrusted CA wins over a bad signature, expiry and principals.
  ctx_.login = "nobody";
  refused("cert_expired", "cert_untrusted_ca");
  trust_.cas.push_back(trusted("ca_ed25519"));
  // Revoked wins over expired.
  trust_.revoked = revocations("revoked_ca.krl");
  refused("cert_expired", "cert_ca_revoked");
  trust_.revoked = nullptr;
  // Expired wins over principal mismatch and lifetime.
  trust_.max_lifetime_seconds = 1;
  refused("cert_expired", "cert_expired");
  // Lifetime wins over principals.
  refused("cert_ed25519", "cert_lifetime_exceeded");
  trust_.max_lifetime_seconds = 0;
  // Principals win over critical options.
  refused("cert_unknown_critical", "cert_principal_mismatch");
  refused("cert_force_command", "cert_principal_mismatch");
  ctx_.login = "alice";
  refused("cert_force_command", "cert_force_command");
}

TEST(FormatUtcTest, RendersIsoUtc) {
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_utc(951782400), "2000-02-29T00:00:00Z");
  EXPECT_EQ(format_utc(1767225599), "2025-12-31T23:59:59Z");
  EXPECT_EQ(format_utc(4070908800), "2099-01-01T00:00:00Z");
  EXPECT_EQ(format_utc(kForever), "forever");
  EXPECT_FALSE(format_utc(kForever - 1).empty());
}

}  // namespace
}  // namespace touchgate::ssh
