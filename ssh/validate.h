// Certificate validation: the gateway's decision whether an offered OpenSSH user certificate
// authenticates a login. sshd's rules, and stricter ones (see each code below).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ssh/address.h"
#include "ssh/certificate.h"
#include "ssh/error.h"
#include "ssh/key.h"
#include "ssh/krl.h"

namespace touchgate::ssh {

struct TrustedCa {
  std::string name;  // admin's name for this CA (e.g. the file stem), shown in logs/audit
  PublicKey key;
};

struct TrustPolicy {
  std::vector<TrustedCa> cas;                     // several at once (rotation overlap)
  std::shared_ptr<const RevocationList> revoked;  // may be null (no revocation list)
  uint64_t max_lifetime_seconds = 0;              // 0 = no limit
  uint64_t clock_skew_seconds = 0;
  bool allow_ssh_rsa_sha1 = false;                // CA signatures with ssh-rsa (SHA-1)
  bool permit_force_command = false;              // else force-command certs are refused
};

struct ValidationContext {
  std::string login;      // the SSH user name requested
  IpAddress client;       // the client's address (after normalising v4-mapped)
  uint64_t now = 0;       // seconds since the epoch
};

// What a validated certificate tells the rest of the gateway. Only validate_certificate can make
// one: policy and audit accept nothing else as proof of the first factor.
class VerifiedCertificate {
 public:
  const std::string& login() const { return login_; }
  const std::string& ca_name() const { return ca_name_; }
  const std::string& ca_fingerprint() const { return ca_fingerprint_; }
  const std::string& key_fingerprint() const { return key_fingerprint_; }
  const std::string& key_id() const { return key_id_; }
  uint64_t serial() const { return serial_; }
  uint64_t valid_after() const { return valid_after_; }
  uint64_t valid_before() const { return valid_before_; }
  const std::vector<std::string>& principals() const { return principals_; }
  KeyType key_type() const { return key_type_; }
  bool verify_required() const { return verify_required_; }
  bool no_touch_required() const { return no_touch_required_; }
  bool permit_port_forwarding() const { return permit_port_forwarding_; }
  bool permit_agent_forwarding() const { return permit_agent_forwarding_; }
  bool permit_pty() const { return permit_pty_; }
  const std::optional<std::string>& force_command() const { return force_command_; }
  // extensions: all of the certificate's extensions (names sorted), e.g. an SSO's group list.
  const std::vector<CertOption>& extensions() const { return extensions_; }

 private:
  friend Result<VerifiedCertificate> validate_certificate(Bytes, const TrustPolicy&,
                                                          const ValidationContext&);
  VerifiedCertificate() = default;
  std::string login_, ca_name_, ca_fingerprint_, key_fingerprint_, key_id_;
  uint64_t serial_ = 0, valid_after_ = 0, valid_before_ = 0;
  std::vector<std::string> principals_;
  KeyType key_type_ = KeyType::kEd25519;
  bool verify_required_ = false, no_touch_required_ = false;
  bool permit_port_forwarding_ = false, permit_agent_forwarding_ = false, permit_pty_ = false;
  std::optional<std::string> force_command_;
  std::vector<CertOption> extensions_;
};

// validate_certificate parses and validates a certificate blob offered for `ctx.login`.
// Checks, in this order, each with its stable reason code:
//   cert_malformed / cert_unsupported_type  structure (certificate.h)
//   cert_not_user_certificate               type must be user (1)
//   cert_untrusted_ca                       signature_key must equal a trusted CA key
//   cert_bad_signature / cert_sha1_signature  CA signature (ssh-rsa refused unless allowed)
//   cert_ca_revoked                         CA key listed in the revocation list
//   cert_revoked                            serial / key id (KRL) or the certified key itself
//   cert_not_yet_valid                      now + skew < valid_after
//   cert_expired                            now >= valid_before + skew
//   cert_lifetime_exceeded                  valid_before - valid_after > max_lifetime (when set;
//                                           "forever" certificates always exceed a limit)
//   cert_no_principals                      empty principal list
//   cert_principal_mismatch                 login not among the principals
//   cert_unknown_critical_option            any critical option other than force-command,
//                                           source-address, verify-required
//   cert_source_address                     malformed list, or client address not in it
//   cert_force_command                      force-command present and not permitted
// The Error message is one sentence for the user (e.g. "certificate expired at
// 2026-01-01T00:00:00Z"), naming the certificate by key id and serial where it helps.
Result<VerifiedCertificate> validate_certificate(Bytes cert_blob, const TrustPolicy& trust,
                                                 const ValidationContext& ctx);

// format_utc renders seconds since the epoch as "YYYY-MM-DDTHH:MM:SSZ" ("forever" for UINT64_MAX).
std::string format_utc(uint64_t seconds);

}  // namespace touchgate::ssh
