// TokenSigner against a real SoftHSM2 token (keys made by pkcs11-tool).
#include "pkcs11/token_signer.h"

#include <dlfcn.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pkcs11/open.h"
#include "ssh/reader.h"
#include "ssh/signature.h"
#include "tests/unit/pkcs11/softhsm.h"

namespace touchgate::pkcs11 {
namespace {

using testing::kSoftHsmModule;
using testing::SoftHsm;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

const std::vector<uint8_t> kMessage = {'c', 'e', 'r', 't', ' ', 't', 'b', 's'};

}  // namespace
}  // namespace touchgate::pkcs11

// SoftHSM2 2.6.1 leaks a small ASN.1 string on every CKM_EDDSA signature (not ours to fix). For
// LeakSanitizer to name it, the module stays mapped to the end (see SetUpTestSuite) and stacks
// are unwound through libcrypto, which has no frame pointers.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libsofthsm2.so\n";
}
extern "C" const char* __asan_default_options() {
  return "fast_unwind_on_malloc=0";
}

namespace touchgate::pkcs11 {
namespace {

class TokenSignerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    hsm_ = new SoftHsm();
    // Held until the process exits, so the module stays mapped between the signers that load
    // and unload it (as the gateway's one module would) and when LeakSanitizer reports.
    held_module_ = ::dlopen(kSoftHsmModule, RTLD_NOW | RTLD_LOCAL);
    ready_ = hsm_->make() && hsm_->keypair("EC:prime256v1", "01", "ca-p256") &&
             hsm_->keypair("EC:secp384r1", "02", "ca-p384") &&
             hsm_->keypair("EC:secp521r1", "03", "ca-p521") &&
             hsm_->keypair("EC:edwards25519", "04", "ca-ed25519") &&
             hsm_->keypair("rsa:2048", "05", "ca-rsa") &&
             hsm_->keypair("EC:prime256v1", "06", "twin") &&
             hsm_->keypair("EC:prime256v1", "07", "twin");
  }
  static void TearDownTestSuite() {
    hsm_->remove();
    delete hsm_;
    hsm_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ready_) << hsm_->error(); }

  static CaKeyConfig config(const std::string& uri) {
    CaKeyConfig c;
    c.pkcs11_uri = uri;
    c.module = kSoftHsmModule;
    c.pin_file = hsm_->pin_file();
    return c;
  }

  static Result<std::unique_ptr<ssh::Signer>> open(const std::string& uri) {
    return open_ca_signer(config(uri));
  }

  // expect_verifies signs kMessage and checks the signature with ssh/signature.h.
  static void expect_verifies(ssh::Signer& signer, std::string_view algorithm) {
    auto key = ssh::parse_public_key(signer.public_key());
    ASSERT_TRUE(key) << key.error().message;
    auto sig = signer.sign(kMessage);
    ASSERT_TRUE(sig) << sig.error().code << ": " << sig.error().message;
    EXPECT_EQ(ssh::signature_algorithm(*sig), algorithm);
    auto ok = ssh::verify_signature(*key, *sig, kMessage);
    EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
    std::vector<uint8_t> other = kMessage;
    other.back() ^= 1;
    EXPECT_FALSE(ssh::verify_signature(*key, *sig, other));
  }

  static SoftHsm* hsm_;
  static void* held_module_;
  static bool ready_;
};

SoftHsm* TokenSignerTest::hsm_ = nullptr;
void* TokenSignerTest::held_module_ = nullptr;
bool TokenSignerTest::ready_ = false;

TEST_F(TokenSignerTest, SignsWithEachKeyTypeAndSignaturesVerify) {
  const struct {
    const char* uri;
    const char* key_type;
    const char* algorithm;
  } cases[] = {
      {"pkcs11:token=tg-test;object=ca-p256;type=private", "ecdsa-sha2-nistp256",
       "ecdsa-sha2-nistp256"},
      {"pkcs11:token=tg-test;object=ca-p384", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"},
      {"pkcs11:token=tg-test;id=%03", "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"},
      {"pkcs11:token=tg-test;object=ca-ed25519;id=%04", "ssh-ed25519", "ssh-ed25519"},
      {"pkcs11:object=ca-rsa;type=private", "ssh-rsa", "rsa-sha2-512"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.uri);
    auto signer = open(c.uri);
    ASSERT_TRUE(signer) << signer.error().code << ": " << signer.error().message;
    auto key = ssh::parse_public_key((*signer)->public_key());
    ASSERT_TRUE(key);
    EXPECT_EQ(key->type_name(), c.key_type);
    expect_verifies(**signer, c.algorithm);
    EXPECT_NE((*signer)->describe().find(key->fingerprint()), std::string::npos);
    EXPECT_EQ((*signer)->describe().find("type="), std::string::npos);
  }
}

// The public key and the signature checked with OpenSSL directly, against the public key object
// as pkcs11-tool exports it.
TEST_F(TokenSignerTest, MatchesPublicKeyExportedByPkcs11Tool) {
  const auto der_path = hsm_->dir() / "p256.der";
  ASSERT_TRUE(hsm_->export_public("01", der_path)) << hsm_->error();
  std::ifstream in(der_path, std::ios::binary);
  const std::vector<uint8_t> der((std::istreambuf_iterator<char>(in)), {});
  const unsigned char* p = der.data();
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_TRUE(pkey);

  auto signer = open("pkcs11:token=tg-test;object=ca-p256");
  ASSERT_TRUE(signer) << signer.error().message;
  auto key = ssh::parse_public_key((*signer)->public_key());
  ASSERT_TRUE(key);
  std::vector<uint8_t> point(65);
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_octet_string_param(pkey.get(), "encoded-pub-key", point.data(),
                                            point.size(), &len),
            1);
  point.resize(len);
  EXPECT_EQ(point, key->ecdsa_point);

  auto sig = (*signer)->sign(kMessage);
  ASSERT_TRUE(sig);
  ssh::Reader r(*sig);
  ssh::Bytes alg;
  ssh::Reader rs;
  ssh::Bytes sig_r;
  ssh::Bytes sig_s;
  ASSERT_TRUE(r.string(&alg) && r.nested(&rs) && r.finish());
  ASSERT_TRUE(rs.mpint(&sig_r) && rs.mpint(&sig_s) && rs.finish());
  std::vector<uint8_t> ecdsa;
  ASSERT_TRUE(ssh::ecdsa_der(sig_r, sig_s, &ecdsa));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  ASSERT_EQ(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()), 1);
  EXPECT_EQ(
      EVP_DigestVerify(ctx.get(), ecdsa.data(), ecdsa.size(), kMessage.data(), kMessage.size()), 1);
}

TEST_F(TokenSignerTest, WrongPinIsLoginFailedWithoutThePin) {
  const auto wrong = hsm_->dir() / "wrong-pin";
  testing::write_file(wrong, "271828\n");
  CaKeyConfig c = config("pkcs11:token=tg-test;object=ca-p256");
  c.pin_file = wrong;
  auto signer = open_ca_signer(c);
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().code, "pkcs11_login_failed");
  EXPECT_NE(signer.error().message.find("CKR_PIN_INCORRECT"), std::string::npos);
  EXPECT_EQ(signer.error().message.find("271828"), std::string::npos);
  EXPECT_EQ(signer.error().message.find(testing::kUserPin), std::string::npos);
}

TEST_F(TokenSignerTest, PinFileReadableByOthersRefused) {
  const auto loose = hsm_->dir() / "loose-pin";
  testing::write_file(loose, std::string(testing::kUserPin) + "\n", 0644);
  CaKeyConfig c = config("pkcs11:token=tg-test;object=ca-p256");
  c.pin_file = loose;
  auto signer = open_ca_signer(c);
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().code, "pkcs11_pin_file_mode");
  EXPECT_NE(signer.error().message.find("0644"), std::string::npos);
  EXPECT_EQ(signer.error().message.find(testing::kUserPin), std::string::npos);
}

TEST_F(TokenSignerTest, PinFromUriPinSource) {
  CaKeyConfig c =
      config("pkcs11:token=tg-test;object=ca-p256?pin-source=file:" + hsm_->pin_file().string());
  c.pin_file.clear();
  auto signer = open_ca_signer(c);
  ASSERT_TRUE(signer) << signer.error().message;
  expect_verifies(**signer, "ecdsa-sha2-nistp256");
}

TEST_F(TokenSignerTest, ModuleFromUriModulePath) {
  CaKeyConfig c =
      config(std::string("pkcs11:token=tg-test;object=ca-p384?module-path=") + kSoftHsmModule);
  c.module.clear();
  auto signer = open_ca_signer(c);
  ASSERT_TRUE(signer) << signer.error().message;
  expect_verifies(**signer, "ecdsa-sha2-nistp384");
}

TEST_F(TokenSignerTest, MissingTokenNamesTheTokensPresent) {
  auto signer = open("pkcs11:token=no-such-token;object=ca-p256");
  ASSERT_FALSE(signer);
  EXPECT_EQ(signer.error().code, "pkcs11_token_not_found");
  EXPECT_NE(signer.error().message.find("\"tg-test\""), std::string::npos)
      << signer.error().message;
}

TEST_F(TokenSignerTest, KeyNotFoundAndAmbiguous) {
  auto none = open("pkcs11:token=tg-test;object=no-such-key");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "pkcs11_key_not_found");
  auto wrong_id = open("pkcs11:token=tg-test;object=ca-p256;id=%02");
  ASSERT_FALSE(wrong_id);
  EXPECT_EQ(wrong_id.error().code, "pkcs11_key_not_found");
  auto twins = open("pkcs11:token=tg-test;object=twin");
  ASSERT_FALSE(twins);
  EXPECT_EQ(twins.error().code, "pkcs11_key_ambiguous");
  auto everything = open("pkcs11:token=tg-test");
  ASSERT_FALSE(everything);
  EXPECT_EQ(everything.error().code, "pkcs11_key_ambiguous");
  auto one_twin = open("pkcs11:token=tg-test;object=twin;id=%07");
  ASSERT_TRUE(one_twin) << one_twin.error().message;
}

TEST_F(TokenSignerTest, UriThatCannotNameASigningKey) {
  auto pub = open("pkcs11:token=tg-test;object=ca-p256;type=public");
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.error().code, "pkcs11_bad_uri");
  auto pin = open("pkcs11:token=tg-test;object=ca-p256?pin-value=314159");
  ASSERT_FALSE(pin);
  EXPECT_EQ(pin.error().code, "pkcs11_bad_uri");
  EXPECT_EQ(pin.error().message.find("314159"), std::string::npos);
}

TEST_F(TokenSignerTest, ModuleThatDoesNotExistOrIsNotAModule) {
  CaKeyConfig c = config("pkcs11:token=tg-test;object=ca-p256");
  c.module = hsm_->dir() / "no-such-module.so";
  auto missing = open_ca_signer(c);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "pkcs11_module_missing");

  c.module = hsm_->dir() / "softhsm2.conf";
  auto not_elf = open_ca_signer(c);
  ASSERT_FALSE(not_elf);
  EXPECT_EQ(not_elf.error().code, "pkcs11_module_load");

  // A real shared library without C_GetFunctionList: the libcrypto this test is linked with.
  Dl_info info{};
  ASSERT_NE(::dladdr(reinterpret_cast<void*>(&EVP_sha256), &info), 0);
  c.module = info.dli_fname;
  auto not_module = open_ca_signer(c);
  ASSERT_FALSE(not_module);
  EXPECT_EQ(not_module.error().code, "pkcs11_not_a_module");
  EXPECT_NE(not_module.error().message.find("C_GetFunctionList"), std::string::npos);

  c.module = "libsofthsm2.so";
  auto relative = open_ca_signer(c);
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().code, "pkcs11_module_missing");
}

// Another user of the module closes every session on the token (as a token pulled out and put
// back does): the next signature fails as pkcs11_token_missing, the one after logs in again.
TEST_F(TokenSignerTest, SessionLostThenRecovered) {
  auto signer = open("pkcs11:token=tg-test;object=ca-ed25519");
  ASSERT_TRUE(signer) << signer.error().message;
  expect_verifies(**signer, "ssh-ed25519");

  void* module = ::dlopen(kSoftHsmModule, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  ASSERT_TRUE(module);
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(module, "C_GetFunctionList"));
  CK_FUNCTION_LIST* f = nullptr;
  ASSERT_EQ(get_list(&f), CKR_OK);
  CK_SLOT_ID slots[8];
  CK_ULONG count = 8;
  ASSERT_EQ(f->C_GetSlotList(CK_TRUE, slots, &count), CKR_OK);
  for (CK_ULONG i = 0; i < count; ++i) EXPECT_EQ(f->C_CloseAllSessions(slots[i]), CKR_OK);
  ::dlclose(module);

  auto lost = (*signer)->sign(kMessage);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, "pkcs11_token_missing");
  EXPECT_NE(lost.error().message.find("CKR_SESSION_HANDLE_INVALID"), std::string::npos)
      << lost.error().message;
  expect_verifies(**signer, "ssh-ed25519");
}

// The token goes away (SoftHSM2's token directory moved out of its tokendir) and comes back: the
// signer reports it missing while it is out and signs again with the same key once it is back.
TEST_F(TokenSignerTest, TokenRemovedThenPutBack) {
  auto signer = open("pkcs11:token=tg-test;object=ca-p384");
  ASSERT_TRUE(signer) << signer.error().message;
  const std::vector<uint8_t> key_before = (*signer)->public_key();
  expect_verifies(**signer, "ecdsa-sha2-nistp384");

  const auto tokens = hsm_->dir() / "tokens";
  const auto away = hsm_->dir() / "tokens-away";
  std::filesystem::rename(tokens, away);
  std::filesystem::create_directory(tokens);
  for (int i = 0; i < 2; ++i) {
    auto sig = (*signer)->sign(kMessage);
    ASSERT_FALSE(sig);
    EXPECT_EQ(sig.error().code, "pkcs11_token_missing") << sig.error().message;
  }
  std::filesystem::remove(tokens);
  std::filesystem::rename(away, tokens);

  expect_verifies(**signer, "ecdsa-sha2-nistp384");
  EXPECT_EQ((*signer)->public_key(), key_before);
}

// A different token with the same label and key label takes the place of the first: the signer
// refuses to sign with a key other than the one it was opened with.
TEST_F(TokenSignerTest, ReplacedTokenRefused) {
  auto signer = open("pkcs11:token=tg-test;object=ca-p256;id=%01");
  ASSERT_TRUE(signer) << signer.error().message;
  expect_verifies(**signer, "ecdsa-sha2-nistp256");

  const auto tokens = hsm_->dir() / "tokens";
  const auto away = hsm_->dir() / "tokens-away";
  std::filesystem::rename(tokens, away);
  std::filesystem::create_directory(tokens);
  ASSERT_TRUE(hsm_->init_token() && hsm_->keypair("EC:prime256v1", "01", "ca-p256"))
      << hsm_->error();
  auto gone = (*signer)->sign(kMessage);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, "pkcs11_token_missing");
  auto changed = (*signer)->sign(kMessage);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, "pkcs11_key_changed") << changed.error().message;

  std::filesystem::remove_all(tokens);
  std::filesystem::rename(away, tokens);
  expect_verifies(**signer, "ecdsa-sha2-nistp256");
}

TEST_F(TokenSignerTest, ConcurrentSignaturesAllVerify) {
  auto signer = open("pkcs11:token=tg-test;object=ca-p256");
  ASSERT_TRUE(signer) << signer.error().message;
  auto key = ssh::parse_public_key((*signer)->public_key());
  ASSERT_TRUE(key);
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (size_t t = 0; t < good.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto sig = (*signer)->sign(kMessage);
        if (sig && ssh::verify_signature(*key, *sig, kMessage)) ++good[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const int n : good) EXPECT_EQ(n, 10);
}

// The CA key and the audit key may live in one module: the process loads each library once, and
// every signer of it shares that Module.
TEST_F(TokenSignerTest, OneModulePerLibrary) {
  auto first = Module::load(kSoftHsmModule);
  ASSERT_TRUE(first) << first.error().message;
  auto second = Module::load(kSoftHsmModule);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(first->get(), second->get());
  const auto link = hsm_->dir() / "libsofthsm2-link.so";
  std::filesystem::create_symlink(kSoftHsmModule, link);
  auto by_link = Module::load(link);
  ASSERT_TRUE(by_link) << by_link.error().message;
  EXPECT_EQ(by_link->get(), first->get());
  std::filesystem::remove(link);
}

// One signer's recovery reinitialises the module (as a token put back needs) while another signer
// of the same module signs on another thread: that one waits for it, replaces its lost session
// without a failure, and every signature verifies.
TEST_F(TokenSignerTest, ReinitialisedUnderAnotherSignersFeet) {
  auto ca = open("pkcs11:token=tg-test;object=ca-p256");
  ASSERT_TRUE(ca) << ca.error().message;
  auto other = open("pkcs11:token=tg-test;object=ca-ed25519");
  ASSERT_TRUE(other) << other.error().message;
  auto module = Module::load(kSoftHsmModule);
  ASSERT_TRUE(module) << module.error().message;
  auto key = ssh::parse_public_key((*ca)->public_key());
  ASSERT_TRUE(key);

  std::atomic<bool> stop{false};
  int good = 0;
  std::vector<std::string> errors;
  std::thread signing([&] {
    while (!stop.load()) {
      auto sig = (*ca)->sign(kMessage);
      if (!sig) {
        errors.push_back(sig.error().code + ": " + sig.error().message);
      } else if (ssh::verify_signature(*key, *sig, kMessage)) {
        ++good;
      } else {
        errors.push_back("a signature does not verify");
      }
    }
  });
  for (int i = 0; i < 10; ++i) {
    auto again = (*module)->reinitialize();
    EXPECT_TRUE(again) << again.error().message;
    expect_verifies(**other, "ssh-ed25519");
  }
  stop = true;
  signing.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_GT(good, 0);
}

}  // namespace
}  // namespace touchgate::pkcs11
