// Trust boundary: verifies signature blobs from peers (CA signatures inside certificates).
#include "ssh/signature.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include <array>
#include <memory>
#include <vector>

namespace touchgate::ssh {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Deleter>;

constexpr size_t kEd25519SigSize = 64;

Ptr<EVP_PKEY> pkey_from_data(const char* algorithm, OSSL_PARAM* params) {
  Ptr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) return nullptr;
  return Ptr<EVP_PKEY>(raw);
}

Ptr<EVP_PKEY> ec_pkey(const char* group, const std::vector<uint8_t>& point) {
  std::array<OSSL_PARAM, 3> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end(),
  };
  return pkey_from_data("EC", params.data());
}

Ptr<EVP_PKEY> rsa_pkey(const std::vector<uint8_t>& e, const std::vector<uint8_t>& n) {
  Ptr<BIGNUM> bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  Ptr<BIGNUM> bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  Ptr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bn_e || !bn_n || !bld) return nullptr;
  if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return nullptr;
  }
  Ptr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return nullptr;
  return pkey_from_data("RSA", params.get());
}

// digest_verify runs a one-shot EVP_DigestVerify (md may be null for ed25519).
bool digest_verify(EVP_PKEY* pkey, const EVP_MD* md, Bytes sig, Bytes data) {
  Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, pkey) != 1) return false;
  return EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
}

// ssh_ecdsa_der converts the SSH `mpint r, mpint s` encoding into a DER ECDSA-Sig-Value.
bool ssh_ecdsa_der(Bytes ssh_sig, size_t max_scalar, std::vector<uint8_t>* der) {
  Reader r(ssh_sig);
  Bytes rb;
  Bytes sb;
  if (!r.mpint(&rb) || !r.mpint(&sb) || !r.finish()) return false;
  if (rb.empty() || sb.empty() || rb.size() > max_scalar || sb.size() > max_scalar) return false;
  return ecdsa_der(rb, sb, der);
}

}  // namespace

bool ecdsa_der(Bytes r, Bytes s, std::vector<uint8_t>* der) {
  Ptr<ECDSA_SIG> sig(ECDSA_SIG_new());
  Ptr<BIGNUM> bn_r(BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr));
  Ptr<BIGNUM> bn_s(BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr));
  if (!sig || !bn_r || !bn_s || ECDSA_SIG_set0(sig.get(), bn_r.get(), bn_s.get()) != 1) {
    return false;
  }
  bn_r.release();  // owned by sig now
  bn_s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der->resize(static_cast<size_t>(len));
  uint8_t* out = der->data();
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

std::string signature_algorithm(Bytes sig_blob) {
  Reader r(sig_blob);
  std::string_view alg;
  if (!r.text(&alg, 256)) return {};
  return std::string(alg);
}

Result<void> verify_signature(const PublicKey& key, Bytes sig_blob, Bytes data,
                              const SignatureOptions& options) {
  Reader r(sig_blob);
  std::string_view alg;
  Bytes sig;
  if (!r.text(&alg, 256) || !r.string(&sig) || !r.finish()) {
    return fail("sig_malformed", "signature is malformed");
  }
  auto mismatch = [&] {
    return fail("sig_algorithm_mismatch", "signature algorithm " + std::string(alg) +
                                              " does not match the " +
                                              std::string(key.type_name()) + " key");
  };
  auto invalid = [] { return fail("sig_invalid", "signature does not verify"); };

  switch (key.type) {
    case KeyType::kEd25519: {
      if (alg != "ssh-ed25519") return mismatch();
      if (sig.size() != kEd25519SigSize)
        return fail("sig_malformed", "ed25519 signature has a bad length");
      Ptr<EVP_PKEY> pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.ed25519.data(),
                                                     key.ed25519.size()));
      if (!pkey) return fail("sig_invalid", "ed25519 key is unusable");
      if (!digest_verify(pkey.get(), nullptr, sig, data)) return invalid();
      return {};
    }
    case KeyType::kEcdsaP256:
    case KeyType::kEcdsaP384:
    case KeyType::kEcdsaP521: {
      if (alg != key.type_name()) return mismatch();
      const char* group = "prime256v1";
      const EVP_MD* md = EVP_sha256();
      size_t scalar = 32;
      if (key.type == KeyType::kEcdsaP384) {
        group = "secp384r1";
        md = EVP_sha384();
        scalar = 48;
      } else if (key.type == KeyType::kEcdsaP521) {
        group = "secp521r1";
        md = EVP_sha512();
        scalar = 66;
      }
      std::vector<uint8_t> der;
      if (!ssh_ecdsa_der(sig, scalar, &der))
        return fail("sig_malformed", "ECDSA signature is malformed");
      Ptr<EVP_PKEY> pkey = ec_pkey(group, key.ecdsa_point);
      if (!pkey) return fail("sig_invalid", "ECDSA key is unusable");
      if (!digest_verify(pkey.get(), md, der, data)) return invalid();
      return {};
    }
    case KeyType::kRsa: {
      const EVP_MD* md = nullptr;
      if (alg == "rsa-sha2-256") {
        md = EVP_sha256();
      } else if (alg == "rsa-sha2-512") {
        md = EVP_sha512();
      } else if (alg == "ssh-rsa") {
        if (!options.allow_ssh_rsa_sha1) {
          return fail("sig_sha1_refused", "RSA signature with SHA-1 (ssh-rsa) is refused");
        }
        md = EVP_sha1();
      } else {
        return mismatch();
      }
      // Like OpenSSH, accept a signature shorter than the modulus by left-padding it with zeros.
      if (sig.empty() || sig.size() > key.rsa_n.size()) {
        return fail("sig_malformed", "RSA signature has a bad length");
      }
      std::vector<uint8_t> padded(key.rsa_n.size() - sig.size(), 0);
      padded.insert(padded.end(), sig.begin(), sig.end());
      Ptr<EVP_PKEY> pkey = rsa_pkey(key.rsa_e, key.rsa_n);
      if (!pkey) return fail("sig_invalid", "RSA key is unusable");
      if (!digest_verify(pkey.get(), md, padded, data)) return invalid();
      return {};
    }
    case KeyType::kSkEcdsaP256:
    case KeyType::kSkEd25519:
      return fail("sig_unsupported", "security-key signatures are not verified here");
  }
  return fail("sig_unsupported", "unsupported key type");
}

}  // namespace touchgate::ssh
