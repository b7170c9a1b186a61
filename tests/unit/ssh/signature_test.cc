#include "ssh/signature.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ssh/certificate.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

const std::string kCertDir = std::string(TOUCHGATE_TEST_DATA) + "/certs/";

std::vector<uint8_t> read_blob(const std::string& name) {
  std::ifstream in(kCertDir + name);
  std::stringstream ss;
  ss << in.rdbuf();
  auto line = parse_key_line(ss.str());
  EXPECT_TRUE(line.has_value()) << name;
  return line ? line->blob : std::vector<uint8_t>{};
}

// A real CA signature made by ssh-keygen: the signed bytes, the signature and the CA key.
struct Signed {
  std::vector<uint8_t> data;
  std::vector<uint8_t> sig;
  PublicKey key;
};

Signed load(const std::string& cert) {
  auto c = parse_certificate(read_blob(cert + "-cert.pub"));
  EXPECT_TRUE(c.has_value()) << cert;
  if (!c) return {};
  Bytes d = c->signed_data();
  return {std::vector<uint8_t>(d.begin(), d.end()), c->signature, c->ca_key};
}

// split returns the algorithm and raw signature inside a signature blob.
std::pair<std::string, std::vector<uint8_t>> split(const std::vector<uint8_t>& blob) {
  Reader r(blob);
  std::string alg;
  Bytes sig;
  EXPECT_TRUE(r.text_copy(&alg) && r.string(&sig));
  return {alg, {sig.begin(), sig.end()}};
}

std::vector<uint8_t> join(std::string_view alg, const std::vector<uint8_t>& sig) {
  return Writer().string(alg).string(std::span<const uint8_t>(sig)).take();
}

const char* const kGood[] = {"cert_ed25519",     "cert_by_ecdsa256",   "cert_by_ecdsa384",
                             "cert_by_ecdsa521", "cert_by_rsa_sha256", "cert_by_rsa_sha512",
                             "cert_rsa_by_rsa"};

TEST(SignatureTest, VerifiesSshKeygenSignaturesOfEveryCaType) {
  for (const char* name : kGood) {
    SCOPED_TRACE(name);
    Signed s = load(name);
    auto ok = verify_signature(s.key, s.sig, s.data);
    EXPECT_TRUE(ok.has_value()) << ok.error().message;
  }
  EXPECT_EQ(signature_algorithm(load("cert_by_ecdsa384").sig), "ecdsa-sha2-nistp384");
  EXPECT_EQ(signature_algorithm(load("cert_by_rsa_sha256").sig), "rsa-sha2-256");
  EXPECT_EQ(signature_algorithm(load("cert_by_rsa_sha512").sig), "rsa-sha2-512");
  EXPECT_EQ(signature_algorithm(std::vector<uint8_t>{0, 0}), "");
}

TEST(SignatureTest, TamperedDataOrSignatureFails) {
  for (const char* name : kGood) {
    SCOPED_TRACE(name);
    Signed s = load(name);
    auto data = s.data;
    data[data.size() / 2] ^= 0x01;
    EXPECT_EQ(verify_signature(s.key, s.sig, data).error().code, "sig_invalid");
    auto [alg, raw] = split(s.sig);
    raw[raw.size() - 3] ^= 0x01;  // inside s (ecdsa) or the signature value
    auto r = verify_signature(s.key, join(alg, raw), s.data);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().code == "sig_invalid" || r.error().code == "sig_malformed")
        << r.error().code;
  }
}

TEST(SignatureTest, WrongKeyFails) {
  Signed a = load("cert_ed25519");
  Signed other = load("cert_by_other");
  EXPECT_EQ(verify_signature(other.key, a.sig, a.data).error().code, "sig_invalid");
  Signed p256 = load("cert_by_ecdsa256");
  Signed p384 = load("cert_by_ecdsa384");
  // A P-256 signature offered for a P-384 key names the wrong algorithm.
  EXPECT_EQ(verify_signature(p384.key, p256.sig, p256.data).error().code, "sig_algorithm_mismatch");
  EXPECT_EQ(verify_signature(p256.key, a.sig, a.data).error().code, "sig_algorithm_mismatch");
  EXPECT_EQ(verify_signature(a.key, p256.sig, p256.data).error().code, "sig_algorithm_mismatch");
}

TEST(SignatureTest, RsaHashMustMatchTheNamedAlgorithm) {
  Signed s = load("cert_by_rsa_sha256");
  auto [alg, raw] = split(s.sig);
  EXPECT_EQ(verify_signature(s.key, join("rsa-sha2-512", raw), s.data).error().code, "sig_invalid");
  EXPECT_EQ(verify_signature(s.key, join("ssh-ed25519", raw), s.data).error().code,
            "sig_algorithm_mismatch");
}

TEST(SignatureTest, Sha1RsaOnlyWhenAllowed) {
  Signed s = load("cert_by_rsa_sha1");
  EXPECT_EQ(signature_algorithm(s.sig), "ssh-rsa");
  EXPECT_EQ(verify_signature(s.key, s.sig, s.data).error().code, "sig_sha1_refused");
  SignatureOptions allow;
  allow.allow_ssh_rsa_sha1 = true;
  EXPECT_TRUE(verify_signature(s.key, s.sig, s.data, allow));
  auto data = s.data;
  data[10] ^= 1;
  EXPECT_EQ(verify_signature(s.key, s.sig, data, allow).error().code, "sig_invalid");
}

TEST(SignatureTest, RsaSignatureLongerThanModulusIsMalformed) {
  Signed s = load("cert_by_rsa_sha512");
  auto [alg, raw] = split(s.sig);
  raw.insert(raw.begin(), 0);
  EXPECT_EQ(verify_signature(s.key, join(alg, raw), s.data).error().code, "sig_malformed");
  EXPECT_EQ(verify_signature(s.key, join(alg, {}), s.data).error().code, "sig_malformed");
}

TEST(SignatureTest, MalformedBlobsAreRefused) {
  Signed s = load("cert_ed25519");
  auto trailing = s.sig;
  trailing.push_back(0);
  EXPECT_EQ(verify_signature(s.key, trailing, s.data).error().code, "sig_malformed");
  for (size_t n = 0; n < s.sig.size(); ++n) {
    EXPECT_FALSE(verify_signature(s.key, Bytes(s.sig).first(n), s.data)) << n;
  }
  auto [alg, raw] = split(s.sig);
  raw.pop_back();
  EXPECT_EQ(verify_signature(s.key, join(alg, raw), s.data).error().code, "sig_malformed");
}

TEST(SignatureTest, EcdsaInnerEncodingIsChecked) {
  Signed s = load("cert_by_ecdsa256");
  auto [alg, raw] = split(s.sig);
  Reader r(raw);
  Bytes rr;
  Bytes ss;
  ASSERT_TRUE(r.mpint(&rr) && r.mpint(&ss) && r.finish());
  auto with = [&](std::vector<uint8_t> inner) {
    return verify_signature(s.key, join(alg, inner), s.data);
  };
  auto trailing = raw;
  trailing.push_back(0);
  EXPECT_EQ(with(trailing).error().code, "sig_malformed");
  EXPECT_EQ(with(Writer().mpint(rr).take()).error().code, "sig_malformed");            // s missing
  EXPECT_EQ(with(Writer().mpint(rr).mpint({}).take()).error().code, "sig_malformed");  // s == 0
  std::vector<uint8_t> big(33, 0x7f);
  EXPECT_EQ(with(Writer().mpint(rr).mpint(big).take()).error().code, "sig_malformed");
  EXPECT_TRUE(with(Writer().mpint(rr).mpint(ss).take()));
  EXPECT_EQ(with(Writer().mpint(ss).mpint(rr).take()).error().code, "sig_invalid");
}

TEST(SignatureTest, SecurityKeySignaturesAreNotHandledHere) {
  auto c = parse_certificate(read_blob("cert_ecdsa_sk-cert.pub"));
  ASSERT_TRUE(c);
  Signed s = load("cert_ed25519");
  EXPECT_EQ(verify_signature(c->key, s.sig, s.data).error().code, "sig_unsupported");
}

}  // namespace
}  // namespace touchgate::ssh
