// TestSigner: an ssh::Signer over an OpenSSL key held in memory, for tests, the fuzz target and
// tests/tools/cert_mint only (the gateway's signers live in pkcs11/).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "ssh/error.h"
#include "ssh/key.h"
#include "ssh/signer.h"

namespace touchgate::ssh::testing {

class TestSigner : public Signer {
 public:
  // RSA keys sign with rsa-sha2-512 unless told otherwise (kSha1 is the refused "ssh-rsa").
  enum class RsaHash { kSha512, kSha256, kSha1 };

  // generate makes a fresh key: ed25519, ecdsa P-256/384/521 or RSA 2048 (sk types: nullptr).
  static std::unique_ptr<TestSigner> generate(KeyType type);
  // ed25519_from_seed is the ed25519 key with this 32-byte private seed (deterministic).
  static std::unique_ptr<TestSigner> ed25519_from_seed(std::span<const uint8_t> seed);
  // load_pem reads a PEM private key: PKCS#8 (openssl genpkey) or the traditional EC / RSA forms
  // (ssh-keygen -m PEM). Code "test_signer_key".
  static Result<std::unique_ptr<TestSigner>> load_pem(const std::string& path);

  ~TestSigner() override;
  TestSigner(const TestSigner&) = delete;
  TestSigner& operator=(const TestSigner&) = delete;

  const std::vector<uint8_t>& public_key() const override { return public_key_; }
  Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) override;
  std::string describe() const override;

  void set_rsa_hash(RsaHash hash) { rsa_hash_ = hash; }
  // private_pem is the key as unencrypted PKCS#8 PEM.
  std::string private_pem() const;
  // public_line is the OpenSSH .pub line ("type base64 comment").
  std::string public_line(const std::string& comment) const;

 private:
  explicit TestSigner(EVP_PKEY* pkey);
  EVP_PKEY* pkey_;
  KeyType type_ = KeyType::kEd25519;
  std::vector<uint8_t> public_key_;
  RsaHash rsa_hash_ = RsaHash::kSha512;
};

}  // namespace touchgate::ssh::testing
