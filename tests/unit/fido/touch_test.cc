#include "fido/touch.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "ssh/agent.h"
#include "ssh/key.h"
#include "ssh/sk_signature.h"
#include "ssh/sshsig.h"
#include "ssh/writer.h"

// Signatures below come from tests/data/touch/generate.sh: real ssh-keygen -Y sign with OpenSSH's
// software authenticator (sk-dummy: flags 0x01, counter 0x12345678) and plain keys, and a real
// ssh-agent's answers. The UV path is covered by signatures made here with OpenSSL.
namespace touchgate::fido {
namespace {

using ssh::Bytes;

constexpr uint32_t kSkDummyCounter = 0x12345678;
const std::string kNamespace = "touchgate-mfa@test";

std::string read_text(const std::string& name) {
  std::ifstream in(std::string(TOUCHGATE_TEST_DATA) + "/touch/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> read_data(const std::string& name) {
  std::string s = read_text(name);
  return {s.begin(), s.end()};
}

ssh::PublicKey load_key(const std::string& name) {
  auto line = ssh::parse_key_line(read_text(name + ".pub"));
  EXPECT_TRUE(line.has_value()) << name;
  if (!line) return {};
  auto key = ssh::parse_public_key(line->blob);
  EXPECT_TRUE(key.has_value()) << name << ": " << (key ? "" : key.error().message);
  return key.value_or(ssh::PublicKey{});
}

// A signature file made by ssh-keygen -Y sign, with the data its key signed.
struct Signed {
  ssh::Sshsig sig;
  std::vector<uint8_t> data;
};

Signed load_sig(const std::string& file) {
  auto blob = ssh::dearmor_sshsig(read_text(file));
  EXPECT_TRUE(blob.has_value()) << file;
  if (!blob) return {};
  auto sig = ssh::parse_sshsig(*blob);
  EXPECT_TRUE(sig.has_value()) << file << ": " << (sig ? "" : sig.error().message);
  if (!sig) return {};
  EXPECT_EQ(sig->ns, kNamespace);
  return {*sig, ssh::sshsig_signed_data(sig->ns, sig->hash, read_data("message.txt"))};
}

std::string code_of(const Result<VerifiedTouch>& r) {
  return r ? "ok" : r.error().code;
}

// ---- FIDO2: signatures from the software authenticator ----

TEST(TouchTest, SshsigTouchCarriesTheVerifiedMessageAndItsArmour) {
  // verify_sshsig_touch makes the signed data itself; the proof it returns is the file
  // ssh-keygen -Y sign wrote, byte for byte, and names the message that was verified.
  const std::string message = read_text("message.txt");
  for (const char* name : {"sk_ed25519", "sk_ecdsa", "ed25519"}) {
    SCOPED_TRACE(name);
    const std::string file = std::string(name) + ".sig";
    Signed s = load_sig(file);
    ASSERT_EQ(s.sig.hash, ssh::SshsigHash::kSha512);
    const TouchKind kind =
        std::string(name).rfind("sk_", 0) == 0 ? TouchKind::kFido2 : TouchKind::kPiv;
    auto touch =
        verify_sshsig_touch(load_key(name), kind, s.sig.signature, kNamespace, message, {});
    ASSERT_TRUE(touch.has_value()) << touch.error().message;
    EXPECT_EQ(touch->message(), message);
    EXPECT_EQ(touch->sshsig_namespace(), kNamespace);
    EXPECT_EQ(ssh::dearmor_sshsig(touch->sshsig()).value(),
              ssh::dearmor_sshsig(read_text(file)).value());
    EXPECT_EQ(touch->sshsig_blob(), ssh::dearmor_sshsig(read_text(file)).value());
    EXPECT_EQ(touch->signed_data(), s.data);
    // Another message, or another namespace: the same signature does not verify.
    EXPECT_EQ(code_of(verify_sshsig_touch(load_key(name), kind, s.sig.signature, kNamespace,
                                          message + "x", {})),
              "touch_sig_invalid");
    EXPECT_EQ(code_of(verify_sshsig_touch(load_key(name), kind, s.sig.signature,
                                          "touchgate-mfa@other", message, {})),
              "touch_sig_invalid");
  }
  // verify_touch alone (signed data given) carries no message and no armour.
  Signed s = load_sig("ed25519.sig");
  auto plain = verify_touch(load_key("ed25519"), TouchKind::kPiv, s.sig.signature, s.data, {});
  ASSERT_TRUE(plain.has_value());
  EXPECT_TRUE(plain->message().empty());
  EXPECT_TRUE(plain->sshsig().empty());
}

TEST(TouchTest, AcceptsSkDummySignaturesFromSshKeygen) {
  const std::pair<const char*, const char*> cases[] = {
      {"sk_ecdsa", "sk_ecdsa.sig"},           {"sk_ecdsa", "sk_ecdsa_sha256.sig"},
      {"sk_ed25519", "sk_ed25519.sig"},       {"sk_ecdsa", "agent_sk_ecdsa.sig"},
      {"sk_ed25519", "agent_sk_ed25519.sig"},
  };
  for (const auto& [key_name, file] : cases) {
    SCOPED_TRACE(file);
    const ssh::PublicKey key = load_key(key_name);
    const Signed s = load_sig(file);
    EXPECT_EQ(s.sig.public_key, key.blob);
    auto touch = verify_touch(key, TouchKind::kFido2, s.sig.signature, s.data, {});
    ASSERT_TRUE(touch.has_value()) << touch.error().code << ": " << touch.error().message;
    EXPECT_EQ(touch->kind(), TouchKind::kFido2);
    EXPECT_EQ(touch->flags(), 0x01);
    EXPECT_TRUE(touch->user_present());
    EXPECT_FALSE(touch->user_verified());
    EXPECT_EQ(touch->counter(), kSkDummyCounter);
    EXPECT_EQ(touch->fingerprint(), key.fingerprint());
    EXPECT_EQ(touch->key_type(), key.type_name());
    EXPECT_EQ(touch->key_blob(), key.blob);
    EXPECT_EQ(touch->signed_data(), s.data);
    EXPECT_EQ(touch->signature(), s.sig.signature);
  }
}

TEST(TouchTest, KeyTypesAreTheOpenSshNames) {
  const Signed s = load_sig("sk_ed25519.sig");
  auto touch = verify_touch(load_key("sk_ed25519"), TouchKind::kFido2, s.sig.signature, s.data, {});
  ASSERT_TRUE(touch.has_value());
  EXPECT_EQ(touch->key_type(), "sk-ssh-ed25519@openssh.com");
  EXPECT_EQ(touch->fingerprint().rfind("SHA256:", 0), 0u);
}

TEST(TouchTest, NoTouchRequiredSignaturesAreRefused) {
  for (const char* name : {"sk_ecdsa_notouch", "sk_ed25519_notouch"}) {
    SCOPED_TRACE(name);
    const ssh::PublicKey key = load_key(name);
    for (const std::string& file :
         {std::string(name) + ".sig", "agent_" + std::string(name) + ".sig"}) {
      const Signed s = load_sig(file);
      auto parsed = ssh::parse_sk_signature(key.type, s.sig.signature);
      ASSERT_TRUE(parsed.has_value());
      EXPECT_EQ(parsed->flags, 0x00);
      EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, s.sig.signature, s.data, {})),
                "touch_not_present");
    }
  }
}

TEST(TouchTest, RequiredUserVerificationMissingIsRefused) {
  TouchRequirements req;
  req.user_verification = true;
  for (const char* name : {"sk_ecdsa", "sk_ed25519"}) {
    SCOPED_TRACE(name);
    const Signed s = load_sig(std::string(name) + ".sig");
    EXPECT_EQ(
        code_of(verify_touch(load_key(name), TouchKind::kFido2, s.sig.signature, s.data, req)),
        "touch_pin_missing");
  }
}

TEST(TouchTest, TamperedMessageSignatureFlagsOrCounterAreInvalid) {
  for (const char* name : {"sk_ecdsa", "sk_ed25519"}) {
    SCOPED_TRACE(name);
    const ssh::PublicKey key = load_key(name);
    const Signed s = load_sig(std::string(name) + ".sig");
    auto data = s.data;
    data[data.size() - 1] ^= 0x01;
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, s.sig.signature, data, {})),
              "touch_sig_invalid");
    // Blob tail: ... sig value | flags (1) | counter (4).
    const size_t flags_at = s.sig.signature.size() - 5;
    auto sig = s.sig.signature;
    sig[flags_at - 2] ^= 0x01;  // inside the ed25519 value or the low bytes of ECDSA s
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, sig, s.data, {})), "touch_sig_invalid");
    sig = s.sig.signature;
    sig[flags_at] |= ssh::kSkUserVerified;  // claims a PIN the authenticator did not sign
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, sig, s.data, {})), "touch_sig_invalid");
    sig = s.sig.signature;
    sig[sig.size() - 1] ^= 0x01;  // counter
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, sig, s.data, {})), "touch_sig_invalid");
    // The SSHSIG namespace is part of the signed data.
    const auto other_ns =
        ssh::sshsig_signed_data("other@test", s.sig.hash, read_data("message.txt"));
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, s.sig.signature, other_ns, {})),
              "touch_sig_invalid");
  }
}

TEST(TouchTest, SignatureOfAnotherKeyOrApplicationIsInvalid) {
  const Signed s = load_sig("sk_ed25519.sig");
  // Same type, other key.
  EXPECT_EQ(code_of(verify_touch(load_key("sk_ed25519_notouch"), TouchKind::kFido2, s.sig.signature,
                                 s.data, {})),
            "touch_sig_invalid");
  // Same key material, other application: the signature covers SHA256(application).
  const ssh::PublicKey key = load_key("sk_ed25519");
  auto moved = ssh::parse_public_key(ssh::Writer()
                                         .string(key.type_name())
                                         .string(std::span<const uint8_t>(key.ed25519))
                                         .string("ssh:other")
                                         .take());
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(code_of(verify_touch(*moved, TouchKind::kFido2, s.sig.signature, s.data, {})),
            "touch_sig_invalid");
  // Other type: the algorithm name does not match.
  const Signed e = load_sig("sk_ecdsa.sig");
  EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, e.sig.signature, e.data, {})),
            "touch_sig_malformed");
}

TEST(TouchTest, MalformedSkSignaturesAreRefused) {
  for (const char* name : {"sk_ecdsa", "sk_ed25519"}) {
    SCOPED_TRACE(name);
    const ssh::PublicKey key = load_key(name);
    const Signed s = load_sig(std::string(name) + ".sig");
    for (size_t len = 0; len < s.sig.signature.size(); ++len) {
      const Bytes prefix(s.sig.signature.data(), len);
      EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, prefix, s.data, {})),
                "touch_sig_malformed")
          << len;
    }
    auto longer = s.sig.signature;
    longer.push_back(0);
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kFido2, longer, s.data, {})),
              "touch_sig_malformed");
  }
}

// ---- PIV: plain keys verified with OpenSSL ----

TEST(TouchTest, AcceptsPlainKeySignaturesAsPiv) {
  const std::pair<const char*, const char*> cases[] = {
      {"ed25519", "ed25519.sig"},         {"ed25519", "ed25519_sha256.sig"},
      {"ecdsa256", "ecdsa256.sig"},       {"ecdsa384", "ecdsa384.sig"},
      {"ecdsa521", "ecdsa521.sig"},       {"rsa", "rsa.sig"},
      {"ed25519", "agent_ed25519.sig"},   {"ecdsa256", "agent_ecdsa256.sig"},
      {"ecdsa521", "agent_ecdsa521.sig"}, {"rsa", "agent_rsa.sig"},
      {"rsa", "agent_rsa_sha256.sig"},
  };
  for (const auto& [key_name, file] : cases) {
    SCOPED_TRACE(file);
    const ssh::PublicKey key = load_key(key_name);
    const Signed s = load_sig(file);
    auto touch = verify_touch(key, TouchKind::kPiv, s.sig.signature, s.data, {});
    ASSERT_TRUE(touch.has_value()) << touch.error().code << ": " << touch.error().message;
    EXPECT_EQ(touch->kind(), TouchKind::kPiv);
    EXPECT_EQ(touch->flags(), 0);
    EXPECT_EQ(touch->counter(), 0u);
    EXPECT_FALSE(touch->user_present());
    EXPECT_EQ(touch->fingerprint(), key.fingerprint());
    EXPECT_EQ(touch->key_type(), key.type_name());
    EXPECT_EQ(touch->signature(), s.sig.signature);

    auto data = s.data;
    data[0] ^= 0x01;
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kPiv, s.sig.signature, data, {})),
              "touch_sig_invalid");
    auto sig = s.sig.signature;
    sig[sig.size() - 3] ^= 0x01;
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kPiv, sig, s.data, {})), "touch_sig_invalid");
    sig = s.sig.signature;
    sig.push_back(0);
    EXPECT_EQ(code_of(verify_touch(key, TouchKind::kPiv, sig, s.data, {})), "touch_sig_malformed");
  }
}

TEST(TouchTest, RsaSha1IsRefused) {
  const ssh::PublicKey key = load_key("rsa");
  // A real ssh-rsa (SHA-1) signature: the agent's answer to a SIGN_REQUEST with flags 0.
  ssh::agent::FrameBuffer frames;
  frames.append(read_data("agent/sign_response_rsa_sha1.bin"));
  auto body = frames.next();
  ASSERT_TRUE(body.has_value() && body->has_value());
  auto sig = ssh::agent::parse_sign_response(**body);
  ASSERT_TRUE(sig.has_value());
  auto request = read_data("agent/sign_request_rsa_sha1.bin");
  const auto data =
      ssh::sshsig_signed_data(kNamespace, ssh::SshsigHash::kSha512, read_data("message.txt"));
  ASSERT_EQ(request, ssh::agent::encode_sign_request(key.blob, data, 0));
  auto refused = verify_touch(key, TouchKind::kPiv, *sig, data, {});
  EXPECT_EQ(code_of(refused), "touch_sig_malformed");
  EXPECT_NE(refused.error().message.find("SHA-1"), std::string::npos) << refused.error().message;

  // An rsa-sha2-512 signature renamed ssh-rsa.
  const Signed s = load_sig("rsa.sig");
  ssh::Reader r(s.sig.signature);
  std::string_view alg;
  Bytes raw;
  ASSERT_TRUE(r.text(&alg) && r.string(&raw) && r.finish());
  EXPECT_EQ(alg, "rsa-sha2-512");
  auto renamed = ssh::Writer().string("ssh-rsa").string(raw).take();
  EXPECT_EQ(code_of(verify_touch(key, TouchKind::kPiv, renamed, s.data, {})),
            "touch_sig_malformed");
}

TEST(TouchTest, KindMustMatchTheKey) {
  const Signed sk = load_sig("sk_ed25519.sig");
  EXPECT_EQ(
      code_of(verify_touch(load_key("sk_ed25519"), TouchKind::kPiv, sk.sig.signature, sk.data, {})),
      "touch_kind_mismatch");
  const Signed plain = load_sig("ed25519.sig");
  for (const char* name : {"ed25519", "ecdsa256", "rsa"}) {
    EXPECT_EQ(code_of(verify_touch(load_key(name), TouchKind::kFido2, plain.sig.signature,
                                   plain.data, {})),
              "touch_kind_mismatch")
        << name;
  }
}

TEST(TouchTest, AgentAnswersVerifyEndToEnd) {
  // The identities answer lists the agent's keys; each sign response verifies over the signed
  // data of the request that touchgate would have sent.
  ssh::agent::FrameBuffer frames;
  frames.append(read_data("agent/identities_answer.bin"));
  auto body = frames.next();
  ASSERT_TRUE(body.has_value() && body->has_value());
  auto ids = ssh::agent::parse_identities_answer(**body);
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  const auto data =
      ssh::sshsig_signed_data(kNamespace, ssh::SshsigHash::kSha512, read_data("message.txt"));
  const std::pair<const char*, TouchKind> cases[] = {
      {"sk_ecdsa", TouchKind::kFido2}, {"sk_ed25519", TouchKind::kFido2},
      {"ed25519", TouchKind::kPiv},    {"ecdsa256", TouchKind::kPiv},
      {"ecdsa521", TouchKind::kPiv},   {"rsa", TouchKind::kPiv},
  };
  for (const auto& [name, kind] : cases) {
    SCOPED_TRACE(name);
    const ssh::PublicKey key = load_key(name);
    bool listed = false;
    for (const auto& id : *ids) listed = listed || id.key_blob == key.blob;
    EXPECT_TRUE(listed);
    const uint32_t flags = key.type == ssh::KeyType::kRsa ? ssh::agent::kSignRsaSha512 : 0;
    EXPECT_EQ(read_data("agent/sign_request_" + std::string(name) + ".bin"),
              ssh::agent::encode_sign_request(key.blob, data, flags));
    frames.append(read_data("agent/sign_response_" + std::string(name) + ".bin"));
    auto response = frames.next();
    ASSERT_TRUE(response.has_value() && response->has_value());
    auto sig = ssh::agent::parse_sign_response(**response);
    ASSERT_TRUE(sig.has_value());
    auto touch = verify_touch(key, kind, *sig, data, {});
    EXPECT_TRUE(touch.has_value()) << (touch ? "" : touch.error().message);
  }
}

// ---- Signatures made here: an authenticator that verified the user (flags 0x05) ----

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, PkeyDeleter>;

// SoftKey is an sk key whose private half lives in this test, standing in for an authenticator.
struct SoftKey {
  Ptr<EVP_PKEY> pkey;
  ssh::PublicKey key;

  static SoftKey ed25519(const std::string& application) {
    SoftKey k;
    k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    std::vector<uint8_t> pub(32);
    size_t len = pub.size();
    EXPECT_EQ(EVP_PKEY_get_raw_public_key(k.pkey.get(), pub.data(), &len), 1);
    auto parsed = ssh::parse_public_key(ssh::Writer()
                                            .string("sk-ssh-ed25519@openssh.com")
                                            .string(std::span<const uint8_t>(pub))
                                            .string(application)
                                            .take());
    EXPECT_TRUE(parsed.has_value());
    k.key = parsed.value_or(ssh::PublicKey{});
    return k;
  }

  static SoftKey ecdsa(const std::string& application) {
    SoftKey k;
    k.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    std::vector<uint8_t> point(65);
    size_t len = 0;
    EXPECT_EQ(EVP_PKEY_get_octet_string_param(k.pkey.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                              point.size(), &len),
              1);
    auto parsed = ssh::parse_public_key(ssh::Writer()
                                            .string("sk-ecdsa-sha2-nistp256@openssh.com")
                                            .string("nistp256")
                                            .string(std::span<const uint8_t>(point))
                                            .string(application)
                                            .take());
    EXPECT_TRUE(parsed.has_value());
    k.key = parsed.value_or(ssh::PublicKey{});
    return k;
  }

  // sign returns an sk signature blob over message as an authenticator reporting flags and
  // counter would make it.
  std::vector<uint8_t> sign(uint8_t flags, uint32_t counter, Bytes message) const {
    const auto tbs = ssh::sk_signed_data(key.application, flags, counter, message);
    const bool ed = key.type == ssh::KeyType::kSkEd25519;
    Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
    EXPECT_EQ(
        EVP_DigestSignInit(ctx.get(), nullptr, ed ? nullptr : EVP_sha256(), nullptr, pkey.get()),
        1);
    std::vector<uint8_t> sig(256);
    size_t len = sig.size();
    EXPECT_EQ(EVP_DigestSign(ctx.get(), sig.data(), &len, tbs.data(), tbs.size()), 1);
    sig.resize(len);
    ssh::Writer w;
    w.string(key.type_name());
    if (ed) {
      w.string(std::span<const uint8_t>(sig));
    } else {
      const uint8_t* p = sig.data();
      Ptr<ECDSA_SIG> ecdsa(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
      std::vector<uint8_t> r(BN_num_bytes(ECDSA_SIG_get0_r(ecdsa.get())));
      std::vector<uint8_t> s(BN_num_bytes(ECDSA_SIG_get0_s(ecdsa.get())));
      BN_bn2bin(ECDSA_SIG_get0_r(ecdsa.get()), r.data());
      BN_bn2bin(ECDSA_SIG_get0_s(ecdsa.get()), s.data());
      w.string(ssh::Writer().mpint(r).mpint(s).take());
    }
    return w.u8(flags).u32(counter).take();
  }
};

TEST(TouchTest, UserVerifiedSignatureIsAcceptedWhenRequired) {
  const auto data =
      ssh::sshsig_signed_data(kNamespace, ssh::SshsigHash::kSha512, read_data("message.txt"));
  TouchRequirements uv;
  uv.user_verification = true;
  for (bool ed : {true, false}) {
    SCOPED_TRACE(ed ? "ed25519" : "ecdsa");
    const SoftKey k = ed ? SoftKey::ed25519("ssh:touchgate") : SoftKey::ecdsa("ssh:touchgate");
    const auto sig = k.sign(0x05, 4242, data);
    auto touch = verify_touch(k.key, TouchKind::kFido2, sig, data, uv);
    ASSERT_TRUE(touch.has_value()) << touch.error().code << ": " << touch.error().message;
    EXPECT_EQ(touch->flags(), 0x05);
    EXPECT_TRUE(touch->user_present());
    EXPECT_TRUE(touch->user_verified());
    EXPECT_EQ(touch->counter(), 4242u);
    // Also fine when UV is not required.
    EXPECT_TRUE(verify_touch(k.key, TouchKind::kFido2, sig, data, {}).has_value());
    // The highest counter is reported as is (the store compares counters, not this check).
    auto top = verify_touch(k.key, TouchKind::kFido2, k.sign(0x05, 0xffffffff, data), data, uv);
    ASSERT_TRUE(top.has_value());
    EXPECT_EQ(top->counter(), 0xffffffffu);
    // PIN without touch is no touch.
    EXPECT_EQ(code_of(verify_touch(k.key, TouchKind::kFido2, k.sign(0x04, 1, data), data, uv)),
              "touch_not_present");
    // Touch without PIN while PIN is required.
    EXPECT_EQ(code_of(verify_touch(k.key, TouchKind::kFido2, k.sign(0x01, 1, data), data, uv)),
              "touch_pin_missing");
  }
}

TEST(TouchTest, ExtensionDataFlagWithoutExtensionsIsInvalid) {
  const auto data =
      ssh::sshsig_signed_data(kNamespace, ssh::SshsigHash::kSha256, read_data("message.txt"));
  const SoftKey k = SoftKey::ed25519("ssh:");
  // 0x80 announces extension data that an SSH signature cannot carry: libfido2 refuses it.
  EXPECT_EQ(code_of(verify_touch(k.key, TouchKind::kFido2, k.sign(0x81, 1, data), data, {})),
            "touch_sig_invalid");
  // Other flag bits are signed and passed through.
  auto touch = verify_touch(k.key, TouchKind::kFido2, k.sign(0x41, 9, data), data, {});
  ASSERT_TRUE(touch.has_value()) << touch.error().message;
  EXPECT_EQ(touch->flags(), 0x41);
}

}  // namespace
}  // namespace touchgate::fido
