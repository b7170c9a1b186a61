// Signer: a private key that signs for touchgate without showing itself — a key in a PKCS#11
// token (pkcs11/), or a key file as an explicit fallback. Implementations are in pkcs11/.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ssh/error.h"

namespace touchgate::ssh {

class Signer {
 public:
  virtual ~Signer() = default;

  // ready: whether the key can be used now (a signer that opens its key lazily tries here);
  // call it before public_key() and sign(). The error says why not.
  virtual Result<void> ready() { return {}; }
  // is_open: whether the key is open now, without trying to open it (never blocks).
  virtual bool is_open() const { return true; }

  // public_key is the key's SSH wire blob (e.g. "ecdsa-sha2-nistp256" / curve / point).
  virtual const std::vector<uint8_t>& public_key() const = 0;

  // sign returns an SSH signature blob over data: string algorithm, string signature (RFC 4253
  // 6.6, RFC 5656 3.1.2 for ECDSA, RFC 8709 for Ed25519; RSA as rsa-sha2-512). Errors carry a
  // stable code (e.g. "pkcs11_token_missing", "pkcs11_sign_failed") and never a secret.
  virtual Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) = 0;

  // describe names the key for logs and errors: "pkcs11:token=...;object=..." or the file path,
  // plus its SHA256 fingerprint.
  virtual std::string describe() const = 0;
};

}  // namespace touchgate::ssh
