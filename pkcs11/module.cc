#include "pkcs11/module.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "ssh/unique_fd.h"
#include "ssh/writer.h"

namespace touchgate::pkcs11 {
namespace {

constexpr size_t kMaxPinFile = 1024;
constexpr size_t kMaxAttribute = 16384;

// blank_trimmed is a fixed-size, blank-padded Cryptoki text field without its padding.
template <size_t N>
std::string blank_trimmed(const unsigned char (&field)[N]) {
  std::string s(reinterpret_cast<const char*>(field), N);
  const size_t end = s.find_last_not_of(' ');
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

// The loaded modules, by canonical path. Its mutex also covers loading and unloading a library:
// a library whose last owner is unloading it (its weak_ptr expired, its destructor not done) is
// loaded again only once that destructor has finalised it.
struct Registry {
  std::mutex mutex;
  std::condition_variable unloaded;
  std::map<std::string, std::weak_ptr<Module>> modules;
};

Registry& registry() {
  static Registry r;
  return r;
}

tl::unexpected<Error> module_error(std::string_view call, CK_RV rv) {
  if (is_token_gone(rv))
    return fail("pkcs11_token_missing",
                fmt::format("PKCS#11 token is gone ({}: {})", call, rv_name(rv)));
  return fail("pkcs11_module_error", fmt::format("PKCS#11 {} failed: {}", call, rv_name(rv)));
}


// find_objects returns up to `limit` objects matching the template.
Result<std::vector<CK_OBJECT_HANDLE>> find_objects(const Module& module, const Session& session,
                                                   std::span<CK_ATTRIBUTE> templ, size_t limit) {
  CK_FUNCTION_LIST* f = module.functions();
  CK_RV rv = f->C_FindObjectsInit(session.handle(), templ.data(), templ.size());
  if (rv != CKR_OK) return module_error("C_FindObjectsInit", rv);
  std::vector<CK_OBJECT_HANDLE> found(limit);
  CK_ULONG count = 0;
  rv = f->C_FindObjects(session.handle(), found.data(), found.size(), &count);
  const CK_RV final_rv = f->C_FindObjectsFinal(session.handle());
  if (rv != CKR_OK) return module_error("C_FindObjects", rv);
  if (final_rv != CKR_OK) return module_error("C_FindObjectsFinal", final_rv);
  found.resize(std::min<size_t>(count, limit));
  return found;
}

// get_attribute reads one attribute's value; nullopt when the object does not have it (or does
// not reveal it).
Result<std::optional<std::vector<uint8_t>>> get_attribute(const Module& module,
                                                          const Session& session,
                                                          CK_OBJECT_HANDLE object,
                                                          CK_ATTRIBUTE_TYPE type) {
  CK_FUNCTION_LIST* f = module.functions();
  CK_ATTRIBUTE attr{type, nullptr, 0};
  CK_RV rv = f->C_GetAttributeValue(session.handle(), object, &attr, 1);
  if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) return std::nullopt;
  if (rv != CKR_OK) return module_error("C_GetAttributeValue", rv);
  if (attr.ulValueLen == CK_UNAVAILABLE_INFORMATION) return std::nullopt;
  if (attr.ulValueLen > kMaxAttribute)
    return fail("pkcs11_key_unsupported", "PKCS#11 key attribute is implausibly large");
  std::vector<uint8_t> value(attr.ulValueLen);
  attr.pValue = value.data();
  rv = f->C_GetAttributeValue(session.handle(), object, &attr, 1);
  if (rv != CKR_OK) return module_error("C_GetAttributeValue", rv);
  value.resize(std::min<size_t>(attr.ulValueLen, value.size()));
  return value;
}

Result<CK_ULONG> get_ulong(const Module& module, const Session& session, CK_OBJECT_HANDLE object,
                           CK_ATTRIBUTE_TYPE type, std::string_view what) {
  auto value = get_attribute(module, session, object, type);
  if (!value) return tl::unexpected(value.error());
  if (!*value || (*value)->size() != sizeof(CK_ULONG))
    return fail("pkcs11_key_unsupported", fmt::format("PKCS#11 key has no readable {}", what));
  CK_ULONG out = 0;
  std::memcpy(&out, (*value)->data(), sizeof out);
  return out;
}

struct Curve {
  std::string_view ssh_curve;  // "nistp256"; empty for Ed25519
  std::vector<uint8_t> oid;    // DER of the OID (or Edwards curve name) in CKA_EC_PARAMS
  size_t point_size;           // uncompressed point, or the 32-byte Ed25519 key
};

const std::array<Curve, 5>& curves() {
  static const std::array<Curve, 5> kCurves = {{
      {"nistp256", {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, 65},
      {"nistp384", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, 97},
      {"nistp521", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, 133},
      {"", {0x06, 0x03, 0x2b, 0x65, 0x70}, 32},  // id-Ed25519 (RFC 8410)
      // PrintableString "edwards25519" (PKCS#11 3.0 allows the curve name).
      {"", {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'}, 32},
  }};
  return kCurves;
}

// unwrap_point returns the point inside CKA_EC_POINT: a DER OCTET STRING as PKCS#11 specifies,
// or the raw point that some tokens return.
std::optional<std::vector<uint8_t>> unwrap_point(const std::vector<uint8_t>& value,
                                                 size_t point_size) {
  if (value.size() == point_size && (point_size == 32 || value[0] == 0x04)) return value;
  size_t header = 0;
  if (value.size() >= 2 && value[0] == 0x04 && value[1] < 0x80) {
    header = 2;
  } else if (value.size() >= 3 && value[0] == 0x04 && value[1] == 0x81 && value[2] >= 0x80) {
    header = 3;
  } else {
    return std::nullopt;
  }
  const size_t length = header == 2 ? value[1] : value[2];
  if (length != point_size || value.size() != header + length) return std::nullopt;
  return std::vector<uint8_t>(value.begin() + static_cast<ptrdiff_t>(header), value.end());
}

CK_RV initialize(CK_FUNCTION_LIST* functions) {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  return functions->C_Initialize(&args);
}

tl::unexpected<Error> unsupported(std::string message) {
  return fail("pkcs11_key_unsupported", "PKCS#11 key: " + std::move(message));
}

// public_key_from reads the public key from object (a public key, or the private key itself).
// nullopt when object lacks the attributes.
Result<std::optional<ssh::PublicKey>> public_key_from(const Module& module, const Session& session,
                                                      CK_OBJECT_HANDLE object,
                                                      CK_KEY_TYPE key_type) {
  ssh::Writer w;
  if (key_type == CKK_EC || key_type == CKK_EC_EDWARDS) {
    auto params = get_attribute(module, session, object, CKA_EC_PARAMS);
    if (!params) return tl::unexpected(params.error());
    auto point = get_attribute(module, session, object, CKA_EC_POINT);
    if (!point) return tl::unexpected(point.error());
    if (!*params || !*point) return std::nullopt;
    const Curve* curve = nullptr;
    for (const auto& c : curves())
      if (**params == c.oid && c.ssh_curve.empty() == (key_type == CKK_EC_EDWARDS)) curve = &c;
    if (!curve) return unsupported("curve is not P-256, P-384, P-521 or Ed25519");
    auto raw = unwrap_point(**point, curve->point_size);
    if (!raw) return unsupported("malformed CKA_EC_POINT");
    if (curve->ssh_curve.empty()) {
      w.string("ssh-ed25519").string(*raw);
    } else {
      w.string(fmt::format("ecdsa-sha2-{}", curve->ssh_curve))
          .string(curve->ssh_curve)
          .string(*raw);
    }
  } else if (key_type == CKK_RSA) {
    auto n = get_attribute(module, session, object, CKA_MODULUS);
    if (!n) return tl::unexpected(n.error());
    auto e = get_attribute(module, session, object, CKA_PUBLIC_EXPONENT);
    if (!e) return tl::unexpected(e.error());
    if (!*n || !*e) return std::nullopt;
    w.string("ssh-rsa").mpint(**e).mpint(**n);
  } else {
    return unsupported(fmt::format("key type 0x{:x} is not EC, Edwards EC or RSA", key_type));
  }
  auto key = ssh::parse_public_key(w.bytes());
  if (!key) return unsupported(key.error().message);
  return std::optional<ssh::PublicKey>(std::move(*key));
}

}  // namespace

std::string rv_name(CK_RV rv) {
  switch (rv) {
#define TG_RV(name) \
  case name:        \
    return #name;
    TG_RV(CKR_OK)
    TG_RV(CKR_HOST_MEMORY)
    TG_RV(CKR_SLOT_ID_INVALID)
    TG_RV(CKR_GENERAL_ERROR)
    TG_RV(CKR_FUNCTION_FAILED)
    TG_RV(CKR_ARGUMENTS_BAD)
    TG_RV(CKR_ATTRIBUTE_SENSITIVE)
    TG_RV(CKR_ATTRIBUTE_TYPE_INVALID)
    TG_RV(CKR_DEVICE_ERROR)
    TG_RV(CKR_DEVICE_MEMORY)
    TG_RV(CKR_DEVICE_REMOVED)
    TG_RV(CKR_FUNCTION_CANCELED)
    TG_RV(CKR_FUNCTION_NOT_SUPPORTED)
    TG_RV(CKR_KEY_HANDLE_INVALID)
    TG_RV(CKR_KEY_TYPE_INCONSISTENT)
    TG_RV(CKR_KEY_FUNCTION_NOT_PERMITTED)
    TG_RV(CKR_MECHANISM_INVALID)
    TG_RV(CKR_MECHANISM_PARAM_INVALID)
    TG_RV(CKR_OBJECT_HANDLE_INVALID)
    TG_RV(CKR_OPERATION_ACTIVE)
    TG_RV(CKR_OPERATION_NOT_INITIALIZED)
    TG_RV(CKR_PIN_INCORRECT)
    TG_RV(CKR_PIN_INVALID)
    TG_RV(CKR_PIN_LEN_RANGE)
    TG_RV(CKR_PIN_EXPIRED)
    TG_RV(CKR_PIN_LOCKED)
    TG_RV(CKR_SESSION_CLOSED)
    TG_RV(CKR_SESSION_COUNT)
    TG_RV(CKR_SESSION_HANDLE_INVALID)
    TG_RV(CKR_TOKEN_NOT_PRESENT)
    TG_RV(CKR_TOKEN_NOT_RECOGNIZED)
    TG_RV(CKR_USER_ALREADY_LOGGED_IN)
    TG_RV(CKR_USER_NOT_LOGGED_IN)
    TG_RV(CKR_USER_PIN_NOT_INITIALIZED)
    TG_RV(CKR_USER_TYPE_INVALID)
    TG_RV(CKR_BUFFER_TOO_SMALL)
    TG_RV(CKR_CRYPTOKI_NOT_INITIALIZED)
    TG_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    TG_RV(CKR_CANT_LOCK)
    TG_RV(CKR_DATA_LEN_RANGE)
#undef TG_RV
    default:
      return fmt::format("CKR 0x{:x}", rv);
  }
}

bool is_token_gone(CK_RV rv) {
  switch (rv) {
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_USER_NOT_LOGGED_IN:
      return true;
    default:
      return false;
  }
}

Result<std::shared_ptr<Module>> Module::load(const std::filesystem::path& path) {
  if (!path.is_absolute())
    return fail("pkcs11_module_missing",
                fmt::format("PKCS#11 module {}: must be an absolute path", path.string()));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return fail("pkcs11_module_missing",
                fmt::format("PKCS#11 module {}: no such file", path.string()));
  auto canonical = std::filesystem::canonical(path, ec);
  const std::string key = ec ? path.string() : canonical.string();

  Registry& reg = registry();
  std::unique_lock lock(reg.mutex);
  for (auto it = reg.modules.find(key); it != reg.modules.end(); it = reg.modules.find(key)) {
    if (auto loaded = it->second.lock()) return loaded;
    reg.unloaded.wait(lock);
  }
  // Not registered until it is whole: a Module that fails here unloads without the registry.
  std::unique_ptr<Module> module(new Module());
  module->path_ = path;
  module->key_ = key;
  module->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!module->handle_) {
    const char* why = ::dlerror();
    return fail("pkcs11_module_load", fmt::format("PKCS#11 module {}: cannot load: {}",
                                                  path.string(), why ? why : "dlopen failed"));
  }
  auto get_list =
      reinterpret_cast<CK_C_GetFunctionList>(::dlsym(module->handle_, "C_GetFunctionList"));
  if (!get_list)
    return fail("pkcs11_not_a_module",
                fmt::format("{} is not a PKCS#11 module (no C_GetFunctionList)", path.string()));
  CK_RV rv = get_list(&module->functions_);
  if (rv != CKR_OK || !module->functions_)
    return fail("pkcs11_not_a_module",
                fmt::format("{}: C_GetFunctionList failed: {}", path.string(), rv_name(rv)));
  if (module->functions_->version.major != 2)
    return fail("pkcs11_not_a_module",
                fmt::format("{}: Cryptoki version {}.{} is not 2.x", path.string(),
                            module->functions_->version.major, module->functions_->version.minor));
  rv = initialize(module->functions_);
  if (rv == CKR_OK) {
    module->finalize_ = true;
  } else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    return fail("pkcs11_module_init", fmt::format("PKCS#11 module {}: C_Initialize failed: {}",
                                                  path.string(), rv_name(rv)));
  }
  std::shared_ptr<Module> shared(std::move(module));
  shared->registered_ = true;
  reg.modules[key] = shared;
  return shared;
}

Result<void> Module::reinitialize() {
  std::unique_lock lock(use_);
  if (!finalize_)
    return fail("pkcs11_module_init",
                fmt::format("PKCS#11 module {}: initialised by another user; not restarted",
                            path_.string()));
  functions_->C_Finalize(nullptr);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  const CK_RV rv = initialize(functions_);
  if (rv != CKR_OK) {
    finalize_ = false;
    return fail("pkcs11_module_init", fmt::format("PKCS#11 module {}: C_Initialize failed: {}",
                                                  path_.string(), rv_name(rv)));
  }
  return {};
}

Module::~Module() {
  if (!registered_) {
    if (finalize_) functions_->C_Finalize(nullptr);
    if (handle_) ::dlclose(handle_);
    return;
  }
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  if (finalize_) functions_->C_Finalize(nullptr);
  if (handle_) ::dlclose(handle_);
  reg.modules.erase(key_);
  reg.unloaded.notify_all();
}

Result<CK_SLOT_ID> Module::find_slot(const Uri& uri) const {
  CK_INFO info{};
  CK_RV rv = functions_->C_GetInfo(&info);
  if (rv != CKR_OK) return module_error("C_GetInfo", rv);
  const std::string library = path_.string();
  if (uri.library_manufacturer && *uri.library_manufacturer != blank_trimmed(info.manufacturerID))
    return fail("pkcs11_token_not_found",
                fmt::format("PKCS#11 module {}: library-manufacturer does not match", library));
  if (uri.library_description && *uri.library_description != blank_trimmed(info.libraryDescription))
    return fail("pkcs11_token_not_found",
                fmt::format("PKCS#11 module {}: library-description does not match", library));
  if (uri.library_version && (uri.library_version->major != info.libraryVersion.major ||
                              uri.library_version->minor != info.libraryVersion.minor))
    return fail("pkcs11_token_not_found",
                fmt::format("PKCS#11 module {}: library-version does not match", library));

  CK_ULONG count = 0;
  rv = functions_->C_GetSlotList(CK_TRUE, nullptr, &count);
  if (rv != CKR_OK) return module_error("C_GetSlotList", rv);
  std::vector<CK_SLOT_ID> slots(count);
  rv = functions_->C_GetSlotList(CK_TRUE, slots.data(), &count);
  if (rv != CKR_OK) return module_error("C_GetSlotList", rv);
  slots.resize(std::min<size_t>(count, slots.size()));

  std::vector<CK_SLOT_ID> matches;
  std::vector<std::string> present;
  for (const CK_SLOT_ID slot : slots) {
    CK_SLOT_INFO slot_info{};
    CK_TOKEN_INFO token{};
    if (functions_->C_GetSlotInfo(slot, &slot_info) != CKR_OK) continue;
    if (functions_->C_GetTokenInfo(slot, &token) != CKR_OK) continue;
    if (!(token.flags & CKF_TOKEN_INITIALIZED)) continue;
    const std::string label = blank_trimmed(token.label);
    present.push_back(fmt::format("\"{}\"", label));
    if (uri.slot_id && *uri.slot_id != slot) continue;
    if (uri.slot_description && *uri.slot_description != blank_trimmed(slot_info.slotDescription))
      continue;
    if (uri.slot_manufacturer && *uri.slot_manufacturer != blank_trimmed(slot_info.manufacturerID))
      continue;
    if (uri.token && *uri.token != label) continue;
    if (uri.manufacturer && *uri.manufacturer != blank_trimmed(token.manufacturerID)) continue;
    if (uri.serial && *uri.serial != blank_trimmed(token.serialNumber)) continue;
    if (uri.model && *uri.model != blank_trimmed(token.model)) continue;
    matches.push_back(slot);
  }
  if (matches.empty())
    return fail(
        "pkcs11_token_not_found",
        fmt::format("PKCS#11 module {}: no token matches {} (tokens present: {})", library,
                    describe_uri(uri),
                    present.empty() ? "none" : fmt::format("{}", fmt::join(present, ", "))));
  if (matches.size() > 1)
    return fail("pkcs11_token_ambiguous",
                fmt::format("PKCS#11 module {}: {} tokens match {}; name one with token= or "
                            "serial=",
                            library, matches.size(), describe_uri(uri)));
  return matches.front();
}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    close();
    module_ = std::exchange(other.module_, nullptr);
    handle_ = std::exchange(other.handle_, 0);
    generation_ = std::exchange(other.generation_, 0);
  }
  return *this;
}

void Session::close() {
  if (current()) module_->functions()->C_CloseSession(handle_);
  module_ = nullptr;
  handle_ = 0;
}

Result<Session> open_session(const Module& module, CK_SLOT_ID slot) {
  CK_SESSION_HANDLE handle = 0;
  const CK_RV rv =
      module.functions()->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &handle);
  if (rv == CKR_SLOT_ID_INVALID) return module_error("C_OpenSession", CKR_TOKEN_NOT_PRESENT);
  if (rv != CKR_OK) return module_error("C_OpenSession", rv);
  return Session(module, handle);
}

Result<std::string> read_pin_file(const std::filesystem::path& pin_file) {
  const std::string name = pin_file.string();
  ssh::UniqueFd fd(::open(pin_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0)
    return fail("pkcs11_pin_file",
                fmt::format("PIN file {}: cannot open: {}", name, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return fail("pkcs11_pin_file", fmt::format("PIN file {}: not a regular file", name));
  if ((st.st_mode & 077) != 0)
    return fail("pkcs11_pin_file_mode",
                fmt::format("PIN file {}: mode {:04o} lets group or others access it; "
                            "chmod 600 it",
                            name, st.st_mode & 07777));
  if (st.st_size > static_cast<off_t>(kMaxPinFile))
    return fail("pkcs11_pin_file",
                fmt::format("PIN file {}: larger than {} bytes", name, kMaxPinFile));
  std::string pin(kMaxPinFile + 1, '\0');
  size_t got = 0;
  while (got < pin.size()) {
    const ssize_t n = ::read(fd.get(), pin.data() + got, pin.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      OPENSSL_cleanse(pin.data(), pin.size());
      return fail("pkcs11_pin_file",
                  fmt::format("PIN file {}: cannot read: {}", name, std::strerror(errno)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxPinFile) {
    OPENSSL_cleanse(pin.data(), pin.size());
    return fail("pkcs11_pin_file",
                fmt::format("PIN file {}: larger than {} bytes", name, kMaxPinFile));
  }
  size_t end = std::min(got, pin.find('\n'));
  if (end > 0 && pin[end - 1] == '\r') --end;
  // Wipe what follows the PIN before shrinking (resize would leave it in the buffer).
  OPENSSL_cleanse(pin.data() + end, pin.size() - end);
  pin.resize(end);
  if (pin.empty()) return fail("pkcs11_pin_file", fmt::format("PIN file {}: empty", name));
  return pin;
}

Result<void> login(const Module& module, const Session& session,
                   const std::filesystem::path& pin_file) {
  auto pin = read_pin_file(pin_file);
  if (!pin) return tl::unexpected(pin.error());
  const CK_RV rv = module.functions()->C_Login(
      session.handle(), CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(pin->data()), pin->size());
  OPENSSL_cleanse(pin->data(), pin->size());
  switch (rv) {
    case CKR_OK:
    case CKR_USER_ALREADY_LOGGED_IN:
      return {};
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_PIN_NOT_INITIALIZED:
      return fail("pkcs11_login_failed",
                  fmt::format("PKCS#11 login refused ({}) with the PIN from {}", rv_name(rv),
                              pin_file.string()));
    default:
      return module_error("C_Login", rv);
  }
}

Result<KeyObject> find_private_key(const Module& module, const Session& session, const Uri& uri) {
  if (uri.type && *uri.type != ObjectType::kPrivate)
    return fail("pkcs11_bad_uri",
                fmt::format("PKCS#11 URI: type={} cannot name a signing key; use type=private",
                            object_type_name(*uri.type)));
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  std::string label = uri.object.value_or("");
  std::vector<uint8_t> id = uri.id.value_or(std::vector<uint8_t>{});
  std::vector<CK_ATTRIBUTE> templ = {{CKA_CLASS, &cls, sizeof cls}};
  if (uri.object) templ.push_back({CKA_LABEL, label.data(), label.size()});
  if (uri.id) templ.push_back({CKA_ID, id.data(), id.size()});
  auto found = find_objects(module, session, templ, 2);
  if (!found) return tl::unexpected(found.error());
  if (found->empty())
    return fail("pkcs11_key_not_found",
                fmt::format("PKCS#11: no private key matches {}", describe_uri(uri)));
  if (found->size() > 1)
    return fail("pkcs11_key_ambiguous",
                fmt::format("PKCS#11: several private keys match {}; name one with object= and "
                            "id=",
                            describe_uri(uri)));
  KeyObject key;
  key.handle = found->front();
  auto key_type = get_ulong(module, session, key.handle, CKA_KEY_TYPE, "CKA_KEY_TYPE");
  if (!key_type) return tl::unexpected(key_type.error());
  key.key_type = *key_type;

  // The public half: the public key object with the same CKA_ID, else the private key itself.
  std::optional<ssh::PublicKey> public_key;
  auto key_id = get_attribute(module, session, key.handle, CKA_ID);
  if (!key_id) return tl::unexpected(key_id.error());
  if (*key_id) {
    CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE pub_type = key.key_type;
    std::vector<CK_ATTRIBUTE> pub_templ = {{CKA_CLASS, &pub_cls, sizeof pub_cls},
                                           {CKA_KEY_TYPE, &pub_type, sizeof pub_type},
                                           {CKA_ID, (*key_id)->data(), (*key_id)->size()}};
    auto pubs = find_objects(module, session, pub_templ, 2);
    if (!pubs) return tl::unexpected(pubs.error());
    if (pubs->size() == 1) {
      auto pub = public_key_from(module, session, pubs->front(), key.key_type);
      if (!pub) return tl::unexpected(pub.error());
      public_key = std::move(*pub);
    }
  }
  if (!public_key) {
    auto pub = public_key_from(module, session, key.handle, key.key_type);
    if (!pub) return tl::unexpected(pub.error());
    public_key = std::move(*pub);
  }
  if (!public_key)
    return unsupported(
        fmt::format("{}: no public key object with its CKA_ID and no public "
                    "attributes on the private key",
                    describe_uri(uri)));
  key.public_key = std::move(*public_key);
  return key;
}

}  // namespace touchgate::pkcs11
