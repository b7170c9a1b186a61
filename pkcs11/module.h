// A PKCS#11 (Cryptoki) module loaded into the gateway: the library, its slots, a session, login
// and the CA key object. A thin RAII layer over the C API, used by TokenSigner (trust boundary:
// the module is trusted code; what it reports about tokens and keys is checked before use).
#pragma once

#include <filesystem>
#include <memory>
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

// Module: a dlopen()ed (RTLD_NOW | RTLD_LOCAL) and C_Initialize()d PKCS#11 library. Its
// destructor calls C_Finalize and dlclose. The gateway keeps one Module per library: Cryptoki
// state is per process, so a second Module of the same library shares it (and its C_Finalize
// would end the first one's sessions); a Module that found the library already initialised does
// not finalise it.
class Module {
 public:
  // load opens the module at path, which must be absolute. Codes: "pkcs11_module_missing" (no such
  // file), "pkcs11_module_load" (dlopen failed), "pkcs11_not_a_module" (no C_GetFunctionList),
  // "pkcs11_module_init" (C_Initialize failed).
  static Result<std::unique_ptr<Module>> load(const std::filesystem::path& path);
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // reinitialize calls C_Finalize and C_Initialize again, which ends every session: some modules
  // (SoftHSM2) look for tokens only when initialised, so a token put back is found only then.
  // Refused ("pkcs11_module_init") for a Module that found the library initialised already.
  Result<void> reinitialize();

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
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* functions_ = nullptr;
  bool finalize_ = false;  // this Module initialised the library (and so finalises it)
};

// Session: an open read-only session, closed by the destructor. Move-only.
class Session {
 public:
  Session() = default;
  Session(CK_FUNCTION_LIST* functions, CK_SESSION_HANDLE handle)
      : functions_(functions), handle_(handle) {}
  ~Session() { close(); }
  Session(Session&& other) noexcept { *this = std::move(other); }
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  explicit operator bool() const { return functions_ != nullptr; }
  CK_SESSION_HANDLE handle() const { return handle_; }
  // close ends the session now (errors ignored: the token may be gone already).
  void close();

 private:
  CK_FUNCTION_LIST* functions_ = nullptr;
  CK_SESSION_HANDLE handle_ = 0;
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
