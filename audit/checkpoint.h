// Checkpoints: the audit key (Ed25519, PEM PKCS#8 on disk) and the SSHSIG signatures over the
// head of the chain that `ssh-keygen -Y verify -n touchgate-audit` checks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/key.h"

namespace touchgate::audit {

inline constexpr std::string_view kCheckpointNamespace = "touchgate-audit";
inline constexpr std::string_view kKeyComment = "touchgate-audit";

// checkpoint_message is the text a checkpoint signs:
// "touchgate-audit-v1\nseq: <head_seq>\nhash: <head>\n".
std::string checkpoint_message(uint64_t head_seq, std::string_view head);

// AuditKey holds the private audit key. It never renders the private key anywhere but its file.
class AuditKey {
 public:
  ~AuditKey();
  AuditKey(const AuditKey&) = delete;
  AuditKey& operator=(const AuditKey&) = delete;

  // load_or_create reads an Ed25519 private key in PEM (PKCS#8) from path. If path does not
  // exist, a new key is generated and written there with mode 0600 (never overwriting a file
  // that appears meanwhile). Either way `<path>.pub` ("ssh-ed25519 AAAA... touchgate-audit") is
  // written when missing. Codes "audit_key_unreadable", "audit_key_unsupported",
  // "audit_key_write".
  static Result<std::unique_ptr<AuditKey>> load_or_create(const std::filesystem::path& path);

  const std::vector<uint8_t>& public_blob() const { return blob_; }
  const std::string& fingerprint() const { return fingerprint_; }
  // public_line is "ssh-ed25519 AAAA... touchgate-audit".
  std::string public_line() const;

  // sign_checkpoint returns the SSHSIG blob (namespace touchgate-audit, sha512) over
  // checkpoint_message(head_seq, head).
  Result<std::vector<uint8_t>> sign_checkpoint(uint64_t head_seq, std::string_view head) const;

 private:
  AuditKey() = default;
  struct Pkey;
  std::unique_ptr<Pkey> pkey_;
  std::vector<uint8_t> blob_;
  std::string fingerprint_;
};

// verify_checkpoint checks that sig_base64 is an SSHSIG blob in namespace touchgate-audit, by the
// key `key`, over checkpoint_message(head_seq, head). Code "bad_checkpoint" with the reason.
Result<void> verify_checkpoint(const ssh::PublicKey& key, uint64_t head_seq, std::string_view head,
                               std::string_view sig_base64);

// load_audit_public_key reads an OpenSSH public key file holding an ssh-ed25519 key (the first
// non-comment line). Code "audit_key_unreadable".
Result<ssh::PublicKey> load_audit_public_key(const std::filesystem::path& path);

}  // namespace touchgate::audit
