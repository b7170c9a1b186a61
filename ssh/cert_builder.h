// Minting OpenSSH user certificates (PROTOCOL.certkeys) signed through a Signer: the short-lived
// certificates the gateway logs in to a target with in terminating mode. The inverse of
// certificate.h; every certificate built here parses there and validates with the CA trusted.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ssh/error.h"
#include "ssh/signer.h"

namespace touchgate::ssh {

// Critical options sshd understands (anything else makes sshd refuse the certificate).
inline constexpr std::string_view kOptForceCommand = "force-command";      // value: the command
inline constexpr std::string_view kOptSourceAddress = "source-address";    // value: CIDR list
inline constexpr std::string_view kOptVerifyRequired = "verify-required";  // flag

// Standard extensions (all flags: value "").
inline constexpr std::string_view kExtNoTouchRequired = "no-touch-required";
inline constexpr std::string_view kExtPermitX11Forwarding = "permit-X11-forwarding";
inline constexpr std::string_view kExtPermitAgentForwarding = "permit-agent-forwarding";
inline constexpr std::string_view kExtPermitPortForwarding = "permit-port-forwarding";
inline constexpr std::string_view kExtPermitPty = "permit-pty";
inline constexpr std::string_view kExtPermitUserRc = "permit-user-rc";

// kCertNonceSize is the nonce length build_user_certificate requires (as ssh-keygen writes).
inline constexpr size_t kCertNonceSize = 32;

struct CertRequest {
  std::vector<uint8_t>
      key;  // the certified plain public key blob (any type parse_public_key takes)
  uint64_t serial = 0;
  std::string key_id;
  std::vector<std::string> principals;  // at least one
  uint64_t valid_after = 0;
  uint64_t valid_before = 0;  // > valid_after; UINT64_MAX is "forever"
  // (name, value): value "" is a flag (empty data), anything else is written as one string.
  // Order does not matter: the certificate carries them sorted by name.
  std::vector<std::pair<std::string, std::string>> critical_options;
  std::vector<std::pair<std::string, std::string>> extensions;
};

// build_user_certificate returns the blob of a user certificate (type 1) for req.key, with
// `nonce` (kCertNonceSize random bytes from the caller), signed by `ca` over every byte through
// the signature key (ca.public_key()). The type name follows the key type
// ("ssh-ed25519-cert-v01@openssh.com", ...). The CA's signature is checked before it is used:
// its algorithm must belong to the CA key (no ssh-rsa SHA-1) and it must verify.
//
// Refused, nothing signed, code "cert_build_invalid": a nonce of another length; no principals;
// valid_after >= valid_before; a name used twice among the critical options or among the
// extensions; an empty name; a critical option other than force-command, source-address,
// verify-required (sshd would refuse the certificate); a flag (verify-required, the standard
// extensions) given a value, or force-command / source-address without one; a NUL byte in any
// text; more items or longer text than parse_certificate accepts.
// Other codes: "cert_build_key_unsupported" (req.key is not a plain key parse_public_key accepts),
// "cert_build_ca_unsupported" (ca.public_key() is not a plain non-sk key),
// "cert_build_signature_mismatch" (the signature's algorithm does not belong to the CA key),
// "cert_build_bad_signature" (it does not verify); a Signer's own error is passed through.
Result<std::vector<uint8_t>> build_user_certificate(const CertRequest& req, Signer& ca,
                                                    std::span<const uint8_t> nonce);

// certificate_line renders a certificate (or key) blob as an OpenSSH .pub line:
// "<type> <base64> <comment>" (no trailing space when comment is empty, no newline).
std::string certificate_line(std::span<const uint8_t> blob, std::string_view comment);

}  // namespace touchgate::ssh
