// tg-test-sk: a software FIDO2 authenticator for tests, loaded by OpenSSH as a
// SecurityKeyProvider (middleware API 0x000a0000, OpenSSH 9.2). Unlike OpenSSH's own sk-dummy,
// the tests decide what each signature says: flags, counter, a broken signature, a failure, a
// slow touch.
//
// INSECURE BY DESIGN: the private key travels inside the key handle (the "credential ID" that
// ssh-keygen stores in the private key file), so anyone holding the key file holds the key. No
// touch, no PIN, no attestation. Never install it outside a test.
//
// Use it wherever OpenSSH takes a provider, always by its real (absolute, symlink-free) path:
//   ssh-keygen -t ecdsa-sk|ed25519-sk -w MODULE -f KEY   enrol (ECDSA P-256 or Ed25519)
//   ssh-keygen -Y sign -n NS -f KEY -w MODULE FILE        sign (or SSH_SK_PROVIDER=MODULE)
//   ssh-agent -P MODULE; ssh-add -S MODULE KEY            sign through an agent
// OpenSSH runs every provider call in a fresh ssh-sk-helper process that inherits the calling
// tool's environment; for keys held by ssh-agent that is the AGENT's environment, which must
// therefore carry TG_TEST_SK_CONTROL. A daemonised ssh-agent runs in "/": give absolute paths.
//
// Control file: $TG_TEST_SK_CONTROL, read again at every signature. Lines `key=value`; blank
// lines and lines starting with '#' are ignored. Keys:
//   flags=N          authenticator flags to report (decimal or 0x..): 0x01 user present (default),
//                    0x05 present and verified, 0x00 no touch
//   counter=MODE     increment (default): 1, 2, 3, ... kept in the counter file across processes
//                    (flock), so helpers running at once never share a value;
//                    fixed:N  always N;
//                    sequence:N1,N2,...  the i-th signature gets Ni (index kept in the counter
//                    file), the last value repeats
//   counter_file=P   state of increment/sequence: the number of signatures they made so far
//                    (default: the control file's path + ".counter"; relative to its directory)
//   corrupt=1        flip one bit of the signature (flags and counter stay as reported)
//   delay_ms=N       sleep N ms before answering (a slow or absent touch); at most 600000.
//                    ssh-agent waits for its helper: meanwhile it answers no other request
//   fail=1           sk_sign fails (SSH_SK_ERR_GENERAL); an agent then answers FAILURE
//   log=P            append one line per signature, e.g.
//                    "sign alg=ecdsa application=ssh: flags=0x01 counter=3 result=ok"
//                    (result=ok, corrupt, fail, or error (why))
// Any error in the control file (unknown key, bad value, unreadable file) fails the signature
// and is reported on stderr. Without TG_TEST_SK_CONTROL: flags 0x01 and a fixed counter of 1.
// Enrolment is not controlled: it always succeeds, with an empty attestation.
//
// Key handle: "TGSK" || alg (1 byte) || SHA256(application) || private key (DER). A handle made
// for another application or algorithm, or by another provider, is refused.
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

// The SecurityKeyProvider ABI as OpenSSH 9.2 loads it (API 0x000a0000).
extern "C" {

struct sk_enroll_response {
  uint8_t flags;
  uint8_t* public_key;
  size_t public_key_len;
  uint8_t* key_handle;
  size_t key_handle_len;
  uint8_t* signature;
  size_t signature_len;
  uint8_t* attestation_cert;
  size_t attestation_cert_len;
  uint8_t* authdata;
  size_t authdata_len;
};

struct sk_sign_response {
  uint8_t flags;
  uint32_t counter;
  uint8_t* sig_r;
  size_t sig_r_len;
  uint8_t* sig_s;
  size_t sig_s_len;
};

struct sk_resident_key {
  uint32_t alg;
  size_t slot;
  char* application;
  sk_enroll_response key;
  uint8_t flags;
  uint8_t* user_id;
  size_t user_id_len;
};

struct sk_option {
  char* name;
  char* value;
  uint8_t required;
};

#define TG_SK_EXPORT __attribute__((visibility("default")))

TG_SK_EXPORT uint32_t sk_api_version(void);
TG_SK_EXPORT int sk_enroll(uint32_t alg, const uint8_t* challenge, size_t challenge_len,
                           const char* application, uint8_t flags, const char* pin,
                           sk_option** options, sk_enroll_response** enroll_response);
TG_SK_EXPORT int sk_sign(uint32_t alg, const uint8_t* data, size_t data_len,
                         const char* application, const uint8_t* key_handle, size_t key_handle_len,
                         uint8_t flags, const char* pin, sk_option** options,
                         sk_sign_response** sign_response);
TG_SK_EXPORT int sk_load_resident_keys(const char* pin, sk_option** options, sk_resident_key*** rks,
                                       size_t* nrks);

}  // extern "C"

namespace {

constexpr uint32_t kApiVersion = 0x000a0000;
constexpr uint32_t kAlgEcdsa = 0x00;    // SSH_SK_ECDSA
constexpr uint32_t kAlgEd25519 = 0x01;  // SSH_SK_ED25519
constexpr int kErrGeneral = -1;         // SSH_SK_ERR_GENERAL
constexpr int kErrUnsupported = -2;     // SSH_SK_ERR_UNSUPPORTED

constexpr std::string_view kHandleMagic = "TGSK";
constexpr size_t kSha256Len = 32;
constexpr uint32_t kMaxDelayMs = 600000;
constexpr size_t kMaxControlBytes = 64 * 1024;

using Digest = std::array<uint8_t, kSha256Len>;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A failure with a message for stderr and the log.
struct Failure {
  std::string message;
};

void report(const std::string& message) {
  // stdout is ssh-sk-helper's channel to its parent: never write there.
  std::fprintf(stderr, "tg-test-sk: %s\n", message.c_str());
}

std::optional<Digest> sha256(std::span<const uint8_t> data) {
  Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size())
    return std::nullopt;
  return out;
}

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A malloc'd copy: OpenSSH releases every buffer of a response with free(). Never NULL on
// success, also for an empty input.
uint8_t* malloc_copy(std::span<const uint8_t> bytes) {
  auto* out = static_cast<uint8_t*>(std::malloc(bytes.empty() ? 1 : bytes.size()));
  if (out != nullptr && !bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  return out;
}

// --- Control file ---------------------------------------------------------------------------

enum class CounterMode { kIncrement, kFixed, kSequence };

struct Control {
  uint8_t flags = 0x01;
  CounterMode counter_mode = CounterMode::kIncrement;
  uint32_t fixed_counter = 1;
  std::vector<uint32_t> sequence;
  std::string counter_file;
  bool corrupt = false;
  uint32_t delay_ms = 0;
  bool fail = false;
  std::string log_file;
};

std::string_view trim(std::string_view s) {
  const auto* ws = " \t\r";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Decimal, or hexadecimal with a 0x prefix; nothing else, no sign, no trailing bytes.
std::optional<uint64_t> parse_number(std::string_view s, uint64_t max) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) return std::nullopt;
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec != std::errc() || end != s.data() + s.size() || value > max) return std::nullopt;
  return value;
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "1" || s == "yes" || s == "true") return true;
  if (s == "0" || s == "no" || s == "false") return false;
  return std::nullopt;
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/') return path;
  return base_dir + "/" + path;
}

// Applies one `key=value` line to `c`; an error message on failure.
std::optional<std::string> apply_setting(Control& c, std::string_view key, std::string_view value,
                                         const std::string& base_dir) {
  if (key == "flags") {
    const auto v = parse_number(value, 0xff);
    if (!v) return "flags: expected a number 0..255";
    c.flags = static_cast<uint8_t>(*v);
  } else if (key == "counter") {
    if (value == "increment") {
      c.counter_mode = CounterMode::kIncrement;
    } else if (value.starts_with("fixed:")) {
      const auto v = parse_number(value.substr(6), UINT32_MAX);
      if (!v) return "counter: fixed:N needs N in 0..4294967295";
      c.counter_mode = CounterMode::kFixed;
      c.fixed_counter = static_cast<uint32_t>(*v);
    } else if (value.starts_with("sequence:")) {
      std::vector<uint32_t> seq;
      std::string_view rest = value.substr(9);
      while (true) {
        const size_t comma = rest.find(',');
        const auto v = parse_number(trim(rest.substr(0, comma)), UINT32_MAX);
        if (!v) return "counter: sequence:N1,N2,... needs numbers in 0..4294967295";
        seq.push_back(static_cast<uint32_t>(*v));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      c.counter_mode = CounterMode::kSequence;
      c.sequence = std::move(seq);
    } else {
      return "counter: expected increment, fixed:N or sequence:N1,N2,...";
    }
  } else if (key == "counter_file") {
    if (value.empty()) return "counter_file: empty path";
    c.counter_file = resolve(std::string(value), base_dir);
  } else if (key == "corrupt" || key == "fail") {
    const auto v = parse_bool(value);
    if (!v) return std::string(key) + ": expected 0 or 1";
    (key == "corrupt" ? c.corrupt : c.fail) = *v;
  } else if (key == "delay_ms") {
    const auto v = parse_number(value, kMaxDelayMs);
    if (!v) return "delay_ms: expected a number 0..600000";
    c.delay_ms = static_cast<uint32_t>(*v);
  } else if (key == "log") {
    if (value.empty()) return "log: empty path";
    c.log_file = resolve(std::string(value), base_dir);
  } else {
    return "unknown key '" + std::string(key) + "'";
  }
  return std::nullopt;
}

// The settings for this signature: defaults without TG_TEST_SK_CONTROL, else the file's.
std::optional<Control> load_control(Failure& failure) {
  Control c;
  const char* env = std::getenv("TG_TEST_SK_CONTROL");
  if (env == nullptr || *env == '\0') {
    c.counter_mode = CounterMode::kFixed;
    return c;
  }
  const std::string path = env;
  const std::string base_dir = directory_of(path);
  c.counter_file = path + ".counter";

  std::ifstream in(path, std::ios::binary);
  if (!in) {
    failure.message = "cannot read control file " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text(kMaxControlBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxControlBytes) {
    failure.message = "control file " + path + " is larger than 64 KiB";
    return std::nullopt;
  }

  std::string_view rest = text;
  for (int line_no = 1; !rest.empty(); ++line_no) {
    const size_t nl = rest.find('\n');
    const std::string_view line = trim(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    std::optional<std::string> error;
    if (eq == std::string_view::npos)
      error = "expected key=value";
    else
      error = apply_setting(c, trim(line.substr(0, eq)), trim(line.substr(eq + 1)), base_dir);
    if (error) {
      failure.message = path + ":" + std::to_string(line_no) + ": " + *error;
      return std::nullopt;
    }
  }
  return c;
}

// Takes the next value of the counter file under an exclusive lock: the number of signatures
// made before this one.
std::optional<uint64_t> take_signature_index(const std::string& file, Failure& failure) {
  Fd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0 || ::flock(fd.get(), LOCK_EX) != 0) {
    failure.message = "counter file " + file + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::array<char, 32> buf{};
  const ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), 0);
  if (n < 0) {
    failure.message = "counter file " + file + ": " + std::strerror(errno);
    return std::nullopt;
  }
  uint64_t done = 0;
  const std::string_view text = trim(std::string_view(buf.data(), static_cast<size_t>(n)));
  const std::string_view digits = text.substr(0, text.find('\n'));
  if (!digits.empty()) {
    const auto v = parse_number(digits, UINT32_MAX);
    if (!v) {
      failure.message = "counter file " + file + ": not a number";
      return std::nullopt;
    }
    done = *v;
  }
  if (done >= UINT32_MAX) {
    failure.message = "counter file " + file + ": counter exhausted";
    return std::nullopt;
  }
  const std::string next = std::to_string(done + 1) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), next.data(), next.size(), 0) != static_cast<ssize_t>(next.size())) {
    failure.message = "counter file " + file + ": " + std::strerror(errno);
    return std::nullopt;
  }
  return done;  // the lock goes with the descriptor
}

std::optional<uint32_t> next_counter(const Control& c, Failure& failure) {
  if (c.counter_mode == CounterMode::kFixed) return c.fixed_counter;
  const auto index = take_signature_index(c.counter_file, failure);
  if (!index) return std::nullopt;
  if (c.counter_mode == CounterMode::kIncrement) return static_cast<uint32_t>(*index + 1);
  const size_t i = std::min<uint64_t>(*index, c.sequence.size() - 1);
  return c.sequence[i];
}

void append_log(const Control& c, const std::string& line) {
  if (c.log_file.empty()) return;
  Fd fd(::open(c.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  const std::string text = line + "\n";
  if (fd.get() < 0 ||
      ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    report("cannot append to log " + c.log_file);
}

// --- Keys -----------------------------------------------------------------------------------

const char* alg_name(uint32_t alg) {
  return alg == kAlgEcdsa ? "ecdsa" : "ed25519";
}

PkeyPtr generate_key(uint32_t alg) {
  if (alg == kAlgEcdsa) return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
}

// The public key as OpenSSH expects it: the uncompressed P-256 point, or the 32 Ed25519 bytes.
std::optional<std::vector<uint8_t>> public_key_bytes(EVP_PKEY* key, uint32_t alg) {
  std::vector<uint8_t> out(alg == kAlgEcdsa ? 65 : 32);
  size_t len = 0;
  if (alg == kAlgEcdsa) {
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, out.data(), out.size(),
                                        &len) != 1 ||
        len != 65 || out[0] != 0x04)
      return std::nullopt;
  } else {
    len = out.size();
    if (EVP_PKEY_get_raw_public_key(key, out.data(), &len) != 1 || len != 32) return std::nullopt;
  }
  return out;
}

std::optional<std::vector<uint8_t>> encode_handle(EVP_PKEY* key, uint32_t alg,
                                                  const Digest& app_hash) {
  unsigned char* der = nullptr;
  const int der_len = i2d_PrivateKey(key, &der);
  if (der_len <= 0) return std::nullopt;
  // Sized once, then filled (g++ 12 misreads a vector grown step by step: -Warray-bounds).
  std::vector<uint8_t> handle(kHandleMagic.size() + 1 + app_hash.size() +
                              static_cast<size_t>(der_len));
  auto at = std::copy(kHandleMagic.begin(), kHandleMagic.end(), handle.begin());
  *at++ = static_cast<uint8_t>(alg);
  at = std::copy(app_hash.begin(), app_hash.end(), at);
  std::copy(der, der + der_len, at);
  OPENSSL_clear_free(der, static_cast<size_t>(der_len));
  return handle;
}

PkeyPtr decode_handle(std::span<const uint8_t> handle, uint32_t alg, const Digest& app_hash,
                      Failure& failure) {
  const size_t header = kHandleMagic.size() + 1 + kSha256Len;
  if (handle.size() <= header ||
      !std::equal(kHandleMagic.begin(), kHandleMagic.end(), handle.begin())) {
    failure.message = "key handle was not made by this authenticator";
    return nullptr;
  }
  if (handle[kHandleMagic.size()] != alg) {
    failure.message = "key handle is for another algorithm";
    return nullptr;
  }
  if (!std::equal(app_hash.begin(), app_hash.end(), handle.begin() + kHandleMagic.size() + 1)) {
    failure.message = "key handle is for another application";
    return nullptr;
  }
  const auto der = handle.subspan(header);
  const unsigned char* p = der.data();
  PkeyPtr key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
  const int want = alg == kAlgEcdsa ? EVP_PKEY_EC : EVP_PKEY_ED25519;
  if (!key || p != der.data() + der.size() || EVP_PKEY_get_base_id(key.get()) != want) {
    failure.message = "key handle holds no usable private key";
    return nullptr;
  }
  return key;
}

// --- Signing --------------------------------------------------------------------------------

// authenticatorData || clientDataHash: SHA256(application) || flags || counter (big-endian)
// || SHA256(data), the bytes a FIDO2 authenticator signs.
std::vector<uint8_t> signed_bytes(const Digest& app_hash, uint8_t flags, uint32_t counter,
                                  const Digest& data_hash) {
  // Sized once, then filled (as encode_handle).
  std::vector<uint8_t> out(app_hash.size() + 1 + 4 + data_hash.size());
  std::copy(app_hash.begin(), app_hash.end(), out.begin());
  size_t at = app_hash.size();
  out[at++] = flags;
  for (int shift = 24; shift >= 0; shift -= 8) out[at++] = static_cast<uint8_t>(counter >> shift);
  std::copy(data_hash.begin(), data_hash.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
  return out;
}

std::optional<std::vector<uint8_t>> evp_sign(EVP_PKEY* key, const EVP_MD* md,
                                             std::span<const uint8_t> tbs) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, tbs.data(), tbs.size()) != 1)
    return std::nullopt;
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, tbs.data(), tbs.size()) != 1) return std::nullopt;
  sig.resize(len);
  return sig;
}

std::vector<uint8_t> bn_bytes(const BIGNUM* bn) {
  std::vector<uint8_t> out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  return out;
}

// Fills r (and s for ECDSA) of `response`; with `corrupt`, one bit of the signature is flipped.
bool sign_into(EVP_PKEY* key, uint32_t alg, std::span<const uint8_t> tbs, bool corrupt,
               sk_sign_response* response) {
  std::vector<uint8_t> r, s;
  if (alg == kAlgEcdsa) {
    const auto der = evp_sign(key, EVP_sha256(), tbs);
    if (!der) return false;
    const unsigned char* p = der->data();
    EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der->size())));
    if (!sig) return false;
    r = bn_bytes(ECDSA_SIG_get0_r(sig.get()));
    s = bn_bytes(ECDSA_SIG_get0_s(sig.get()));
    if (s.empty()) return false;
    if (corrupt) s.back() ^= 0x01;
  } else {
    const auto raw = evp_sign(key, nullptr, tbs);
    if (!raw || raw->size() != 64) return false;
    r = *raw;
    if (corrupt) r[0] ^= 0x01;
  }
  response->sig_r = malloc_copy(r);
  response->sig_r_len = r.size();
  if (alg == kAlgEcdsa) {
    response->sig_s = malloc_copy(s);
    response->sig_s_len = s.size();
  }
  return response->sig_r != nullptr && (alg != kAlgEcdsa || response->sig_s != nullptr);
}

void free_sign_response(sk_sign_response* r) {
  if (r == nullptr) return;
  std::free(r->sig_r);
  std::free(r->sig_s);
  std::free(r);
}

void free_enroll_response(sk_enroll_response* r) {
  if (r == nullptr) return;
  if (r->key_handle != nullptr) OPENSSL_cleanse(r->key_handle, r->key_handle_len);
  std::free(r->public_key);
  std::free(r->key_handle);
  std::free(r->signature);
  std::free(r->attestation_cert);
  std::free(r->authdata);
  std::free(r);
}

// Unknown options are ignored unless the caller marked them required.
bool options_acceptable(sk_option** options) {
  for (size_t i = 0; options != nullptr && options[i] != nullptr; ++i)
    if (options[i]->required) return false;
  return true;
}

int enroll(uint32_t alg, const char* application, uint8_t flags, sk_option** options,
           sk_enroll_response** out) {
  if (out == nullptr) return kErrGeneral;
  *out = nullptr;
  if (alg != kAlgEcdsa && alg != kAlgEd25519) return kErrUnsupported;
  if (application == nullptr || !options_acceptable(options)) return kErrGeneral;
  const auto app_hash = sha256(as_bytes(application));
  PkeyPtr key = generate_key(alg);
  if (!app_hash || !key) return kErrGeneral;
  const auto pub = public_key_bytes(key.get(), alg);
  const auto handle = encode_handle(key.get(), alg, *app_hash);
  if (!pub || !handle) return kErrGeneral;

  auto* response = static_cast<sk_enroll_response*>(std::calloc(1, sizeof(sk_enroll_response)));
  if (response == nullptr) return kErrGeneral;
  response->flags = flags;
  response->public_key = malloc_copy(*pub);
  response->public_key_len = pub->size();
  response->key_handle = malloc_copy(*handle);
  response->key_handle_len = handle->size();
  // No attestation: empty but present, as OpenSSH serialises them unconditionally.
  response->signature = malloc_copy({});
  response->attestation_cert = malloc_copy({});
  response->authdata = malloc_copy({});
  if (response->public_key == nullptr || response->key_handle == nullptr ||
      response->signature == nullptr || response->attestation_cert == nullptr ||
      response->authdata == nullptr) {
    free_enroll_response(response);
    return kErrGeneral;
  }
  *out = response;
  return 0;
}

int sign(uint32_t alg, std::span<const uint8_t> data, const char* application,
         std::span<const uint8_t> handle, sk_option** options, sk_sign_response** out) {
  if (out == nullptr) return kErrGeneral;
  *out = nullptr;
  if (alg != kAlgEcdsa && alg != kAlgEd25519) return kErrUnsupported;
  if (application == nullptr || !options_acceptable(options)) return kErrGeneral;

  Failure failure;
  const auto control = load_control(failure);
  if (!control) {
    report(failure.message);
    return kErrGeneral;
  }
  const std::string what = std::string("sign alg=") + alg_name(alg) + " application=" + application;
  if (control->delay_ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(control->delay_ms));
  if (control->fail) {
    append_log(*control, what + " result=fail");
    return kErrGeneral;
  }

  const auto app_hash = sha256(as_bytes(application));
  // OpenSSH passes the message itself; the authenticator signs its hash (clientDataHash).
  const auto data_hash = sha256(data);
  if (!app_hash || !data_hash) return kErrGeneral;
  PkeyPtr key = decode_handle(handle, alg, *app_hash, failure);
  const auto counter = key ? next_counter(*control, failure) : std::nullopt;
  if (!key || !counter) {
    report(failure.message);
    append_log(*control, what + " result=error (" + failure.message + ")");
    return kErrGeneral;
  }

  auto* response = static_cast<sk_sign_response*>(std::calloc(1, sizeof(sk_sign_response)));
  if (response == nullptr) return kErrGeneral;
  response->flags = control->flags;
  response->counter = *counter;
  const auto tbs = signed_bytes(*app_hash, control->flags, *counter, *data_hash);
  if (!sign_into(key.get(), alg, tbs, control->corrupt, response)) {
    free_sign_response(response);
    report("signing failed");
    append_log(*control, what + " result=error (signing failed)");
    return kErrGeneral;
  }
  char flags_hex[8];
  std::snprintf(flags_hex, sizeof(flags_hex), "0x%02x", control->flags);
  append_log(*control, what + " flags=" + flags_hex + " counter=" + std::to_string(*counter) +
                           (control->corrupt ? " result=corrupt" : " result=ok"));
  *out = response;
  return 0;
}

}  // namespace

extern "C" {

uint32_t sk_api_version(void) {
  return kApiVersion;
}

int sk_enroll(uint32_t alg, const uint8_t* /*challenge*/, size_t /*challenge_len*/,
              const char* application, uint8_t flags, const char* /*pin*/, sk_option** options,
              sk_enroll_response** enroll_response) {
  try {
    return enroll(alg, application, flags, options, enroll_response);
  } catch (...) {
    return kErrGeneral;
  }
}

int sk_sign(uint32_t alg, const uint8_t* data, size_t data_len, const char* application,
            const uint8_t* key_handle, size_t key_handle_len, uint8_t /*flags*/,
            const char* /*pin*/, sk_option** options, sk_sign_response** sign_response) {
  try {
    if ((data == nullptr && data_len != 0) || key_handle == nullptr) return kErrGeneral;
    return sign(alg, {data, data_len}, application, {key_handle, key_handle_len}, options,
                sign_response);
  } catch (...) {
    return kErrGeneral;
  }
}

int sk_load_resident_keys(const char* /*pin*/, sk_option** /*options*/, sk_resident_key*** rks,
                          size_t* nrks) {
  if (rks != nullptr) *rks = nullptr;
  if (nrks != nullptr) *nrks = 0;
  return kErrUnsupported;  // no resident (discoverable) credentials
}

}  // extern "C"
