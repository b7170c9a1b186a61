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

Result<void> write_public(const std::filesystem::path& pub, const std::string& line) {
  std::error_code ec;
  if (std::filesystem::exists(pub, ec)) return {};
  std::ofstream out(pub, std::ios::trunc);
  out << line << '\n';
  out.close();
  if (!out) return fail("audit_key_write", fmt::format("{}: cannot write", pub.string()));
  return {};
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
  key->blob_ = ssh::Writer().string("ssh-ed25519").string(std::span<const uint8_t>(raw, 32)).take();
  key->fingerprint_ = ssh::fingerprint_sha256(key->blob_);
  auto pub = path;
  pub += ".pub";
  if (auto w = write_public(pub, key->public_line()); !w) return tl::unexpected(w.error());
  return key;
}

Result<std::vector<uint8_t>> AuditKey::sign_checkpoint(uint64_t head_seq,
                                                       std::string_view head) const {
  const std::string msg = checkpoint_message(head_seq, head);
  const auto data = ssh::sshsig_signed_data(
      kCheckpointNamespace, ssh::SshsigHash::kSha512,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  uint8_t sig[64];
  size_t sig_len = sizeof sig;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_->p.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len, data.data(), data.size()) != 1 || sig_len != 64)
    return fail("audit_sign", "cannot sign the checkpoint");
  const auto sig_blob =
      ssh::Writer().string("ssh-ed25519").string(std::span<const uint8_t>(sig, 64)).take();
  return ssh::encode_sshsig(blob_, kCheckpointNamespace, ssh::SshsigHash::kSha512, sig_blob);
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
    if (!key || key->type != ssh::KeyType::kEd25519)
      return fail("audit_key_unreadable", fmt::format("{}: not an ssh-ed25519 key", path.string()));
    return *key;
  }
  return fail("audit_key_unreadable", fmt::format("{}: no key", path.string()));
}

}  // namespace touchgate::audit
