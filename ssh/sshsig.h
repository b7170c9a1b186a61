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

// sshsig_signed_data returns the bytes a key signs for an SSHSIG over message:
// "SSHSIG" || string namespace || string "" || string hash_alg || string H(message).
std::vector<uint8_t> sshsig_signed_data(std::string_view ns, SshsigHash hash, Bytes message);

// encode_sshsig returns the binary SSHSIG blob:
// "SSHSIG" || uint32 1 || string publickey || string namespace || string "" || string hash_alg ||
// string signature.
std::vector<uint8_t> encode_sshsig(Bytes public_key_blob, std::string_view ns, SshsigHash hash,
                                   Bytes signature_blob);

// armor_sshsig renders blob as "-----BEGIN SSH SIGNATURE-----\n", base64 wrapped exactly as
// ssh-keygen writes it (check OpenSSH sshsig.c), "-----END SSH SIGNATURE-----\n". ssh-keygen -Y verify reads it.
std::string armor_sshsig(Bytes blob);

struct Sshsig {
  std::vector<uint8_t> public_key;  // key blob as carried (not parsed here)
  std::string ns;
  SshsigHash hash = SshsigHash::kSha512;
  std::vector<uint8_t> signature;   // signature blob (string alg, ...), not parsed here
};

// parse_sshsig parses a binary SSHSIG blob: magic, version 1, non-empty namespace, hash sha256 or
// sha512, no trailing bytes. Code "sshsig_malformed".
Result<Sshsig> parse_sshsig(Bytes blob);
// dearmor_sshsig decodes the armoured text form. Code "sshsig_malformed".
Result<std::vector<uint8_t>> dearmor_sshsig(std::string_view text);

}  // namespace touchgate::ssh
