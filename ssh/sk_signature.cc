// Trust boundary: parses security-key signature blobs that arrive from the client's agent.
#include "ssh/sk_signature.h"

#include <string>

#include "ssh/digest.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

constexpr size_t kMaxAlgorithmName = 256;
constexpr size_t kMaxInnerSignature = 1024;  // far above either form (64 or 2 x (4 + 33) bytes)
constexpr size_t kEcdsaScalarSize = 32;      // P-256
constexpr size_t kEd25519SigSize = 64;

tl::unexpected<Error> malformed(const std::string& message) {
  return fail("sig_malformed", "security-key signature " + message);
}

}  // namespace

Result<SkSignature> parse_sk_signature(KeyType key_type, Bytes sig_blob) {
  if (!is_security_key(key_type)) {
    return fail("sig_algorithm_mismatch", "a " + std::string(key_type_name(key_type)) +
                                              " key makes no security-key signature");
  }
  Reader r(sig_blob);
  std::string_view alg;
  if (!r.text(&alg, kMaxAlgorithmName)) return malformed("has no readable algorithm name");
  if (alg != key_type_name(key_type)) {
    return fail("sig_algorithm_mismatch", "signature algorithm " + std::string(alg) +
                                              " does not match the " +
                                              std::string(key_type_name(key_type)) + " key");
  }
  SkSignature out;
  out.type = key_type;
  Reader inner;
  if (!r.nested(&inner, kMaxInnerSignature)) return malformed("has an unreadable signature value");
  if (!r.u8(&out.flags) || !r.u32(&out.counter)) return malformed("lacks its flags or counter");
  if (!r.finish()) return malformed("has trailing bytes");

  if (key_type == KeyType::kSkEcdsaP256) {
    Bytes sr;
    Bytes ss;
    if (!inner.mpint(&sr, kEcdsaScalarSize + 1) || !inner.mpint(&ss, kEcdsaScalarSize + 1) ||
        !inner.finish()) {
      return malformed("has a malformed ECDSA value");
    }
    if (sr.empty() || ss.empty() || sr.size() > kEcdsaScalarSize || ss.size() > kEcdsaScalarSize) {
      return malformed("has an ECDSA r or s out of range");
    }
    out.ecdsa_r.assign(sr.begin(), sr.end());
    out.ecdsa_s.assign(ss.begin(), ss.end());
  } else {
    Bytes sig;
    if (!inner.bytes(kEd25519SigSize, &sig) || !inner.finish()) {
      return malformed("has an ed25519 value that is not 64 bytes");
    }
    out.ed25519.assign(sig.begin(), sig.end());
  }
  return out;
}

std::vector<uint8_t> sk_signed_data(std::string_view application, uint8_t flags, uint32_t counter,
                                    Bytes message) {
  return Writer()
      .raw(sha256(as_bytes(application)))
      .u8(flags)
      .u32(counter)
      .raw(sha256(message))
      .take();
}

}  // namespace touchgate::ssh
