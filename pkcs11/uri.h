// PKCS#11 URIs (RFC 7512), as written in touchgate.conf to name the CA key in a token (trust
// boundary: operator configuration text, parsed strictly).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"

namespace touchgate::pkcs11 {

// Longest URI accepted (bytes of text, before percent-decoding).
inline constexpr size_t kMaxUri = 4096;

enum class ObjectType { kPrivate, kPublic, kCert, kSecretKey, kData };

// object_type_name is the URI spelling of type ("private", "public", "cert", ...).
std::string_view object_type_name(ObjectType type);

struct LibraryVersion {
  unsigned major = 0;
  unsigned minor = 0;
  bool operator==(const LibraryVersion&) const = default;
};

// A parsed PKCS#11 URI. An attribute absent from the URI is nullopt; a present one holds its
// percent-decoded value (which may be empty: "token=" names a token with an empty label).
struct Uri {
  // Path attributes: which token (CK_TOKEN_INFO), library (CK_INFO), slot (CK_SLOT_INFO), object.
  std::optional<std::string> token;                 // CK_TOKEN_INFO.label
  std::optional<std::string> manufacturer;          // CK_TOKEN_INFO.manufacturerID
  std::optional<std::string> serial;                // CK_TOKEN_INFO.serialNumber
  std::optional<std::string> model;                 // CK_TOKEN_INFO.model
  std::optional<std::string> library_manufacturer;  // CK_INFO.manufacturerID
  std::optional<std::string> library_description;   // CK_INFO.libraryDescription
  std::optional<LibraryVersion> library_version;    // CK_INFO.libraryVersion
  std::optional<uint64_t> slot_id;                  // CK_SLOT_ID
  std::optional<std::string> slot_description;      // CK_SLOT_INFO.slotDescription
  std::optional<std::string> slot_manufacturer;     // CK_SLOT_INFO.manufacturerID
  std::optional<std::string> object;                // CKA_LABEL
  std::optional<ObjectType> type;                   // CKA_CLASS
  std::optional<std::vector<uint8_t>> id;           // CKA_ID (binary)
  // Query attributes.
  std::optional<std::string> pin_source;   // where the PIN is read from ("file:/path" or "/path")
  std::optional<std::string> module_name;  // a module by name, e.g. "softhsm2"
  std::optional<std::string> module_path;  // a module by absolute path

  bool operator==(const Uri&) const = default;
};

// parse_uri parses a "pkcs11:" URI (scheme case-insensitive) of at most kMaxUri bytes. Checked:
// only the characters RFC 7512 allows (others must be percent-encoded), well-formed %XX escapes,
// attribute names known to RFC 7512 or vendor attributes prefixed "x-" (ignored), no attribute
// twice, no empty component, values within the length of the PKCS#11 field they match, no NUL
// in text values, type one of RFC 7512's, slot-id and library-version decimal, module-path
// absolute. A "pin-value" attribute is refused: a PIN does not belong in configuration text, it
// is read from a file (pin-source or the pin file setting). Code "pkcs11_bad_uri"; the message
// names the attribute and problem but never quotes a pin-value.
Result<Uri> parse_uri(std::string_view text);

// format_uri renders uri with every value percent-encoded where RFC 7512 requires it (and the
// id always as %XX), attributes in a fixed order. parse_uri(format_uri(u)) == u.
std::string format_uri(const Uri& uri);

// describe_uri is the short form for logs: token, object and id only.
std::string describe_uri(const Uri& uri);

}  // namespace touchgate::pkcs11
