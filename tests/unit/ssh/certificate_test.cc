#include "ssh/certificate.h"

#include <gtest/gtest.h>

#include "tests/unit/ssh/cert_data.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ssh/signature.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

using testdata::fingerprints;
using testdata::kCertDir;
using testdata::read_blob;
using testdata::read_text;
constexpr uint64_t k20200101 = 1577836800;
constexpr uint64_t k20990101 = 4070908800;

Certificate read_cert(const std::string& name) {
  auto c = parse_certificate(read_blob(name + "-cert.pub"));
  EXPECT_TRUE(c.has_value()) << name << ": " << (c ? "" : c.error().message);
  return c ? *c : Certificate{};
}

Writer& put_options(Writer& w, const std::vector<CertOption>& opts) {
  Writer section;
  for (const auto& o : opts) section.string(o.name).string(std::span<const uint8_t>(o.data));
  return w.string(section.bytes());
}

// encode re-encodes a parsed certificate (optionally with edits), for structural tests.
std::vector<uint8_t> encode(const Certificate& c) {
  Writer w;
  w.string(c.type_name).string(std::span<const uint8_t>(c.nonce));
  Reader key(c.key.blob);
  Bytes type;
  EXPECT_TRUE(key.string(&type));
  w.raw(key.rest());
  w.u64(c.serial).u32(c.cert_type).string(c.key_id);
  Writer principals;
  for (const auto& p : c.principals) principals.string(p);
  w.string(principals.bytes()).u64(c.valid_after).u64(c.valid_before);
  put_options(w, c.critical_options);
  put_options(w, c.extensions);
  w.string(std::string_view()).string(std::span<const uint8_t>(c.signature_key));
  w.string(std::span<const uint8_t>(c.signature));
  return w.take();
}

std::vector<uint8_t> one_string(std::string_view s) {
  return Writer().string(s).take();
}

Error parse_error(const std::vector<uint8_t>& blob) {
  auto r = parse_certificate(blob);
  EXPECT_FALSE(r.has_value());
  return r ? Error{} : r.error();
}

struct CertFile {
  const char* name;
  const char* user_key;
  KeyType type;
};

const CertFile kUserCerts[] = {
    {"cert_ed25519", "user_ed25519", KeyType::kEd25519},
    {"cert_ecdsa256", "user_ecdsa256", KeyType::kEcdsaP256},
    {"cert_ecdsa384", "user_ecdsa384", KeyType::kEcdsaP384},
    {"cert_ecdsa521", "user_ecdsa521", KeyType::kEcdsaP521},
    {"cert_rsa", "user_rsa", KeyType::kRsa},
    {"cert_ecdsa_sk", "user_ecdsa_sk", KeyType::kSkEcdsaP256},
    {"cert_ed25519_sk", "user_ed25519_sk", KeyType::kSkEd25519},
};

TEST(CertificateTest, ParsesEveryKeyTypeFromSshKeygen) {
  auto fps = fingerprints();
  auto ca = read_blob("ca_ed25519.pub");
  for (const auto& cf : kUserCerts) {
    SCOPED_TRACE(cf.name);
    Certificate c = read_cert(cf.name);
    EXPECT_EQ(c.type_name, cert_type_name(cf.type));
    EXPECT_EQ(c.key.type, cf.type);
    EXPECT_EQ(c.key.blob, read_blob(std::string(cf.user_key) + ".pub"));
    // ssh-keygen -lf on a certificate prints the certified key's fingerprint.
    EXPECT_EQ(c.key.fingerprint(), fps.at(std::string(cf.name) + "-cert.pub"));
    EXPECT_EQ(c.serial, 100u);
    EXPECT_EQ(c.cert_type, kCertTypeUser);
    EXPECT_EQ(c.key_id, std::string("alice-") + std::string(cf.name).substr(5));
    EXPECT_EQ(c.principals, (std::vector<std::string>{"alice", "bob"}));
    EXPECT_EQ(c.valid_after, k20200101);
    EXPECT_EQ(c.valid_before, k20990101);
    EXPECT_TRUE(c.critical_options.empty());
    EXPECT_EQ(c.extensions.size(), 5u);
    EXPECT_NE(c.find_extension("permit-pty"), nullptr);
    EXPECT_EQ(c.find_extension("no-touch-required"), nullptr);
    EXPECT_EQ(c.signature_key, ca);
    EXPECT_EQ(c.ca_key.blob, ca);
    EXPECT_EQ(c.ca_key.type, KeyType::kEd25519);
    EXPECT_EQ(c.nonce.size(), 32u);
    EXPECT_EQ(signature_algorithm(c.signature), "ssh-ed25519");
    // The signature string is the last field; everything before it is signed.
    EXPECT_EQ(c.signed_length + 4 + c.signature.size(), c.blob.size());
    EXPECT_EQ(encode(c), c.blob);
  }
}

TEST(CertificateTest, ParsesEveryCaType) {
  const std::pair<const char*, const char*> cases[] = {
      {"cert_by_ecdsa256", "ca_ecdsa256.pub"}, {"cert_by_ecdsa384", "ca_ecdsa384.pub"},
      {"cert_by_ecdsa521", "ca_ecdsa521.pub"}, {"cert_by_rsa_sha256", "ca_rsa.pub"},
      {"cert_by_rsa_sha512", "ca_rsa.pub"},    {"cert_by_rsa_sha1", "ca_rsa.pub"},
      {"cert_rsa_by_rsa", "ca_rsa.pub"},
  };
  for (const auto& [name, ca] : cases) {
    SCOPED_TRACE(name);
    Certificate c = read_cert(name);
    EXPECT_EQ(c.signature_key, read_blob(ca));
    EXPECT_EQ(encode(c), c.blob);
  }
}

TEST(CertificateTest, ReadsOptionsAndValidity) {
  Certificate host = read_cert("cert_host");
  EXPECT_EQ(host.cert_type, kCertTypeHost);
  EXPECT_EQ(host.principals, std::vector<std::string>{"host.example.com"});

  Certificate src = read_cert("cert_source_address");
  const CertOption* opt = src.find_critical("source-address");
  ASSERT_NE(opt, nullptr);
  EXPECT_EQ(option_string(*opt).value(), "192.168.0.0/16,10.0.0.1,2001:db8::/32");

  Certificate force = read_cert("cert_force_command");
  ASSERT_NE(force.find_critical("force-command"), nullptr);
  EXPECT_EQ(option_string(*force.find_critical("force-command")).value(), "/usr/bin/uptime");

  Certificate verify = read_cert("cert_verify_required");
  ASSERT_NE(verify.find_critical("verify-required"), nullptr);
  EXPECT_TRUE(verify.find_critical("verify-required")->data.empty());
  EXPECT_FALSE(option_string(*verify.find_critical("verify-required")).has_value());

  Certificate notouch = read_cert("cert_no_touch");
  EXPECT_NE(notouch.find_extension("no-touch-required"), nullptr);

  Certificate custom = read_cert("cert_unknown_extension");
  ASSERT_NE(custom.find_extension("custom@example.com"), nullptr);
  EXPECT_EQ(option_string(*custom.find_extension("custom@example.com")).value(), "value");

  Certificate clear = read_cert("cert_clear");
  ASSERT_EQ(clear.extensions.size(), 1u);
  EXPECT_EQ(clear.extensions[0].name, "permit-pty");

  EXPECT_TRUE(read_cert("cert_no_principals").principals.empty());
  Certificate forever = read_cert("cert_forever");
  EXPECT_EQ(forever.valid_after, 0u);
  EXPECT_EQ(forever.valid_before, UINT64_MAX);
  Certificate day = read_cert("cert_24h");
  EXPECT_EQ(day.valid_before - day.valid_after, 86400u);
  EXPECT_EQ(read_cert("cert_revoked_serial").serial, 7u);
}

TEST(CertificateTest, EveryTruncationAndTrailingByteIsRefused) {
  for (const char* name : {"cert_ed25519", "cert_rsa", "cert_ecdsa_sk", "cert_source_address"}) {
    SCOPED_TRACE(name);
    auto blob = read_blob(std::string(name) + "-cert.pub");
    for (size_t n = 0; n < blob.size(); ++n) {
      auto r = parse_certificate(Bytes(blob).first(n));
      ASSERT_FALSE(r.has_value()) << "prefix " << n;
      EXPECT_EQ(r.error().code, "cert_malformed");
    }
    blob.push_back(0);
    EXPECT_EQ(parse_error(blob).code, "cert_malformed");
  }
}

TEST(CertificateTest, UnknownOrPlainTypeIsUnsupported) {
  Certificate c = read_cert("cert_ed25519");
  c.type_name = "ssh-ed25519";
  EXPECT_EQ(parse_error(encode(c)).code, "cert_unsupported_type");
  c.type_name = "ssh-dss-cert-v01@openssh.com";
  EXPECT_EQ(parse_error(encode(c)).code, "cert_unsupported_type");
  c.type_name = "ecdsa-sha2-nistp256-cert-v01@openssh.com";  // fields are ed25519's
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
}

TEST(CertificateTest, TooSmallRsaKeyIsUnsupported) {
  EXPECT_EQ(parse_error(read_blob("cert_rsa1024-cert.pub")).code, "cert_unsupported_type");
}

TEST(CertificateTest, CaKeyMustBeAPlainKey) {
  Certificate c = read_cert("cert_ed25519");
  c.signature_key = read_blob("cert_by_ecdsa256-cert.pub");
  Error e = parse_error(encode(c));
  EXPECT_EQ(e.code, "cert_malformed");
  EXPECT_NE(e.message.find("itself a certificate"), std::string::npos) << e.message;

  c.signature_key = {0, 0, 0, 1, 'x'};
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
  c.signature_key.clear();
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
}

TEST(CertificateTest, OptionsMustBeSortedAndUnique) {
  Certificate c = read_cert("cert_ed25519");
  ASSERT_TRUE(parse_certificate(encode(c)));
  std::swap(c.extensions[0], c.extensions[1]);
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");

  c = read_cert("cert_ed25519");
  c.extensions.insert(c.extensions.begin() + 2, c.extensions[2]);  // duplicate
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");

  c = read_cert("cert_ed25519");
  c.critical_options = {{"source-address", one_string("10.0.0.0/8")},
                        {"force-command", one_string("/bin/true")}};
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
  std::swap(c.critical_options[0], c.critical_options[1]);
  auto ok = parse_certificate(encode(c));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->critical_options.size(), 2u);

  c.critical_options = {{"force-command", one_string("/bin/true")},
                        {"force-command", one_string("/bin/false")}};
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
}

TEST(CertificateTest, OptionDataMustBeFullyConsumed) {
  const std::vector<std::vector<CertOption>> bad_critical = {
      {{"force-command", {}}},                       // missing string
      {{"force-command", one_string("/bin/true")}},  // (ok, replaced below)
      {{"source-address", {0, 0, 0, 9, '1'}}},       // truncated string
      {{"verify-required", one_string("")}},         // flag with data
      {{"zzz@example.com", {1, 2, 3}}},              // not a string
  };
  Certificate c = read_cert("cert_ed25519");
  for (size_t i = 0; i < bad_critical.size(); ++i) {
    if (i == 1) continue;
    c.critical_options = bad_critical[i];
    EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed") << i;
  }
  auto trailing = one_string("/bin/true");
  trailing.push_back(0);
  c.critical_options = {{"force-command", trailing}};
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");

  c = read_cert("cert_ed25519");
  c.extensions.push_back({"zzz@example.com", one_string("a")});
  c.extensions.back().data.push_back('b');
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
  c.extensions.back().data = one_string("a");
  EXPECT_TRUE(parse_certificate(encode(c)));
  c.extensions[0].data = one_string("x");  // permit-X11-forwarding is a flag
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
}

TEST(CertificateTest, OptionStringRefusesTrailingDataAndNul) {
  CertOption opt{"force-command", one_string("ls")};
  EXPECT_EQ(option_string(opt).value(), "ls");
  opt.data.push_back(0);
  EXPECT_EQ(option_string(opt).error().code, "cert_malformed");
  opt.data = Writer().string(std::string_view("a\0b", 3)).take();
  EXPECT_FALSE(option_string(opt));
}

TEST(CertificateTest, PrincipalsMustBeWellFormed) {
  Certificate c = read_cert("cert_ed25519");
  auto blob = encode(c);
  ASSERT_TRUE(parse_certificate(blob));
  c.principals = {"alice", std::string("bo\0b", 4)};
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
  c.principals.assign(257, "p");
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
  c.principals.assign(256, "p");
  EXPECT_TRUE(parse_certificate(encode(c)));
}

TEST(CertificateTest, CertifiedKeyIsValidated) {
  Certificate c = read_cert("cert_ecdsa256");
  Reader r(c.key.blob);
  Bytes type;
  Bytes curve;
  Bytes point;
  ASSERT_TRUE(r.string(&type) && r.string(&curve) && r.string(&point));
  std::vector<uint8_t> p(point.begin(), point.end());
  p.back() ^= 1;
  c.key.blob = Writer().string(type).string(curve).string(std::span<const uint8_t>(p)).take();
  EXPECT_EQ(parse_error(encode(c)).code, "cert_malformed");
}

}  // namespace
}  // namespace touchgate::ssh
