// Fuzz target: security-key signature blobs (trust boundary: signatures from the client's agent),
// parsed as made by either sk key type. An input that starts with an SSH string is also read as
// `string public_key || signature`, the key parsed and the rest parsed as that key's signature.
// Seed corpus: corpus/sk_signature/ (sk-dummy signatures from tests/data/touch/generate.sh).
// Invariants violated abort.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "ssh/key.h"
#include "ssh/sk_signature.h"
#include "ssh/writer.h"

namespace {

using namespace touchgate::ssh;

void check(KeyType type, Bytes blob) {
  auto sig = parse_sk_signature(type, blob);
  if (!sig) return;
  if (sig->type != type) __builtin_trap();
  Writer inner;
  if (type == KeyType::kSkEcdsaP256) {
    if (sig->ecdsa_r.empty() || sig->ecdsa_r.size() > 32 || sig->ecdsa_s.empty() ||
        sig->ecdsa_s.size() > 32 || !sig->ed25519.empty()) {
      __builtin_trap();
    }
    inner.mpint(sig->ecdsa_r).mpint(sig->ecdsa_s);
  } else {
    if (sig->ed25519.size() != 64 || !sig->ecdsa_r.empty()) __builtin_trap();
    inner.raw(sig->ed25519);
  }
  // An accepted signature is canonical: encoding it again gives the same bytes.
  const auto again = Writer()
                         .string(key_type_name(type))
                         .string(inner.bytes())
                         .u8(sig->flags)
                         .u32(sig->counter)
                         .take();
  if (!std::equal(again.begin(), again.end(), blob.begin(), blob.end())) __builtin_trap();
  if (sk_signed_data("ssh:", sig->flags, sig->counter, blob).size() != 69) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes input(data, size);
  check(KeyType::kSkEcdsaP256, input);
  check(KeyType::kSkEd25519, input);
  for (KeyType plain : {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa}) {
    if (parse_sk_signature(plain, input)) __builtin_trap();
  }

  Reader r(input);
  Bytes key_blob;
  if (r.string(&key_blob)) {
    if (auto key = parse_public_key(key_blob)) {
      if (is_security_key(key->type)) check(key->type, r.rest());
    }
  }
  return 0;
}
