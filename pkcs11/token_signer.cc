#include "pkcs11/token_signer.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include "ssh/writer.h"

namespace touchgate::pkcs11 {
namespace {

constexpr size_t kMaxSignature = 16384 / 8;

// sign_error reports a failed call. When the token, the session or the key handle is gone, the
// session is closed so that the next signature starts a new one.
tl::unexpected<Error> sign_error(std::string_view call, CK_RV rv, Session* session) {
  // A key handle that stopped being valid means the token was taken out or changed.
  if (is_token_gone(rv) || rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
    session->close();
    return fail("pkcs11_token_missing",
                fmt::format("PKCS#11 token is gone ({}: {}); the next signature retries", call,
                            rv_name(rv)));
  }
  return fail("pkcs11_sign_failed", fmt::format("PKCS#11 {} failed: {}", call, rv_name(rv)));
}

// digest hashes data with the named OpenSSL digest.
std::vector<uint8_t> digest(const char* name, ssh::Bytes data) {
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_get_digestbyname(name), nullptr) !=
      1)
    return {};
  out.resize(len);
  return out;
}

}  // namespace

Result<std::unique_ptr<TokenSigner>> TokenSigner::open(const std::filesystem::path& module_path,
                                                       const Uri& uri,
                                                       const std::filesystem::path& pin_file) {
  auto module = Module::load(module_path);
  if (!module) return tl::unexpected(module.error());
  std::unique_ptr<TokenSigner> signer(new TokenSigner());
  signer->module_ = std::move(*module);
  signer->uri_ = uri;
  signer->pin_file_ = pin_file;
  std::lock_guard lock(signer->mutex_);
  std::shared_lock use(signer->module_->use_mutex());
  auto opened = signer->reopen(false, use);
  if (!opened) return tl::unexpected(opened.error());
  return signer;
}

TokenSigner::~TokenSigner() {
  if (!module_) return;
  std::shared_lock use(module_->use_mutex());
  session_.close();
}

Result<void> TokenSigner::reopen(bool recovering, std::shared_lock<std::shared_mutex>& use) {
  session_.close();
  auto slot = module_->find_slot(uri_);
  if (!slot && recovering && slot.error().code == "pkcs11_token_not_found") {
    use.unlock();
    auto again = module_->reinitialize();
    use.lock();
    if (again) slot = module_->find_slot(uri_);
  }
  if (!slot && recovering && slot.error().code == "pkcs11_token_not_found")
    return fail("pkcs11_token_missing",
                fmt::format("PKCS#11 token is still gone: {}", slot.error().message));
  if (!slot) return tl::unexpected(slot.error());
  auto session = open_session(*module_, *slot);
  if (!session) return tl::unexpected(session.error());
  auto logged_in = login(*module_, *session, pin_file_);
  if (!logged_in) return logged_in;
  auto key = find_private_key(*module_, *session, uri_);
  if (!key) return tl::unexpected(key.error());
  if (!public_key_.blob.empty() && key->public_key.blob != public_key_.blob)
    return fail(
        "pkcs11_key_changed",
        fmt::format("{}: the token now holds a different key ({}, was {})", describe_uri(uri_),
                    key->public_key.fingerprint(), public_key_.fingerprint()));
  // Set once: public_key() hands out a reference that other threads read without the mutex.
  if (public_key_.blob.empty()) public_key_ = std::move(key->public_key);
  key_ = key->handle;
  session_ = std::move(*session);
  return {};
}

Result<std::vector<uint8_t>> TokenSigner::sign_raw(CK_MECHANISM_TYPE mechanism, ssh::Bytes input) {
  CK_FUNCTION_LIST* f = module_->functions();
  CK_MECHANISM mech{mechanism, nullptr, 0};
  CK_RV rv = f->C_SignInit(session_.handle(), &mech, key_);
  if (rv != CKR_OK) return sign_error("C_SignInit", rv, &session_);
  std::vector<uint8_t> sig(kMaxSignature);
  CK_ULONG len = sig.size();
  // Cryptoki takes the input as non-const although it does not write to it.
  rv = f->C_Sign(session_.handle(), const_cast<CK_BYTE*>(input.data()), input.size(), sig.data(),
                 &len);
  if (rv != CKR_OK) return sign_error("C_Sign", rv, &session_);
  sig.resize(std::min<size_t>(len, sig.size()));
  return sig;
}

Result<std::vector<uint8_t>> TokenSigner::sign(std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  std::shared_lock use(module_->use_mutex());
  // Another signer of this module reinitialised it: this session is gone, not the token.
  if (session_ && !session_.current()) session_.close();
  if (!session_) {
    auto opened = reopen(true, use);
    if (!opened) return tl::unexpected(opened.error());
  }
  Result<std::vector<uint8_t>> raw;
  ssh::Writer blob;
  switch (public_key_.type) {
    case ssh::KeyType::kEcdsaP256:
    case ssh::KeyType::kEcdsaP384:
    case ssh::KeyType::kEcdsaP521: {
      const char* md = public_key_.type == ssh::KeyType::kEcdsaP256   ? "SHA256"
                       : public_key_.type == ssh::KeyType::kEcdsaP384 ? "SHA384"
                                                                      : "SHA512";
      const auto hash = digest(md, data);
      if (hash.empty()) return fail("pkcs11_sign_failed", "cannot hash the data to sign");
      raw = sign_raw(CKM_ECDSA, hash);
      if (!raw) break;
      // r || s, each the curve's field size.
      if (raw->empty() || raw->size() % 2 != 0 || raw->size() > 2 * 66) {
        raw = fail("pkcs11_sign_failed",
                   fmt::format("PKCS#11 ECDSA signature of {} bytes is malformed", raw->size()));
        break;
      }
      const size_t half = raw->size() / 2;
      ssh::Writer rs;
      rs.mpint(ssh::Bytes(*raw).first(half)).mpint(ssh::Bytes(*raw).subspan(half));
      blob.string(public_key_.type_name()).string(rs.bytes());
      break;
    }
    case ssh::KeyType::kEd25519:
      raw = sign_raw(CKM_EDDSA, data);
      if (!raw) break;
      if (raw->size() != 64) {
        raw = fail("pkcs11_sign_failed", "PKCS#11 Ed25519 signature is not 64 bytes");
        break;
      }
      blob.string("ssh-ed25519").string(*raw);
      break;
    case ssh::KeyType::kRsa:
      raw = sign_raw(CKM_SHA512_RSA_PKCS, data);
      if (!raw) break;
      blob.string("rsa-sha2-512").string(*raw);
      break;
    default:
      return fail("pkcs11_sign_failed", "key type cannot sign");
  }
  if (!raw) return tl::unexpected(raw.error());
  return blob.take();
}

std::string TokenSigner::describe() const {
  return fmt::format("{} {}", describe_uri(uri_), public_key_.fingerprint());
}

}  // namespace touchgate::pkcs11
