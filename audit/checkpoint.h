// Checkpoints: the audit key (an Ed25519 key file, PEM PKCS#8 on disk, or a key in a PKCS#11
// token behind ssh::Signer) and the SSHSIG signatures over the head of the chain that
// `ssh-keygen -Y verify -n touchgate-audit` checks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/key.h"
#include "ssh/signer.h"

namespace touchgate::audit {

inline constexpr std::string_view kCheckpointNamespace = "touchgate-audit";
inline constexpr std::string_view kKeyComment = "touchgate-audit";

// checkpoint_message is the text a checkpoint signs:
// "touchgate-audit-v1\nseq: <head_seq>\nhash: <head>\n".
std::string checkpoint_message(uint64_t head_seq, std::string_view head);

// AuditKey holds the private audit key: a key file it loaded (it never renders the private key
// anywhere but that file), or a key in a token it asks to sign (the key never leaves the token).
// Either way it records the public key, as an OpenSSH public key line, in a file verifiers use.
class AuditKey {
 public:
  ~AuditKey();
  AuditKey(const AuditKey&) = delete;
  AuditKey& operator=(const AuditKey&) = delete;

  // load_or_create reads an Ed25519 private key in PEM (PKCS#8) from path. If path does not
  // exist, a new key is generated and written there with mode 0600 (never overwriting a file
  // that appears meanwhile). Either way `<path>.pub` ("ssh-ed25519 AAAA... touchgate-audit") is
  // written when missing (see record_public_key). Codes "audit_key_unreadable",
  // "audit_key_unsupported", "audit_key_write", "audit_key_mismatch".
  static Result<std::unique_ptr<AuditKey>> load_or_create(const std::filesystem::path& path);

  // from_signer takes the audit key that signer holds (a key in a PKCS#11 token) and records its
  // public key in public_path (see record_public_key). Key types: ssh-ed25519,
  // ecdsa-sha2-nistp256/384/521, ssh-rsa (signing as rsa-sha2-512). Codes
  // "audit_key_unsupported", "audit_key_write", "audit_key_mismatch".
  static Result<std::unique_ptr<AuditKey>> from_signer(std::unique_ptr<ssh::Signer> signer,
                                                       const std::filesystem::path& public_path);

  // open opens the audit key as the log's Options describe it: when open_key is set, the key it
  // opens (from_signer, public line in public_path, default <key_path>.pub), else the key file
  // key_path (load_or_create). open_key's errors keep their code, the message prefixed
  // "audit key: ".
  using KeyOpener = std::function<Result<std::unique_ptr<ssh::Signer>>()>;
  static Result<std::unique_ptr<AuditKey>> open(const std::filesystem::path& key_path,
                                                const KeyOpener& open_key,
                                                const std::filesystem::path& public_path);

  const std::vector<uint8_t>& public_blob() const { return blob_; }
  const std::string& fingerprint() const { return fingerprint_; }
  // public_line is "ssh-ed25519 AAAA... touchgate-audit" (the key's own type for a token key).
  std::string public_line() const;
  // describe names the key for logs: "<file> SHA256:..." or, for a token key, what
  // ssh::Signer::describe says ("pkcs11:token=...;object=... SHA256:...").
  std::string describe() const;

  // sign_checkpoint returns the SSHSIG blob (namespace touchgate-audit, sha512) over
  // checkpoint_message(head_seq, head). Code "audit_sign" for a key file; a token key's failures
  // keep the token's code ("pkcs11_token_missing", "pkcs11_sign_failed", "pkcs11_key_changed",
  // "pkcs11_login_failed", ...). Call from one thread at a time (the log's writer).
  Result<std::vector<uint8_t>> sign_checkpoint(uint64_t head_seq, std::string_view head);
  // unsigned_streak is how many sign_checkpoint calls in a row failed (0 after a success).
  uint64_t unsigned_streak() const { return unsigned_streak_; }

 private:
  AuditKey() = default;
  Result<std::vector<uint8_t>> sign_data(const std::vector<uint8_t>& data);
  struct Pkey;
  std::unique_ptr<Pkey> pkey_;           // a key file's key, or
  std::unique_ptr<ssh::Signer> signer_;  // a token's
  std::filesystem::path file_;           // the key file (empty for a token key)
  std::vector<uint8_t> blob_;
  std::string fingerprint_;
  uint64_t unsigned_streak_ = 0;
};

// record_public_key writes line (and a newline) to public_path when that file is missing (mode
// 0644, via a temporary file renamed into place). A file there that holds another key, or no
// readable key, is refused with "audit_key_mismatch": verifiers trust that file, so they would
// reject every checkpoint the key signs (move the old file aside when the key was replaced on
// purpose). "audit_key_write" when it cannot be written.
Result<void> record_public_key(const std::filesystem::path& public_path, const ssh::PublicKey& key,
                               const std::string& line);

// verify_checkpoint checks that sig_base64 is an SSHSIG blob in namespace touchgate-audit, by the
// key `key`, over checkpoint_message(head_seq, head). Code "bad_checkpoint" with the reason.
Result<void> verify_checkpoint(const ssh::PublicKey& key, uint64_t head_seq, std::string_view head,
                               std::string_view sig_base64);

// load_audit_public_key reads an OpenSSH public key file holding an audit key (the first
// non-comment line): ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa. Code
// "audit_key_unreadable".
Result<ssh::PublicKey> load_audit_public_key(const std::filesystem::path& path);

}  // namespace touchgate::audit
