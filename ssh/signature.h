// Verification of SSH signatures (RFC 4253 §6.6, RFC 8332, RFC 5656, RFC 8709) with OpenSSL.
// sk (security-key) signatures are NOT handled here: they need FIDO semantics (fido/).
#pragma once

#include <string>
#include <vector>

#include "ssh/error.h"
#include "ssh/key.h"
#include "ssh/reader.h"

namespace touchgate::ssh {

struct SignatureOptions {
  // Accept "ssh-rsa" (RSA with SHA-1). Off by default: SHA-1 signatures are refused.
  bool allow_ssh_rsa_sha1 = false;
};

// verify_signature checks that sig_blob (`string alg, string sig`, nothing trailing) is a valid
// signature by key over data. The algorithm must belong to the key type: ssh-ed25519 for ed25519;
// ecdsa-sha2-nistpNNN with the key's curve (SHA-256/384/512 by curve, sig = mpint r, mpint s);
// rsa-sha2-256 / rsa-sha2-512 for RSA (ssh-rsa only with allow_ssh_rsa_sha1). Codes:
// "sig_malformed", "sig_algorithm_mismatch", "sig_sha1_refused", "sig_invalid", "sig_unsupported".
Result<void> verify_signature(const PublicKey& key, Bytes sig_blob, Bytes data,
                              const SignatureOptions& options = {});

// signature_algorithm returns the algorithm name at the head of sig_blob, or "" if unreadable.
std::string signature_algorithm(Bytes sig_blob);

// ecdsa_der encodes r and s (big-endian magnitudes, as read from SSH mpints) as the DER
// ECDSA-Sig-Value that OpenSSL and libfido2 verify. False if OpenSSL cannot encode them.
bool ecdsa_der(Bytes r, Bytes s, std::vector<uint8_t>* der);

}  // namespace touchgate::ssh
