// Security-key signatures (OpenSSH PROTOCOL.u2f). Trust boundary: bytes from the client's agent.
//
// Wire form: string alg, string sig, byte flags, uint32 counter. sk-ecdsa: sig = mpint r, mpint s;
// sk-ed25519: sig = 64 raw bytes. The authenticator signed
// SHA256(application) || flags || counter(be32) || SHA256(message).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/key.h"
#include "ssh/reader.h"

namespace touchgate::ssh {

inline constexpr uint8_t kSkUserPresent = 0x01;
inline constexpr uint8_t kSkUserVerified = 0x04;

struct SkSignature {
  KeyType type = KeyType::kSkEcdsaP256;  // kSkEcdsaP256 or kSkEd25519
  std::vector<uint8_t> ecdsa_r;          // magnitudes, big-endian, at most 32 bytes each
  std::vector<uint8_t> ecdsa_s;
  std::vector<uint8_t> ed25519;  // 64 bytes
  uint8_t flags = 0;
  uint32_t counter = 0;
};

// parse_sk_signature parses sig_blob made by a key of key_type (which must be an sk type). The
// algorithm name must be the key's own; r and s must be 1..32 bytes; ed25519 exactly 64; nothing
// trailing. Codes: "sig_malformed", "sig_algorithm_mismatch".
Result<SkSignature> parse_sk_signature(KeyType key_type, Bytes sig_blob);

// sk_signed_data returns the 69 bytes the authenticator signed: SHA256(application) || flags ||
// counter || SHA256(message).
std::vector<uint8_t> sk_signed_data(std::string_view application, uint8_t flags, uint32_t counter,
                                    Bytes message);

}  // namespace touchgate::ssh
