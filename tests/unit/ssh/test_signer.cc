#include "tests/unit/ssh/test_signer.h"

#include <cstdio>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include "ssh/digest.h"
#include "ssh/writer.h"

namespace touchgate::ssh::testing {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Deleter>;

std::vector<uint8_t> bn_bytes(const BIGNUM* bn) {
  std::vector<uint8_t> out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  return out;
}

std::vector<uint8_t> bn_param(EVP_PKEY* pkey, const char* name) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) return {};
  Ptr<BIGNUM> bn(raw);
  return bn_bytes(bn.get());
}

// identify fills type and the SSH public key blob; false for keys tests do not use.
bool identify(EVP_PKEY* pkey, KeyType* type, std::vector<uint8_t>* blob) {
  Writer w;
  if (EVP_PKEY_is_a(pkey, "ED25519")) {
    std::vector<uint8_t> pk(32);
    size_t len = pk.size();
    if (EVP_PKEY_get_raw_public_key(pkey, pk.data(), &len) != 1 || len != 32) return false;
    *type = KeyType::kEd25519;
    w.string(key_type_name(*type)).string(pk);
  } else if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {};
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       nullptr) != 1) {
      return false;
    }
    const std::string_view g(group);
    std::string_view curve;
    if (g == "prime256v1" || g == "P-256") {
      *type = KeyType::kEcdsaP256;
      curve = "nistp256";
    } else if (g == "secp384r1" || g == "P-384") {
      *type = KeyType::kEcdsaP384;
      curve = "nistp384";
    } else if (g == "secp521r1" || g == "P-521") {
      *type = KeyType::kEcdsaP521;
      curve = "nistp521";
    } else {
      return false;
    }
    EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                   "uncompressed");
    std::vector<uint8_t> point(256);
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(),
                                        &len) != 1) {
      return false;
    }
    point.resize(len);
    w.string(key_type_name(*type)).string(curve).string(point);
  } else if (EVP_PKEY_is_a(pkey, "RSA")) {
    *type = KeyType::kRsa;
    w.string(key_type_name(*type))
        .mpint(bn_param(pkey, OSSL_PKEY_PARAM_RSA_E))
        .mpint(bn_param(pkey, OSSL_PKEY_PARAM_RSA_N));
  } else {
    return false;
  }
  *blob = w.take();
  return true;
}

}  // namespace

TestSigner::TestSigner(EVP_PKEY* pkey) : pkey_(pkey) {}

TestSigner::~TestSigner() {
  EVP_PKEY_free(pkey_);
}

std::unique_ptr<TestSigner> TestSigner::generate(KeyType type) {
  EVP_PKEY* pkey = nullptr;
  switch (type) {
    case KeyType::kEd25519:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    case KeyType::kEcdsaP256:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::kEcdsaP384:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case KeyType::kEcdsaP521:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521");
      break;
    case KeyType::kRsa:
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
      break;
    default:
      return nullptr;
  }
  if (pkey == nullptr) return nullptr;
  std::unique_ptr<TestSigner> s(new TestSigner(pkey));
  if (!identify(pkey, &s->type_, &s->public_key_)) return nullptr;
  return s;
}

std::unique_ptr<TestSigner> TestSigner::ed25519_from_seed(std::span<const uint8_t> seed) {
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (pkey == nullptr) return nullptr;
  std::unique_ptr<TestSigner> s(new TestSigner(pkey));
  if (!identify(pkey, &s->type_, &s->public_key_)) return nullptr;
  return s;
}

Result<std::unique_ptr<TestSigner>> TestSigner::load_pem(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return fail("test_signer_key", "cannot open " + path);
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (pkey == nullptr) return fail("test_signer_key", path + " is not a PEM private key");
  std::unique_ptr<TestSigner> s(new TestSigner(pkey));
  if (!identify(pkey, &s->type_, &s->public_key_)) {
    return fail("test_signer_key", path + " holds a key type tests do not use");
  }
  return s;
}

Result<std::vector<uint8_t>> TestSigner::sign(std::span<const uint8_t> data) {
  const EVP_MD* md = nullptr;
  std::string_view alg;
  switch (type_) {
    case KeyType::kEd25519:
      alg = "ssh-ed25519";
      break;
    case KeyType::kEcdsaP256:
      md = EVP_sha256();
      alg = "ecdsa-sha2-nistp256";
      break;
    case KeyType::kEcdsaP384:
      md = EVP_sha384();
      alg = "ecdsa-sha2-nistp384";
      break;
    case KeyType::kEcdsaP521:
      md = EVP_sha512();
      alg = "ecdsa-sha2-nistp521";
      break;
    case KeyType::kRsa:
      md = rsa_hash_ == RsaHash::kSha512   ? EVP_sha512()
           : rsa_hash_ == RsaHash::kSha256 ? EVP_sha256()
                                           : EVP_sha1();
      alg = rsa_hash_ == RsaHash::kSha512   ? "rsa-sha2-512"
            : rsa_hash_ == RsaHash::kSha256 ? "rsa-sha2-256"
                                            : "ssh-rsa";
      break;
    default:
      return fail("test_signer_failed", "unsupported key type");
  }
  Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, pkey_) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return fail("test_signer_failed", "OpenSSL cannot sign");
  }
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1) {
    return fail("test_signer_failed", "OpenSSL cannot sign");
  }
  sig.resize(len);
  Writer inner;
  if (type_ == KeyType::kEcdsaP256 || type_ == KeyType::kEcdsaP384 ||
      type_ == KeyType::kEcdsaP521) {
    const unsigned char* p = sig.data();
    Ptr<ECDSA_SIG> ec(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
    if (!ec) return fail("test_signer_failed", "OpenSSL returned a malformed ECDSA signature");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(ec.get(), &r, &s);
    inner.mpint(bn_bytes(r)).mpint(bn_bytes(s));
  } else {
    inner.raw(sig);
  }
  return Writer().string(alg).string(inner.bytes()).take();
}

std::string TestSigner::describe() const {
  return "test key " + fingerprint_sha256(public_key_);
}

std::string TestSigner::private_pem() const {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), pkey_, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string TestSigner::public_line(const std::string& comment) const {
  return std::string(key_type_name(type_)) + " " + base64_encode(public_key_) +
         (comment.empty() ? "" : " " + comment);
}

}  // namespace touchgate::ssh::testing
