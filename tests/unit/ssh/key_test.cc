#include "ssh/key.h"

#include <gtest/gtest.h>

#include "tests/unit/ssh/cert_data.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ssh/digest.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

using testdata::fingerprints;
using testdata::kCertDir;
using testdata::read_blob;
using testdata::read_text;

// key_fields returns a key blob without its leading type string.
std::vector<uint8_t> key_fields(const std::vector<uint8_t>& blob) {
  Reader r(blob);
  Bytes type;
  EXPECT_TRUE(r.string(&type));
  Bytes rest = r.rest();
  return {rest.begin(), rest.end()};
}

struct KeyFile {
  const char* file;
  KeyType type;
};

const KeyFile kKeyFiles[] = {
    {"user_ed25519.pub", KeyType::kEd25519},
    {"user_ecdsa256.pub", KeyType::kEcdsaP256},
    {"user_ecdsa384.pub", KeyType::kEcdsaP384},
    {"user_ecdsa521.pub", KeyType::kEcdsaP521},
    {"user_rsa.pub", KeyType::kRsa},
    {"user_ecdsa_sk.pub", KeyType::kSkEcdsaP256},
    {"user_ed25519_sk.pub", KeyType::kSkEd25519},
    {"ca_rsa.pub", KeyType::kRsa},
    {"ca_ed25519.pub", KeyType::kEd25519},
    {"ca_ecdsa521.pub", KeyType::kEcdsaP521},
};

TEST(KeyTest, ParsesEveryKeyTypeFromSshKeygen) {
  auto fps = fingerprints();
  for (const auto& kf : kKeyFiles) {
    SCOPED_TRACE(kf.file);
    auto line = parse_key_line(read_text(kf.file));
    ASSERT_TRUE(line.has_value()) << line.error().message;
    auto key = parse_public_key(line->blob);
    ASSERT_TRUE(key.has_value()) << key.error().message;
    EXPECT_EQ(key->type, kf.type);
    EXPECT_EQ(line->type, key->type_name());
    EXPECT_EQ(key->blob, line->blob);  // canonical re-encoding is byte-identical
    EXPECT_EQ(key->fingerprint(), fps.at(kf.file));
    EXPECT_EQ(format_key_line(key->blob), line->type + " " + base64_encode(line->blob));
  }
}

TEST(KeyTest, FieldsHoldTheKeyMaterial) {
  auto ed = parse_public_key(read_blob("user_ed25519.pub"));
  ASSERT_TRUE(ed);
  EXPECT_EQ(ed->ed25519.size(), 32u);
  auto ec = parse_public_key(read_blob("user_ecdsa384.pub"));
  ASSERT_TRUE(ec);
  EXPECT_EQ(ec->ecdsa_point.size(), 97u);
  EXPECT_EQ(ec->ecdsa_point[0], 0x04);
  auto rsa = parse_public_key(read_blob("user_rsa.pub"));
  ASSERT_TRUE(rsa);
  EXPECT_EQ(rsa->rsa_n.size(), 256u);
  EXPECT_EQ(rsa->rsa_e, (std::vector<uint8_t>{0x01, 0x00, 0x01}));
  auto sk = parse_public_key(read_blob("user_ed25519_sk.pub"));
  ASSERT_TRUE(sk);
  EXPECT_EQ(sk->application, "ssh:");
  EXPECT_TRUE(is_security_key(sk->type));
  auto sk_ec = parse_public_key(read_blob("user_ecdsa_sk.pub"));
  ASSERT_TRUE(sk_ec);
  EXPECT_EQ(sk_ec->application, "ssh:");
  EXPECT_EQ(sk_ec->ecdsa_point.size(), 65u);
}

TEST(KeyTest, TypeNamesRoundTrip) {
  for (KeyType t :
       {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kEcdsaP384, KeyType::kEcdsaP521,
        KeyType::kRsa, KeyType::kSkEcdsaP256, KeyType::kSkEd25519}) {
    KeyType back;
    ASSERT_TRUE(key_type_from_name(key_type_name(t), &back));
    EXPECT_EQ(back, t);
    ASSERT_TRUE(key_type_from_cert_name(cert_type_name(t), &back));
    EXPECT_EQ(back, t);
    EXPECT_FALSE(key_type_from_name(cert_type_name(t), &back));
  }
  KeyType unused;
  EXPECT_FALSE(key_type_from_name("ssh-dss", &unused));
  EXPECT_FALSE(key_type_from_cert_name("rsa-sha2-512-cert-v01@openssh.com", &unused));
  EXPECT_EQ(cert_type_name(KeyType::kSkEd25519), "sk-ssh-ed25519-cert-v01@openssh.com");
}

TEST(KeyTest, EveryTruncationAndTrailingByteIsRefused) {
  for (const auto& kf : kKeyFiles) {
    SCOPED_TRACE(kf.file);
    auto blob = read_blob(kf.file);
    for (size_t n = 0; n < blob.size(); ++n) {
      auto r = parse_public_key(Bytes(blob).first(n));
      ASSERT_FALSE(r.has_value()) << "prefix " << n;
    }
    blob.push_back(0);
    auto r = parse_public_key(blob);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, "key_malformed");
  }
}

TEST(KeyTest, CertificateIsNotAPlainKey) {
  auto r = parse_public_key(read_blob("cert_ed25519-cert.pub"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "key_unsupported");
}

TEST(KeyTest, UnknownTypeIsUnsupported) {
  auto blob = Writer().string(std::string_view("ssh-dss")).string(std::string_view("x")).take();
  auto r = parse_public_key(blob);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "key_unsupported");
}

TEST(KeyTest, CurveNameMustMatchType) {
  auto key = parse_public_key(read_blob("user_ecdsa256.pub"));
  ASSERT_TRUE(key);
  auto blob = Writer()
                  .string(std::string_view("ecdsa-sha2-nistp256"))
                  .string(std::string_view("nistp384"))
                  .string(std::span<const uint8_t>(key->ecdsa_point))
                  .take();
  auto r = parse_public_key(blob);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "key_malformed");
}

std::vector<uint8_t> ecdsa_blob(std::vector<uint8_t> point) {
  return Writer()
      .string(std::string_view("ecdsa-sha2-nistp256"))
      .string(std::string_view("nistp256"))
      .string(std::span<const uint8_t>(point))
      .take();
}

TEST(KeyTest, PointOffTheCurveIsRefused) {
  auto key = parse_public_key(read_blob("user_ecdsa256.pub"));
  ASSERT_TRUE(key);
  ASSERT_TRUE(parse_public_key(ecdsa_blob(key->ecdsa_point)));
  auto point = key->ecdsa_point;
  point.back() ^= 0x01;  // y + 1: off the curve
  auto r = parse_public_key(ecdsa_blob(point));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "key_malformed");
  // All-zero coordinates (not a curve point) and a compressed encoding are refused too.
  std::vector<uint8_t> zero(65, 0);
  zero[0] = 0x04;
  EXPECT_FALSE(parse_public_key(ecdsa_blob(zero)));
  std::vector<uint8_t> compressed(key->ecdsa_point.begin(), key->ecdsa_point.begin() + 33);
  compressed[0] = 0x02 | (key->ecdsa_point.back() & 1);
  EXPECT_FALSE(parse_public_key(ecdsa_blob(compressed)));
}

std::vector<uint8_t> rsa_blob(std::vector<uint8_t> e, std::vector<uint8_t> n) {
  return Writer().string(std::string_view("ssh-rsa")).mpint(e).mpint(n).take();
}

TEST(KeyTest, RsaModulusSizeIsBounded) {
  auto small = parse_public_key(read_blob("user_rsa1024.pub"));
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.error().code, "key_unsupported");

  const std::vector<uint8_t> e = {0x01, 0x00, 0x01};
  std::vector<uint8_t> n2048(256, 0xff);
  EXPECT_TRUE(parse_public_key(rsa_blob(e, n2048)));
  std::vector<uint8_t> n2047(256, 0xff);
  n2047[0] = 0x7f;
  EXPECT_EQ(parse_public_key(rsa_blob(e, n2047)).error().code, "key_unsupported");
  std::vector<uint8_t> n16384(2048, 0xff);
  EXPECT_TRUE(parse_public_key(rsa_blob(e, n16384)));
  std::vector<uint8_t> n16385(2049, 0xff);
  n16385[0] = 0x01;
  EXPECT_FALSE(parse_public_key(rsa_blob(e, n16385)));
  std::vector<uint8_t> even(256, 0xff);
  even.back() = 0xfe;
  EXPECT_EQ(parse_public_key(rsa_blob(e, even)).error().code, "key_malformed");
  EXPECT_EQ(parse_public_key(rsa_blob({0x02}, n2048)).error().code, "key_malformed");
  EXPECT_EQ(parse_public_key(rsa_blob({}, n2048)).error().code, "key_malformed");
}

TEST(KeyTest, Ed25519KeyMustBe32Bytes) {
  auto blob = Writer()
                  .string(std::string_view("ssh-ed25519"))
                  .string(std::span<const uint8_t>(std::vector<uint8_t>(31, 1)))
                  .take();
  EXPECT_EQ(parse_public_key(blob).error().code, "key_malformed");
}

TEST(KeyTest, SkKeyNeedsApplication) {
  auto key = parse_public_key(read_blob("user_ed25519_sk.pub"));
  ASSERT_TRUE(key);
  auto blob = Writer()
                  .string(std::string_view("sk-ssh-ed25519@openssh.com"))
                  .string(std::span<const uint8_t>(key->ed25519))
                  .take();
  EXPECT_EQ(parse_public_key(blob).error().code, "key_malformed");
}

TEST(KeyLineTest, KeepsCommentAndToleratesLineEnd) {
  std::string text = read_text("user_ed25519.pub");
  auto line = parse_key_line(text);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->type, "ssh-ed25519");
  EXPECT_EQ(line->comment, "user_ed25519");
  auto crlf = parse_key_line(format_key_line(line->blob) + "  my comment here\r\n");
  ASSERT_TRUE(crlf);
  EXPECT_EQ(crlf->comment, "my comment here");
  auto bare = parse_key_line(format_key_line(line->blob));
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->comment, "");
  EXPECT_EQ(bare->blob, line->blob);
}

TEST(KeyLineTest, ParsesCertificateLines) {
  auto line = parse_key_line(read_text("cert_ecdsa_sk-cert.pub"));
  ASSERT_TRUE(line) << line.error().message;
  EXPECT_EQ(line->type, "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com");
}

TEST(KeyLineTest, RefusesMalformedLines) {
  auto blob = read_blob("user_ed25519.pub");
  std::string b64 = base64_encode(blob);
  const std::vector<std::string> bad = {
      "",
      "   ",
      "# ssh-ed25519 " + b64,
      "ssh-ed25519",
      "ssh-ed25519 " + b64.substr(1),             // invalid base64
      "ssh-ed25519 " + b64 + "!",                 // invalid base64 character
      "ecdsa-sha2-nistp256 " + b64,               // type does not match the blob
      "ssh-ed25519-cert-v01@openssh.com " + b64,  // ditto
      "ssh-dss " + base64_encode(Writer().string(std::string_view("ssh-dss")).take()),
      "ssh-ed25519 " + base64_encode(Bytes(blob).first(10)),  // type string cut short
      "from=\"10.0.0.1\" ssh-ed25519 " + b64,  // authorized_keys options are not key lines
  };
  for (const auto& l : bad) {
    auto r = parse_key_line(l);
    ASSERT_FALSE(r.has_value()) << l;
    EXPECT_EQ(r.error().code, "key_line_malformed") << l;
  }
}

TEST(KeyLineTest, ChecksTheTypeNotTheKeyMaterial) {
  // A revoked-keys file may list keys touchgate would never accept, such as RSA-1024.
  auto line = parse_key_line(read_text("user_rsa1024.pub"));
  ASSERT_TRUE(line) << line.error().message;
  EXPECT_FALSE(parse_public_key(line->blob));
}

TEST(KeyLineTest, FormatOfUnreadableBlobIsEmpty) {
  EXPECT_EQ(format_key_line(std::vector<uint8_t>{0, 0, 0, 9, 'x'}), "");
}

TEST(KeyTest, FieldParserStopsAtTheKeyEnd) {
  auto blob = read_blob("user_ecdsa521.pub");
  auto fields = key_fields(blob);
  fields.push_back(0x42);
  Reader r(fields);
  auto key = parse_public_key_fields(KeyType::kEcdsaP521, r);
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->blob, blob);
  EXPECT_EQ(r.remaining(), 1u);
}

}  // namespace
}  // namespace touchgate::ssh
