// A PKCS#11 (Cryptoki) module loaded into the gateway: the library, its slots, a session, login
// and the CA key object. A thin RAII layer over the C API, used by TokenSigner (trust boundary:
// the module is trusted code; what it reports about tokens and keys is checked before use).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>

#include <p11-kit/pkcs11.h>

#include "pkcs11/uri.h"
#include "ssh/error.h"
#include "ssh/key.h"

namespace touchgate::pkcs11 {

// rv_name is the Cryptoki name of rv ("CKR_PIN_INCORRECT"), or its hex value.
std::string rv_name(CK_RV rv);

// is_token_gone is true for the return values that mean the token (or our session on it) went
// away: device removed, token not present or not recognised, session closed or invalid, user
// logged out. A new session and login may succeed once the token is back.
bool is_token_gone(CK_RV rv);

// Module: a dlopen()ed (RTLD_NOW | RTLD_LOCAL) and C_Initialize()d PKCS#11 library. Cryptoki
// state is per process, so the process has one Module per library, shared by every signer that
// uses it (the CA key and the audit key may live in the same module): load returns the one
// already loaded. The last owner's destructor calls C_Finalize and dlclose; a Module that found
// the library already initialised (by code outside this class) does not finalise it.
//
// Threads: calls on the module's sessions may run concurrently (the module is initialised with
// CKF_OS_LOCKING_OK) and hold use_mutex() shared; reinitialize() holds it exclusively, so that
// C_Finalize never runs under another thread's call.
class Module {
 public:
  // load returns the Module of the library at path, which must be absolute (one per library:
  // the same object for the same file). Codes: "pkcs11_module_missing" (no such file),
  // "pkcs11_module_load" (dlopen failed), "pkcs11_not_a_module" (no C_GetFunctionList),
  // "pkcs11_module_init" (C_Initialize failed).
  static Result<std::shared_ptr<Module>> load(const std::filesystem::path& path);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // reinitialize calls C_Finalize and C_Initialize again, which ends every session of every user
  // of the module (their Sessions turn stale, see Session::current): some modules (SoftHSM2)
  // look for tokens only when initialised, so a token put back is found only then. It takes
  // use_mutex() exclusively (the caller must not hold it) and so waits for the calls in flight.
  // Refused ("pkcs11_module_init") for a Module that found the library initialised already.
  Result<void> reinitialize();

  // use_mutex is held shared around every call on a session (see the class comment).
  std::shared_mutex& use_mutex() const { return use_; }
  // generation counts the reinitialisations: a session opened in an earlier one is gone.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  CK_FUNCTION_LIST* functions() const { return functions_; }
  const std::filesystem::path& path() const { return path_; }

  // find_slot returns the one slot holding an initialised token that matches every token, slot
  // and library attribute of uri (PKCS#11 text fields compared without their blank padding).
  // Codes: "pkcs11_token_not_found" (none; the message lists the tokens present),
  // "pkcs11_token_ambiguous" (several), "pkcs11_module_error" (a module call failed).
  Result<CK_SLOT_ID> find_slot(const Uri& uri) const;

 private:
  Module() = default;

  std::filesystem::path path_;
  std::string key_;  // the registry's name for the library (its canonical path)
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* functions_ = nullptr;
  bool finalize_ = false;  // this Module initialised the library (and so finalises it)
  bool registered_ = false;  // load() handed it out (and the registry names it)
  mutable std::shared_mutex use_;
  std::atomic<uint64_t> generation_{0};
};

// Session: an open read-only session, closed by the destructor. Move-only. It is bound to the
// module's generation: after Module::reinitialize its handle means nothing (a new session may
// even have the same number), so a stale Session is dropped without C_CloseSession. The owner
// holds the module's use_mutex() shared around close() and the destructor.
class Session {
 public:
  Session() = default;
  Session(const Module& module, CK_SESSION_HANDLE handle)
      : module_(&module), handle_(handle), generation_(module.generation()) {}
  ~Session() { close(); }
  Session(Session&& other) noexcept { *this = std::move(other); }
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  explicit operator bool() const { return module_ != nullptr; }
  // current is false for a session the module's reinitialisation ended.
  bool current() const { return module_ != nullptr && module_->generation() == generation_; }
  CK_SESSION_HANDLE handle() const { return handle_; }
  // close ends the session now (errors ignored: the token may be gone already).
  void close();

 private:
  const Module* module_ = nullptr;
  CK_SESSION_HANDLE handle_ = 0;
  uint64_t generation_ = 0;
};

// open_session opens a read-only session on slot. Codes "pkcs11_token_missing",
// "pkcs11_module_error".
Result<Session> open_session(const Module& module, CK_SLOT_ID slot);

// login logs the session's application in as CKU_USER with the PIN read from pin_file (see
// read_pin_file); already logged in is success. The PIN is wiped from memory afterwards and never
// appears in an error. Codes: those of read_pin_file, "pkcs11_login_failed" (wrong, locked or
// malformed PIN), "pkcs11_token_missing", "pkcs11_module_error".
Result<void> login(const Module& module, const Session& session,
                   const std::filesystem::path& pin_file);

// read_pin_file returns the first line of pin_file without its line ending. The file must be a
// regular file of at most 1 KiB, not accessible to group or others, and the PIN not empty.
// Codes: "pkcs11_pin_file" (unreadable, too large, empty), "pkcs11_pin_file_mode" (group/other
// permissions). The caller wipes the returned string (OPENSSL_cleanse) when done.
Result<std::string> read_pin_file(const std::filesystem::path& pin_file);

// A private key in a token and its public half as an SSH key.
struct KeyObject {
  CK_OBJECT_HANDLE handle = 0;
  CK_KEY_TYPE key_type = 0;
  ssh::PublicKey public_key;
};

// find_private_key finds the one private key matching uri's object (CKA_LABEL) and id (CKA_ID)
// — uri's type, if given, must be private — and reads its public key from the public key object
// with the same CKA_ID, or else from the private key's own attributes: CKA_EC_PARAMS and
// CKA_EC_POINT (P-256, P-384, P-521 as ecdsa-sha2-nistp*, Edwards 25519 as ssh-ed25519) or
// CKA_MODULUS and CKA_PUBLIC_EXPONENT (ssh-rsa). The key is checked by ssh::parse_public_key.
// Codes: "pkcs11_bad_uri" (type not private), "pkcs11_key_not_found", "pkcs11_key_ambiguous",
// "pkcs11_key_unsupported" (other key types or curves, malformed attributes),
// "pkcs11_token_missing", "pkcs11_module_error".
Result<KeyObject> find_private_key(const Module& module, const Session& session, const Uri& uri);

}  // namespace touchgate::pkcs11
