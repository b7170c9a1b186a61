#include "audit/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ssh/digest.h"
#include "ssh/signature.h"
#include "ssh/sshsig.h"
#include "ssh/writer.h"

namespace touchgate::audit {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

// sshsig_algorithm is the signature algorithm an SSHSIG by key uses (RSA: rsa-sha2-512, as
// ssh-keygen -Y sign does; ssh-rsa with SHA-1 is not allowed in SSHSIG).
std::string_view sshsig_algorithm(const ssh::PublicKey& key) {
  switch (key.type) {
    case ssh::KeyType::kEd25519:
    case ssh::KeyType::kEcdsaP256:
    case ssh::KeyType::kEcdsaP384:
    case ssh::KeyType::kEcdsaP521:
      return key.type_name();
    case ssh::KeyType::kRsa:
      return "rsa-sha2-512";
    default:
      return {};
  }
}

}  // namespace

struct AuditKey::Pkey {
  std::unique_ptr<EVP_PKEY, PkeyFree> p;
};

AuditKey::~AuditKey() = default;

std::string checkpoint_message(uint64_t head_seq, std::string_view head) {
  return fmt::format("touchgate-audit-v1\nseq: {}\nhash: {}\n", head_seq, head);
}

std::string AuditKey::public_line() const {
  return ssh::format_key_line(blob_) + " " + std::string(kKeyComment);
}

std::string AuditKey::describe() const {
  if (signer_) return signer_->describe();
  return fmt::format("{} {}", file_.string(), fingerprint_);
}

Result<void> record_public_key(const std::filesystem::path& public_path, const ssh::PublicKey& key,
                               const std::string& line) {
  std::error_code ec;
  if (std::filesystem::exists(public_path, ec)) {
    auto recorded = load_audit_public_key(public_path);
    if (!recorded)
      return fail("audit_key_mismatch",
                  fmt::format("{} is meant to hold the audit key {} but cannot be read ({}); "
                              "move it aside",
                              public_path.string(), key.fingerprint(), recorded.error().message));
    if (recorded->blob != key.blob)
      return fail("audit_key_mismatch",
                  fmt::format("{} holds the audit key {}, but the audit key is now {}: verifiers "
                              "trusting that file would reject every new checkpoint. If the key "
                              "was replaced on purpose, keep the old file for the old segments "
                              "and move it aside",
                              public_path.string(), recorded->fingerprint(), key.fingerprint()));
    return {};
  }
  // Written whole or not at all: a temporary file renamed into place, never over a file that
  // appeared meanwhile.
  auto tmp = public_path;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return fail("audit_key_write",
                fmt::format("{}: cannot create: {}", tmp.string(), std::strerror(errno)));
  const std::string text = line + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::link(tmp.c_str(), public_path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    if (ok && err == EEXIST) return record_public_key(public_path, key, line);
    return fail("audit_key_write",
                fmt::format("{}: cannot write: {}", public_path.string(), std::strerror(err)));
  }
  ::unlink(tmp.c_str());
  return {};
}

Result<std::unique_ptr<AuditKey>> AuditKey::load_or_create(const std::filesystem::path& path) {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    std::unique_ptr<FILE, FileClose> f(::fdopen(fd, "r"));
    if (!f) {
      ::close(fd);
      return fail("audit_key_unreadable", fmt::format("{}: cannot read", path.string()));
    }
    pkey.reset(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
    if (!pkey)
      return fail("audit_key_unreadable", fmt::format("{}: not a PEM private key", path.string()));
  } else if (errno == ENOENT) {
    pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!pkey) return fail("audit_key_write", "cannot generate an Ed25519 key");
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      return fail("audit_key_write",
                  fmt::format("{}: cannot create: {}", path.string(), std::strerror(errno)));
    std::unique_ptr<FILE, FileClose> f(::fdopen(fd, "w"));
    if (!f) {
      ::close(fd);
      return fail("audit_key_write", fmt::format("{}: cannot write", path.string()));
    }
    if (PEM_write_PrivateKey(f.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        std::fflush(f.get()) != 0 || ::fsync(fileno(f.get())) != 0)
      return fail("audit_key_write", fmt::format("{}: cannot write", path.string()));
  } else {
    return fail("audit_key_unreadable",
                fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  }
  if (EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519)
    return fail("audit_key_unsupported", fmt::format("{}: not an Ed25519 key", path.string()));
  uint8_t raw[32];
  size_t raw_len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(pkey.get(), raw, &raw_len) != 1 || raw_len != 32)
    return fail("audit_key_unsupported", fmt::format("{}: no Ed25519 public key", path.string()));

  std::unique_ptr<AuditKey> key(new AuditKey());
  key->pkey_ = std::make_unique<Pkey>();
  key->pkey_->p = std::move(pkey);
  key->file_ = path;
  key->blob_ = ssh::Writer().string("ssh-ed25519").string(std::span<const uint8_t>(raw, 32)).take();
  key->fingerprint_ = ssh::fingerprint_sha256(key->blob_);
  auto pub = path;
  pub += ".pub";
  auto public_key = ssh::parse_public_key(key->blob_);
  if (!public_key) return fail("audit_key_unsupported", public_key.error().message);
  if (auto w = record_public_key(pub, *public_key, key->public_line()); !w)
    return tl::unexpected(w.error());
  return key;
}

Result<std::unique_ptr<AuditKey>> AuditKey::open(const std::filesystem::path& key_path,
                                                 const KeyOpener& open_key,
                                                 const std::filesystem::path& public_path) {
  if (!open_key) return load_or_create(key_path);
  auto signer = open_key();
  if (!signer) {
    Error e = signer.error();
    if (!e.message.starts_with("audit key")) e.message = "audit key: " + e.message;
    return tl::unexpected(std::move(e));
  }
  auto pub = public_path;
  if (pub.empty()) pub = key_path.string() + ".pub";
  return from_signer(std::move(*signer), pub);
}

Result<std::unique_ptr<AuditKey>> AuditKey::from_signer(std::unique_ptr<ssh::Signer> signer,
                                                        const std::filesystem::path& public_path) {
  auto public_key = ssh::parse_public_key(signer->public_key());
  if (!public_key || sshsig_algorithm(*public_key).empty())
    return fail("audit_key_unsupported",
                fmt::format("{}: an audit key must be Ed25519, ECDSA or RSA", signer->describe()));
  std::unique_ptr<AuditKey> key(new AuditKey());
  key->blob_ = public_key->blob;
  key->fingerprint_ = public_key->fingerprint();
  key->signer_ = std::move(signer);
  if (auto w = record_public_key(public_path, *public_key, key->public_line()); !w)
    return tl::unexpected(w.error());
  return key;
}

Result<std::vector<uint8_t>> AuditKey::sign_checkpoint(uint64_t head_seq, std::string_view head) {
  const std::string msg = checkpoint_message(head_seq, head);
  const auto data = ssh::sshsig_signed_data(
      kCheckpointNamespace, ssh::SshsigHash::kSha512,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
  auto sig_blob = sign_data(data);
  if (!sig_blob) {
    ++unsigned_streak_;
    return tl::unexpected(sig_blob.error());
  }
  unsigned_streak_ = 0;
  return ssh::encode_sshsig(blob_, kCheckpointNamespace, ssh::SshsigHash::kSha512, *sig_blob);
}

Result<std::vector<uint8_t>> AuditKey::sign_data(const std::vector<uint8_t>& data) {
  if (signer_) {
    auto sig = signer_->sign(data);
    if (!sig) return tl::unexpected(sig.error());
    // The token's signature must verify under the recorded key: a checkpoint that does not is
    // worse than an unsigned one (it looks like tampering).
    auto key = ssh::parse_public_key(blob_);
    if (!key || ssh::signature_algorithm(*sig) != sshsig_algorithm(*key))
      return fail("audit_sign", fmt::format("{}: the token signed with {}", signer_->describe(),
                                            ssh::signature_algorithm(*sig)));
    if (auto v = ssh::verify_signature(*key, *sig, data); !v)
      return fail("audit_sign", fmt::format("{}: the token's signature does not verify: {}",
                                            signer_->describe(), v.error().message));
    return sig;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  uint8_t sig[64];
  size_t sig_len = sizeof sig;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_->p.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len, data.data(), data.size()) != 1 || sig_len != 64)
    return fail("audit_sign", "cannot sign the checkpoint");
  return ssh::Writer().string("ssh-ed25519").string(std::span<const uint8_t>(sig, 64)).take();
}

Result<void> verify_checkpoint(const ssh::PublicKey& key, uint64_t head_seq, std::string_view head,
                               std::string_view sig_base64) {
  auto blob = ssh::base64_decode(sig_base64);
  if (!blob) return fail("bad_checkpoint", "sig is not base64");
  auto sig = ssh::parse_sshsig(*blob);
  if (!sig) return fail("bad_checkpoint", "sig is not an SSHSIG blob: " + sig.error().message);
  if (sig->ns != kCheckpointNamespace)
    return fail("bad_checkpoint", "namespace is not touchgate-audit");
  if (sig->public_key != key.blob)
    return fail("bad_checkpoint", "signed by another key than the audit key");
  const std::string msg = checkpoint_message(head_seq, head);
  const auto data = ssh::sshsig_signed_data(
      sig->ns, sig->hash,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
  if (auto v = ssh::verify_signature(key, sig->signature, data); !v)
    return fail("bad_checkpoint", "signature invalid: " + v.error().message);
  return {};
}

Result<ssh::PublicKey> load_audit_public_key(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return fail("audit_key_unreadable", fmt::format("{}: cannot open", path.string()));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto kl = ssh::parse_key_line(line);
    if (!kl)
      return fail("audit_key_unreadable", fmt::format("{}: {}", path.string(), kl.error().message));
    auto key = ssh::parse_public_key(kl->blob);
    if (!key || sshsig_algorithm(*key).empty())
      return fail(
          "audit_key_unreadable",
          fmt::format("{}: not an ssh-ed25519, ecdsa-sha2-nistp* or ssh-rsa key", path.string()));
    return *key;
  }
  return fail("audit_key_unreadable", fmt::format("{}: no key", path.string()));
}

}  // namespace touchgate::audit
