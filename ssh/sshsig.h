// SSHSIG (OpenSSH PROTOCOL.sshsig): the envelope for the MFA challenge and audit checkpoints.
// Trust boundary: parse_sshsig / dearmor_sshsig read stored or peer-supplied proofs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/reader.h"

namespace touchgate::ssh {

enum class SshsigHash { kSha256, kSha512 };

// Caps on what parse_sshsig / dearmor_sshsig read: the public key blob, the namespace, the
// signature blob, and the whole armoured text.
inline constexpr size_t kMaxSshsigKey = 16 * 1024;
inline constexpr size_t kMaxSshsigNamespace = 1024;
inline constexpr size_t kMaxSshsigSignature = 16 * 1024;
inline constexpr size_t kMaxSshsigArmor = 64 * 1024;

// sshsig_signed_data returns the bytes a key signs for an SSHSIG over message:
// "SSHSIG" || string namespace || string "" || string hash_alg || string H(message).
std::vector<uint8_t> sshsig_signed_data(std::string_view ns, SshsigHash hash, Bytes message);

// encode_sshsig returns the binary SSHSIG blob:
// "SSHSIG" || uint32 1 || string publickey || string namespace || string "" || string hash_alg ||
// string signature.
std::vector<uint8_t> encode_sshsig(Bytes public_key_blob, std::string_view ns, SshsigHash hash,
                                   Bytes signature_blob);

// armor_sshsig renders blob as "-----BEGIN SSH SIGNATURE-----\n", base64 wrapped exactly as
// ssh-keygen -Y sign writes it (lines of 70 characters, each ending in '\n', no empty line when
// the base64 fills the last line), "-----END SSH SIGNATURE-----\n". ssh-keygen -Y verify reads it.
std::string armor_sshsig(Bytes blob);

struct Sshsig {
  std::vector<uint8_t> public_key;  // key blob as carried (not parsed here)
  std::string ns;
  SshsigHash hash = SshsigHash::kSha512;
  std::vector<uint8_t> signature;  // signature blob (string alg, ...), not parsed here
};

// parse_sshsig parses a binary SSHSIG blob: magic, version 1, non-empty public key (within
// kMaxSshsigKey), non-empty namespace without NUL (within kMaxSshsigNamespace), empty reserved
// field (as every OpenSSH writes it, so encode_sshsig of the result gives blob back), hash sha256
// or sha512, non-empty signature (within kMaxSshsigSignature), no trailing bytes. Neither the key
// nor the signature is parsed or verified here. Code "sshsig_malformed".
Result<Sshsig> parse_sshsig(Bytes blob);
// dearmor_sshsig decodes the armoured text form: the BEGIN line first, base64 lines of any width
// ('\n' or "\r\n" line ends), the END line, then nothing but empty lines. At most
// kMaxSshsigArmor bytes of text. Code "sshsig_malformed".
Result<std::vector<uint8_t>> dearmor_sshsig(std::string_view text);

}  // namespace touchgate::ssh
