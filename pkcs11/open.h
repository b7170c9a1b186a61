// open_ca_signer: the gateway's CA key as configured — in a PKCS#11 token, or in a key file.
// open_signer: the same for another role (the audit key in a token).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "ssh/error.h"
#include "ssh/signer.h"

namespace touchgate::pkcs11 {

struct CaKeyConfig {
  std::string pkcs11_uri;          // "pkcs11:token=...;object=...;type=private"
  std::filesystem::path module;    // the PKCS#11 module; else the URI's module-path
  std::filesystem::path pin_file;  // the user PIN; else the URI's pin-source (a file)
  std::filesystem::path key_file;  // a PEM key file instead of a token
};

// KeyRole: whose key a CaKeyConfig describes, as configuration errors name it.
struct KeyRole {
  std::string_view name;         // "CA key"
  std::string_view config_code;  // "ca_key_config"
};
inline constexpr KeyRole kCaKey{"CA key", "ca_key_config"};
inline constexpr KeyRole kAuditKey{"audit key", "audit_key_config"};

// open_ca_signer opens the CA key: a TokenSigner when pkcs11_uri is set, a FileSigner when
// key_file is set; exactly one of them must be. For a token, the module comes from `module` or the
// URI's module-path (both given: they must agree) and the PIN file from `pin_file` or the URI's
// pin-source ("file:/abs/path" or "/abs/path"; both given: they must agree). Codes:
// "ca_key_config" (neither or both, no module, no PIN file, disagreement, module-name or a
// pin-source that is not a file), "pkcs11_bad_uri", and those of TokenSigner::open and
// FileSigner::open.
Result<std::unique_ptr<ssh::Signer>> open_ca_signer(const CaKeyConfig& config);

// open_signer is open_ca_signer for the key of another role: its configuration errors have the
// role's code and name ("audit_key_config", "audit key: ...").
Result<std::unique_ptr<ssh::Signer>> open_signer(const CaKeyConfig& config, const KeyRole& role);

}  // namespace touchgate::pkcs11
