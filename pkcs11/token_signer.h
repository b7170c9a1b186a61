// TokenSigner: the gateway's CA key in a PKCS#11 token. The key never leaves the token; the
// gateway asks the token to sign.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "pkcs11/module.h"
#include "pkcs11/uri.h"
#include "ssh/signer.h"

namespace touchgate::pkcs11 {

class TokenSigner final : public ssh::Signer {
 public:
  // open loads the module at module_path, finds the token and private key that uri names, logs
  // in with the PIN in pin_file and reads the public key. The PIN is read again from pin_file at
  // every later login and never kept in memory. Codes: those of Module::load, Module::find_slot,
  // open_session, login and find_private_key.
  static Result<std::unique_ptr<TokenSigner>> open(const std::filesystem::path& module_path,
                                                   const Uri& uri,
                                                   const std::filesystem::path& pin_file);
  ~TokenSigner() override;

  const std::vector<uint8_t>& public_key() const override { return public_key_.blob; }

  // sign asks the token to sign: ECDSA (CKM_ECDSA over the SHA-256/384/512 digest, by curve)
  // re-encoded as SSH mpints r and s; Ed25519 with CKM_EDDSA; RSA with CKM_SHA512_RSA_PKCS
  // (rsa-sha2-512). When the token, the session or the key handle is gone, sign fails with
  // "pkcs11_token_missing" and the next call opens a new session and logs in again (so a
  // re-inserted token works without a restart; while it is still out, that call fails with
  // "pkcs11_token_missing" too); the key found then must be the same key, else
  // "pkcs11_key_changed". Other failures: "pkcs11_sign_failed", or those of login. Serialised by
  // one mutex.
  Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) override;

  // describe is "pkcs11:token=...;object=...;id=... SHA256:...".
  std::string describe() const override;

 private:
  TokenSigner() = default;
  // reopen finds the token, opens a session, logs in and finds the key. When recovering from a
  // lost token, a token the module does not list makes it initialise the module again (see
  // Module::reinitialize) and look once more; a token still not found is
  // "pkcs11_token_missing". mutex_ is held, and use shared (released while reinitialising).
  Result<void> reopen(bool recovering, std::shared_lock<std::shared_mutex>& use);
  Result<std::vector<uint8_t>> sign_raw(CK_MECHANISM_TYPE mechanism, ssh::Bytes input);

  std::mutex mutex_;
  std::shared_ptr<Module> module_;
  Uri uri_;
  std::filesystem::path pin_file_;
  Session session_;
  CK_OBJECT_HANDLE key_ = 0;
  ssh::PublicKey public_key_;
};

}  // namespace touchgate::pkcs11
