// OpenSSH certificates (PROTOCOL.certkeys): parsing only. Trust decisions live in validate.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ssh/error.h"
#include "ssh/key.h"
#include "ssh/reader.h"

namespace touchgate::ssh {

inline constexpr uint32_t kCertTypeUser = 1;
inline constexpr uint32_t kCertTypeHost = 2;

struct CertOption {
  std::string name;
  std::vector<uint8_t> data;  // the option's data string contents (empty, or one inner string)
};

struct Certificate {
  std::string type_name;                   // e.g. "ssh-ed25519-cert-v01@openssh.com"
  std::vector<uint8_t> blob;               // the whole certificate blob as received
  std::vector<uint8_t> nonce;
  PublicKey key;                           // the certified key, as a plain key (blob re-encoded)
  uint64_t serial = 0;
  uint32_t cert_type = 0;                  // kCertTypeUser / kCertTypeHost (others kept as read)
  std::string key_id;
  std::vector<std::string> principals;
  uint64_t valid_after = 0;
  uint64_t valid_before = 0;
  std::vector<CertOption> critical_options;  // sorted, unique names (parser enforces)
  std::vector<CertOption> extensions;        // sorted, unique names (parser enforces)
  std::vector<uint8_t> signature_key;      // CA public key blob
  PublicKey ca_key;                        // parsed CA key (never a certificate)
  std::vector<uint8_t> signature;          // signature blob (string alg, string sig[, sk fields])
  size_t signed_length = 0;                // bytes of blob covered by the CA signature

  // signed_data is blob[0, signed_length).
  Bytes signed_data() const { return Bytes(blob).first(signed_length); }
  // find_critical / find_extension return nullptr when absent.
  const CertOption* find_critical(std::string_view name) const;
  const CertOption* find_extension(std::string_view name) const;
};

// parse_certificate parses a certificate blob of any supported type. It checks structure only:
// lengths, no trailing bytes anywhere (including inside each option's data), options and
// extensions sorted by name without duplicates, the CA key is a plain supported key. It does NOT
// check the signature, validity, principals or options. Codes: "cert_malformed",
// "cert_unsupported_type".
Result<Certificate> parse_certificate(Bytes blob);

// option_string reads an option whose data holds one string (source-address, force-command);
// nullopt if the data is not exactly one string.
Result<std::string> option_string(const CertOption& opt);

}  // namespace touchgate::ssh
