// Trust boundary: verifies second-factor signatures that come from the client's agent.
#include "fido/touch.h"

#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>

#include "ssh/digest.h"
#include "ssh/signature.h"
#include "ssh/sk_signature.h"
#include "ssh/sshsig.h"
#include "ssh/writer.h"

namespace touchgate::fido {
namespace {

// Owners of libfido2 handles.
struct Deleter {
  void operator()(fido_assert_t* p) const { fido_assert_free(&p); }
  void operator()(es256_pk_t* p) const { es256_pk_free(&p); }
  void operator()(eddsa_pk_t* p) const { eddsa_pk_free(&p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Deleter>;

constexpr size_t kP256CoordinatesSize = 64;  // X || Y, after the 0x04 of the uncompressed point
constexpr size_t kEd25519KeySize = 32;

void init_libfido2() {
  static const bool done = [] {
    fido_init(0);
    return true;
  }();
  (void)done;
}

tl::unexpected<Error> invalid(const std::string& message) {
  return fail("touch_sig_invalid", message);
}

// verify_fido2 checks an sk signature with libfido2 as an assertion whose authenticator data is
// SHA256(application) || flags || counter and whose client data hash is SHA256(signed_data).
Result<void> verify_fido2(const ssh::PublicKey& key, const ssh::SkSignature& sig,
                          ssh::Bytes signed_data, const TouchRequirements& req) {
  init_libfido2();
  if (key.application.empty() ||
      std::memchr(key.application.data(), 0, key.application.size()) != nullptr) {
    return invalid("security key has an unusable application");
  }
  const std::array<uint8_t, 32> app_hash = ssh::sha256(ssh::as_bytes(key.application));
  const std::vector<uint8_t> authdata =
      ssh::Writer().raw(app_hash).u8(sig.flags).u32(sig.counter).take();
  const std::array<uint8_t, 32> client_data_hash = ssh::sha256(signed_data);

  std::vector<uint8_t> der;
  int cose = COSE_ES256;
  Ptr<es256_pk_t> es256;
  Ptr<eddsa_pk_t> eddsa;
  const void* pk = nullptr;
  const std::vector<uint8_t>* raw_sig = &sig.ed25519;
  if (key.type == ssh::KeyType::kSkEcdsaP256) {
    if (key.ecdsa_point.size() != 1 + kP256CoordinatesSize ||
        !ssh::ecdsa_der(sig.ecdsa_r, sig.ecdsa_s, &der)) {
      return fail("touch_sig_malformed", "ECDSA security-key signature cannot be encoded");
    }
    es256.reset(es256_pk_new());
    if (!es256 || es256_pk_from_ptr(es256.get(), key.ecdsa_point.data() + 1,
                                    kP256CoordinatesSize) != FIDO_OK) {
      return invalid("security key's ECDSA public key is unusable");
    }
    pk = es256.get();
    raw_sig = &der;
  } else {
    cose = COSE_EDDSA;
    eddsa.reset(eddsa_pk_new());
    if (key.ed25519.size() != kEd25519KeySize || !eddsa ||
        eddsa_pk_from_ptr(eddsa.get(), key.ed25519.data(), kEd25519KeySize) != FIDO_OK) {
      return invalid("security key's ed25519 public key is unusable");
    }
    pk = eddsa.get();
  }

  Ptr<fido_assert_t> assert(fido_assert_new());
  if (!assert) return invalid("out of memory for a FIDO2 assertion");
  int rc = fido_assert_set_rp(assert.get(), key.application.c_str());
  if (rc == FIDO_OK) {
    rc = fido_assert_set_clientdata_hash(assert.get(), client_data_hash.data(),
                                         client_data_hash.size());
  }
  if (rc == FIDO_OK) rc = fido_assert_set_count(assert.get(), 1);
  if (rc == FIDO_OK) rc = fido_assert_set_up(assert.get(), FIDO_OPT_TRUE);
  if (rc == FIDO_OK && req.user_verification) rc = fido_assert_set_uv(assert.get(), FIDO_OPT_TRUE);
  if (rc == FIDO_OK) rc = fido_assert_set_sig(assert.get(), 0, raw_sig->data(), raw_sig->size());
  if (rc != FIDO_OK) {
    return invalid(std::string("FIDO2 assertion could not be set up: ") + fido_strerr(rc));
  }
  // libfido2 parses the flags: extension data announced (0x80) but absent makes it refuse.
  rc = fido_assert_set_authdata_raw(assert.get(), 0, authdata.data(), authdata.size());
  if (rc != FIDO_OK) {
    return invalid(fmt::format("authenticator data with flags 0x{:02x} is refused by libfido2: {}",
                               sig.flags, fido_strerr(rc)));
  }
  rc = fido_assert_verify(assert.get(), 0, cose, pk);
  if (rc == FIDO_ERR_INVALID_SIG) return invalid("security-key signature does not verify");
  if (rc != FIDO_OK) return invalid(std::string("FIDO2 verification failed: ") + fido_strerr(rc));
  return {};
}

}  // namespace

Result<VerifiedTouch> verify_touch(const ssh::PublicKey& key, TouchKind kind, ssh::Bytes sig_blob,
                                   ssh::Bytes signed_data, const TouchRequirements& req) {
  const bool sk = ssh::is_security_key(key.type);
  if (kind == TouchKind::kFido2 && !sk) {
    return fail("touch_kind_mismatch",
                "a " + std::string(key.type_name()) + " key is not a FIDO2 security key");
  }
  if (kind == TouchKind::kPiv && sk) {
    return fail("touch_kind_mismatch",
                "a " + std::string(key.type_name()) + " key is not a PIV smart card key");
  }

  VerifiedTouch out;
  out.kind_ = kind;
  if (kind == TouchKind::kFido2) {
    auto sig = ssh::parse_sk_signature(key.type, sig_blob);
    if (!sig) return fail("touch_sig_malformed", sig.error().message);
    // Flags first, so that a missing touch or PIN is named as such.
    if ((sig->flags & ssh::kSkUserPresent) == 0) {
      return fail("touch_not_present", "security key was not touched (user-presence flag unset)");
    }
    if (req.user_verification && (sig->flags & ssh::kSkUserVerified) == 0) {
      return fail("touch_pin_missing",
                  "security key did not verify the user (PIN) although policy requires it");
    }
    auto ok = verify_fido2(key, *sig, signed_data, req);
    if (!ok) return tl::unexpected(ok.error());
    out.flags_ = sig->flags;
    out.counter_ = sig->counter;
  } else {
    auto ok = ssh::verify_signature(key, sig_blob, signed_data);
    if (!ok) {
      if (ok.error().code == "sig_invalid") return fail("touch_sig_invalid", ok.error().message);
      return fail("touch_sig_malformed", ok.error().message);
    }
  }
  out.fingerprint_ = key.fingerprint();
  out.key_type_ = std::string(key.type_name());
  out.key_blob_ = key.blob;
  out.signed_data_.assign(signed_data.begin(), signed_data.end());
  out.signature_.assign(sig_blob.begin(), sig_blob.end());
  return out;
}

Result<VerifiedTouch> verify_sshsig_touch(const ssh::PublicKey& key, TouchKind kind,
                                          ssh::Bytes sig_blob, std::string_view ns,
                                          std::string_view message, const TouchRequirements& req) {
  const auto signed_data =
      ssh::sshsig_signed_data(ns, ssh::SshsigHash::kSha512, ssh::as_bytes(message));
  auto touch = verify_touch(key, kind, sig_blob, signed_data, req);
  if (!touch) return touch;
  touch->namespace_ = std::string(ns);
  touch->message_ = std::string(message);
  touch->sshsig_blob_ =
      ssh::encode_sshsig(touch->key_blob_, ns, ssh::SshsigHash::kSha512, touch->signature_);
  touch->sshsig_ = ssh::armor_sshsig(touch->sshsig_blob_);
  return touch;
}

}  // namespace touchgate::fido
