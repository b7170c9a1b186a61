#include "ssh/sk_signature.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ssh/digest.h"
#include "ssh/signature.h"
#include "ssh/sshsig.h"
#include "ssh/writer.h"

// Signatures from OpenSSH's software authenticator (sk-dummy) via ssh-keygen -Y sign, made by
// tests/data/touch/generate.sh. sk-dummy reports flags 0x01 (0x00 for no-touch-required keys) and
// the counter 0x12345678.
namespace touchgate::ssh {
namespace {

constexpr uint32_t kSkDummyCounter = 0x12345678;

std::string read_text(const std::string& name) {
  std::ifstream in(std::string(TOUCHGATE_TEST_DATA) + "/touch/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

PublicKey load_key(const std::string& name) {
  auto line = parse_key_line(read_text(name + ".pub"));
  EXPECT_TRUE(line.has_value()) << name;
  auto key = parse_public_key(line ? line->blob : std::vector<uint8_t>{});
  EXPECT_TRUE(key.has_value()) << name;
  return key.value_or(PublicKey{});
}

// A signature file and the SSHSIG data it covers.
struct Signed {
  std::vector<uint8_t> sig;
  std::vector<uint8_t> data;
};

Signed load_sig(const std::string& file) {
  auto sig = parse_sshsig(dearmor_sshsig(read_text(file)).value_or(std::vector<uint8_t>{}));
  EXPECT_TRUE(sig.has_value()) << file;
  if (!sig) return {};
  const std::string msg = read_text("message.txt");
  return {sig->signature, sshsig_signed_data(sig->ns, sig->hash, as_bytes(msg))};
}

std::string code_of(const Result<SkSignature>& r) {
  return r ? "ok" : r.error().code;
}

std::vector<uint8_t> sk_blob(std::string_view alg, Bytes inner, uint8_t flags = 1,
                             uint32_t counter = 1) {
  return Writer().string(alg).string(inner).u8(flags).u32(counter).take();
}

constexpr std::string_view kEcdsaName = "sk-ecdsa-sha2-nistp256@openssh.com";
constexpr std::string_view kEd25519Name = "sk-ssh-ed25519@openssh.com";

TEST(SkSignatureTest, ParsesSkDummySignatures) {
  auto ecdsa = parse_sk_signature(KeyType::kSkEcdsaP256, load_sig("sk_ecdsa.sig").sig);
  ASSERT_TRUE(ecdsa.has_value()) << ecdsa.error().message;
  EXPECT_EQ(ecdsa->type, KeyType::kSkEcdsaP256);
  EXPECT_EQ(ecdsa->flags, kSkUserPresent);
  EXPECT_EQ(ecdsa->counter, kSkDummyCounter);
  EXPECT_GE(ecdsa->ecdsa_r.size(), 1u);
  EXPECT_LE(ecdsa->ecdsa_r.size(), 32u);
  EXPECT_GE(ecdsa->ecdsa_s.size(), 1u);
  EXPECT_LE(ecdsa->ecdsa_s.size(), 32u);
  EXPECT_NE(ecdsa->ecdsa_r[0], 0);  // magnitudes, no sign byte
  EXPECT_TRUE(ecdsa->ed25519.empty());

  auto ed = parse_sk_signature(KeyType::kSkEd25519, load_sig("sk_ed25519.sig").sig);
  ASSERT_TRUE(ed.has_value()) << ed.error().message;
  EXPECT_EQ(ed->type, KeyType::kSkEd25519);
  EXPECT_EQ(ed->flags, kSkUserPresent);
  EXPECT_EQ(ed->counter, kSkDummyCounter);
  EXPECT_EQ(ed->ed25519.size(), 64u);
  EXPECT_TRUE(ed->ecdsa_r.empty());

  for (const char* name : {"sk_ecdsa_notouch", "sk_ed25519_notouch"}) {
    auto nt = parse_sk_signature(load_key(name).type, load_sig(std::string(name) + ".sig").sig);
    ASSERT_TRUE(nt.has_value()) << name;
    EXPECT_EQ(nt->flags, 0);
    EXPECT_EQ(nt->counter, kSkDummyCounter);
  }
}

// The authenticator signed sk_signed_data: checked with plain OpenSSL verification (an ECDSA
// P-256 / SHA-256 or ed25519 signature over those 69 bytes), independent of libfido2.
TEST(SkSignatureTest, SignedDataIsWhatTheAuthenticatorSigned) {
  {
    const PublicKey sk = load_key("sk_ecdsa");
    const Signed s = load_sig("sk_ecdsa.sig");
    auto parsed = parse_sk_signature(sk.type, s.sig);
    ASSERT_TRUE(parsed.has_value());
    const auto tbs = sk_signed_data(sk.application, parsed->flags, parsed->counter, s.data);
    auto plain = parse_public_key(Writer()
                                      .string("ecdsa-sha2-nistp256")
                                      .string("nistp256")
                                      .string(std::span<const uint8_t>(sk.ecdsa_point))
                                      .take());
    ASSERT_TRUE(plain.has_value());
    const auto sig = Writer()
                         .string("ecdsa-sha2-nistp256")
                         .string(Writer().mpint(parsed->ecdsa_r).mpint(parsed->ecdsa_s).take())
                         .take();
    EXPECT_TRUE(verify_signature(*plain, sig, tbs).has_value());
    auto other = tbs;
    other[32] ^= 0x04;  // the flags byte
    EXPECT_FALSE(verify_signature(*plain, sig, other).has_value());
  }
  {
    const PublicKey sk = load_key("sk_ed25519");
    const Signed s = load_sig("sk_ed25519.sig");
    auto parsed = parse_sk_signature(sk.type, s.sig);
    ASSERT_TRUE(parsed.has_value());
    const auto tbs = sk_signed_data(sk.application, parsed->flags, parsed->counter, s.data);
    auto plain = parse_public_key(
        Writer().string("ssh-ed25519").string(std::span<const uint8_t>(sk.ed25519)).take());
    ASSERT_TRUE(plain.has_value());
    const auto sig =
        Writer().string("ssh-ed25519").string(std::span<const uint8_t>(parsed->ed25519)).take();
    EXPECT_TRUE(verify_signature(*plain, sig, tbs).has_value());
  }
}

TEST(SkSignatureTest, SignedDataLayout) {
  const std::vector<uint8_t> msg = {'a', 'b', 'c'};
  const auto d = sk_signed_data("ssh:", 0x05, 0x01020304, msg);
  ASSERT_EQ(d.size(), 69u);
  const auto app = sha256(as_bytes("ssh:"));
  EXPECT_TRUE(std::equal(app.begin(), app.end(), d.begin()));
  EXPECT_EQ(d[32], 0x05);
  EXPECT_EQ(d[33], 0x01);
  EXPECT_EQ(d[34], 0x02);
  EXPECT_EQ(d[35], 0x03);
  EXPECT_EQ(d[36], 0x04);
  EXPECT_EQ(d[37], 0xba);  // SHA-256("abc") = ba7816bf...
  EXPECT_EQ(d[68], 0xad);
}

TEST(SkSignatureTest, AlgorithmMustBeTheKeysOwn) {
  const auto ecdsa = load_sig("sk_ecdsa.sig").sig;
  const auto ed = load_sig("sk_ed25519.sig").sig;
  EXPECT_EQ(code_of(parse_sk_signature(KeyType::kSkEd25519, ecdsa)), "sig_algorithm_mismatch");
  EXPECT_EQ(code_of(parse_sk_signature(KeyType::kSkEcdsaP256, ed)), "sig_algorithm_mismatch");
  for (KeyType plain : {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa}) {
    EXPECT_EQ(code_of(parse_sk_signature(plain, ed)), "sig_algorithm_mismatch");
  }
  const std::vector<uint8_t> raw(64, 1);
  EXPECT_EQ(code_of(parse_sk_signature(KeyType::kSkEd25519, sk_blob("ssh-ed25519", raw))),
            "sig_algorithm_mismatch");
  // webauthn signatures carry more fields: not accepted.
  const auto inner = Writer().mpint(std::vector<uint8_t>{1}).mpint(std::vector<uint8_t>{1}).take();
  EXPECT_EQ(
      code_of(parse_sk_signature(KeyType::kSkEcdsaP256,
                                 sk_blob("webauthn-sk-ecdsa-sha2-nistp256@openssh.com", inner))),
      "sig_algorithm_mismatch");
}

TEST(SkSignatureTest, TruncatedOrTrailingBytesAreMalformed) {
  for (const auto& [type, file] : {std::pair{KeyType::kSkEcdsaP256, "sk_ecdsa.sig"},
                                   std::pair{KeyType::kSkEd25519, "sk_ed25519.sig"}}) {
    SCOPED_TRACE(file);
    const auto sig = load_sig(file).sig;
    for (size_t len = 0; len < sig.size(); ++len) {
      EXPECT_EQ(code_of(parse_sk_signature(type, Bytes(sig.data(), len))), "sig_malformed") << len;
    }
    auto longer = sig;
    longer.push_back(0);
    EXPECT_EQ(code_of(parse_sk_signature(type, longer)), "sig_malformed");
  }
}

TEST(SkSignatureTest, Ed25519ValueMustBe64Bytes) {
  for (size_t n : {0u, 63u, 65u}) {
    const std::vector<uint8_t> raw(n, 7);
    EXPECT_EQ(code_of(parse_sk_signature(KeyType::kSkEd25519, sk_blob(kEd25519Name, raw))),
              "sig_malformed")
        << n;
  }
  const std::vector<uint8_t> raw(64, 7);
  auto ok = parse_sk_signature(KeyType::kSkEd25519, sk_blob(kEd25519Name, raw, 0x05, 9));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->ed25519, raw);
  EXPECT_EQ(ok->flags, 0x05);
  EXPECT_EQ(ok->counter, 9u);
}

TEST(SkSignatureTest, EcdsaScalarsAreChecked) {
  const std::vector<uint8_t> one = {1};
  const std::vector<uint8_t> s32(32, 0xff);  // 32-byte magnitude: mpint with a leading zero
  const std::vector<uint8_t> s33(33, 0x01);
  auto parse = [](Bytes inner) {
    return code_of(parse_sk_signature(KeyType::kSkEcdsaP256, sk_blob(kEcdsaName, inner)));
  };
  EXPECT_EQ(parse(Writer().mpint(s32).mpint(s32).take()), "ok");
  EXPECT_EQ(parse(Writer().mpint(one).mpint(one).take()), "ok");
  EXPECT_EQ(parse(Writer().mpint(s33).mpint(one).take()), "sig_malformed");
  EXPECT_EQ(parse(Writer().mpint(one).mpint(s33).take()), "sig_malformed");
  EXPECT_EQ(parse(Writer().mpint(std::vector<uint8_t>{}).mpint(one).take()), "sig_malformed");
  EXPECT_EQ(parse(Writer().mpint(one).mpint(std::vector<uint8_t>{}).take()), "sig_malformed");
  EXPECT_EQ(parse(Writer().mpint(one).take()), "sig_malformed");
  EXPECT_EQ(parse(Writer().mpint(one).mpint(one).u8(0).take()), "sig_malformed");
  // Negative and non-minimal mpints.
  EXPECT_EQ(parse(Writer().string(std::vector<uint8_t>{0x80}).mpint(one).take()), "sig_malformed");
  EXPECT_EQ(parse(Writer().string(std::vector<uint8_t>{0x00, 0x01}).mpint(one).take()),
            "sig_malformed");
  // The inner value has a cap.
  std::vector<uint8_t> huge(1025, 0);
  EXPECT_EQ(parse(huge), "sig_malformed");
}

}  // namespace
}  // namespace touchgate::ssh
