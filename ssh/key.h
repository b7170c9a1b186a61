// Public keys: SSH public key blobs and OpenSSH one-line text form (trust boundary: peer bytes).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/reader.h"

namespace touchgate::ssh {

enum class KeyType {
  kEd25519,      // ssh-ed25519
  kEcdsaP256,    // ecdsa-sha2-nistp256
  kEcdsaP384,    // ecdsa-sha2-nistp384
  kEcdsaP521,    // ecdsa-sha2-nistp521
  kRsa,          // ssh-rsa
  kSkEcdsaP256,  // sk-ecdsa-sha2-nistp256@openssh.com
  kSkEd25519,    // sk-ssh-ed25519@openssh.com
};

// key_type_name is the SSH name of a plain key type ("ssh-ed25519", ...).
std::string_view key_type_name(KeyType type);
// cert_type_name is the SSH name of the certificate type of that key
// ("ssh-ed25519-cert-v01@openssh.com").
std::string_view cert_type_name(KeyType type);
// is_security_key is true for the sk-* types.
bool is_security_key(KeyType type);

// A parsed plain (non-certificate) public key.
struct PublicKey {
  KeyType type = KeyType::kEd25519;
  std::vector<uint8_t> blob;         // canonical plain key blob, byte-identical to the wire form
  std::vector<uint8_t> ed25519;      // ed25519 / sk-ed25519: 32-byte public key
  std::vector<uint8_t> ecdsa_point;  // ecdsa / sk-ecdsa: uncompressed point (0x04 || X || Y)
  std::vector<uint8_t> rsa_e;        // rsa: exponent magnitude (big-endian, no leading zero)
  std::vector<uint8_t> rsa_n;        // rsa: modulus magnitude
  std::string application;           // sk types: FIDO application (e.g. "ssh:")

  std::string_view type_name() const { return key_type_name(type); }
  // fingerprint is OpenSSH's "SHA256:..." of blob.
  std::string fingerprint() const;
};

// parse_public_key parses a plain public key blob. Certificates, unknown types, curve names that do
// not match the type, points not on the curve, RSA moduli under 2048 bits or over 16384 bits, and
// trailing bytes are refused (code "key_malformed" or "key_unsupported").
Result<PublicKey> parse_public_key(Bytes blob);

// parse_public_key_fields reads the type-specific fields of `type` (everything after the type
// name) from r; used by the certificate parser. Does not check for trailing bytes.
Result<PublicKey> parse_public_key_fields(KeyType type, Reader& r);

// key_type_from_name maps a plain key type name to KeyType; false if unknown.
bool key_type_from_name(std::string_view name, KeyType* out);
// key_type_from_cert_name maps a certificate type name to the certified key's KeyType.
bool key_type_from_cert_name(std::string_view name, KeyType* out);

// A key (or certificate) as written in an OpenSSH public key file: "type base64 [comment]".
struct KeyLine {
  std::string type;           // the type name on the line
  std::vector<uint8_t> blob;  // decoded blob (plain key or certificate)
  std::string comment;
};

// parse_key_line parses one line of an OpenSSH .pub / -cert.pub / authorized-style file. The type
// on the line must match the type inside the blob. Blank lines and '#' comments are refused here
// (callers skip them). Only the type is checked (a known plain or certificate type, equal to the
// blob's): the key material is not, so callers parse blob with parse_public_key /
// parse_certificate (a revoked-keys file may list keys touchgate would not accept for login).
// Code "key_line_malformed".
Result<KeyLine> parse_key_line(std::string_view line);

// format_key_line renders "type base64" for a blob whose type name is taken from the blob.
std::string format_key_line(Bytes blob);

}  // namespace touchgate::ssh
