// Verification of the second factor's signature: a touch of an enrolled FIDO2 security key
// (libfido2) or PIV smart card key (OpenSSL, through ssh/signature.h).
// Trust boundary: the signature blob comes from the client's agent.
//
// What is checked: the signature is by `key` over `signed_data` (the SSHSIG signed data the
// gateway asked the agent to sign); for FIDO2 keys the authenticator's flags say user present
// (touch) and, when required, user verified (PIN), and the signature covers the key's own
// application. What is NOT checked here: the signature counter against the last one seen (the
// store does that atomically, see store/store.h), enrollment status, policy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/key.h"
#include "ssh/reader.h"

namespace touchgate::fido {

enum class TouchKind { kFido2, kPiv };

struct TouchRequirements {
  bool user_verification = false;  // FIDO2: the UV (PIN) flag must be set
};

// What a verified touch proves. Only verify_touch can make one.
class VerifiedTouch {
 public:
  TouchKind kind() const { return kind_; }
  const std::string& fingerprint() const { return fingerprint_; }  // "SHA256:..."
  const std::string& key_type() const { return key_type_; }  // e.g. "sk-ssh-ed25519@openssh.com"
  uint8_t flags() const { return flags_; }  // FIDO2 authenticator flags (0 for PIV)
  bool user_present() const { return (flags_ & 0x01) != 0; }
  bool user_verified() const { return (flags_ & 0x04) != 0; }
  uint32_t counter() const { return counter_; }  // FIDO2 signature counter (0 for PIV)
  const std::vector<uint8_t>& key_blob() const { return key_blob_; }
  const std::vector<uint8_t>& signed_data() const { return signed_data_; }
  const std::vector<uint8_t>& signature() const { return signature_; }  // agent's signature blob
  // Made by verify_sshsig_touch only (else empty): the SSHSIG namespace, the message that was
  // signed (its SHA-512 is in signed_data), and the armoured SSHSIG signature ("-----BEGIN SSH
  // SIGNATURE-----...") that `ssh-keygen -Y verify -n <namespace>` checks against the message.
  const std::string& sshsig_namespace() const { return namespace_; }
  const std::string& message() const { return message_; }
  const std::string& sshsig() const { return sshsig_; }
  const std::vector<uint8_t>& sshsig_blob() const { return sshsig_blob_; }  // sshsig() unarmoured

 private:
  friend Result<VerifiedTouch> verify_touch(const ssh::PublicKey&, TouchKind, ssh::Bytes,
                                            ssh::Bytes, const TouchRequirements&);
  friend Result<VerifiedTouch> verify_sshsig_touch(const ssh::PublicKey&, TouchKind, ssh::Bytes,
                                                   std::string_view, std::string_view,
                                                   const TouchRequirements&);
  VerifiedTouch() = default;
  TouchKind kind_ = TouchKind::kFido2;
  std::string fingerprint_, key_type_;
  uint8_t flags_ = 0;
  uint32_t counter_ = 0;
  std::vector<uint8_t> key_blob_, signed_data_, signature_, sshsig_blob_;
  std::string namespace_, message_, sshsig_;
};

// verify_touch checks sig_blob by key over signed_data. kind kFido2 needs an sk key type and is
// verified with libfido2 (rp id = key.application, user presence always required, user
// verification when req says so); kind kPiv needs a non-sk key (ed25519, ecdsa P-256/384/521,
// rsa with rsa-sha2-256/512 only) and is verified with OpenSSL. FIDO2 flags are checked before
// the signature, so a missing touch or PIN is named as such even if the signature is also bad;
// flag bits other than UP and UV are covered by the signature and reported as they are, except
// 0x80 (extension data follows), which an SSH signature cannot carry: libfido2 refuses it. Codes:
//   touch_kind_mismatch   key type does not belong to kind
//   touch_sig_malformed   signature blob unreadable or of another algorithm
//   touch_not_present     FIDO2 flags lack user presence (no touch)
//   touch_pin_missing     FIDO2 flags lack user verification while required
//   touch_sig_invalid     the signature does not verify
Result<VerifiedTouch> verify_touch(const ssh::PublicKey& key, TouchKind kind, ssh::Bytes sig_blob,
                                   ssh::Bytes signed_data, const TouchRequirements& req);

// verify_sshsig_touch: the touch over an SSHSIG challenge (PROTOCOL.sshsig, hash sha512): the
// signed data is made here from `ns` and `message`, verified as verify_touch does (same codes),
// and the VerifiedTouch carries the namespace, the message and the armoured SSHSIG signature, so
// that the proof kept of a touch is always the one that was verified.
Result<VerifiedTouch> verify_sshsig_touch(const ssh::PublicKey& key, TouchKind kind,
                                          ssh::Bytes sig_blob, std::string_view ns,
                                          std::string_view message, const TouchRequirements& req);

}  // namespace touchgate::fido
