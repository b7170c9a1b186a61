// FileSigner: the gateway's CA key in a PEM file, the explicit fallback when no token is
// configured. The key is in the gateway's memory; prefer a token.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ssh/key.h"
#include "ssh/signer.h"

namespace touchgate::pkcs11 {

class FileSigner final : public ssh::Signer {
 public:
  // open loads an unencrypted PEM private key (PKCS#8 "PRIVATE KEY", or traditional "EC PRIVATE
  // KEY" / "RSA PRIVATE KEY"): ECDSA P-256/P-384/P-521, Ed25519 or RSA of 2048 to 16384 bits.
  // The file must be a regular file of at most 64 KiB, not accessible to group or others. Codes:
  // "ca_key_file" (unreadable, not PEM, encrypted, OpenSSH format), "ca_key_file_mode",
  // "ca_key_unsupported" (other algorithms or curves).
  static Result<std::unique_ptr<FileSigner>> open(const std::filesystem::path& path);
  ~FileSigner() override;

  const std::vector<uint8_t>& public_key() const override { return public_key_.blob; }
  // sign signs as ssh-ed25519, ecdsa-sha2-nistp* (SHA-256/384/512 by curve) or rsa-sha2-512.
  // Code "ca_sign_failed". Safe to call from several threads.
  Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) override;
  // describe is "<path> SHA256:...".
  std::string describe() const override;

 private:
  struct Key;
  FileSigner() = default;

  std::filesystem::path path_;
  std::unique_ptr<Key> key_;
  ssh::PublicKey public_key_;
};

}  // namespace touchgate::pkcs11
