// Trust boundary: parses public key blobs and key lines supplied by peers and by admins.
#include "ssh/key.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <memory>

#include "ssh/digest.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

struct KeyTypeInfo {
  KeyType type;
  std::string_view name;
  std::string_view cert_name;
};

constexpr std::array<KeyTypeInfo, 7> kKeyTypes = {{
    {KeyType::kEd25519, "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"},
    {KeyType::kEcdsaP256, "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com"},
    {KeyType::kEcdsaP384, "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384-cert-v01@openssh.com"},
    {KeyType::kEcdsaP521, "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com"},
    {KeyType::kRsa, "ssh-rsa", "ssh-rsa-cert-v01@openssh.com"},
    {KeyType::kSkEcdsaP256, "sk-ecdsa-sha2-nistp256@openssh.com",
     "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"},
    {KeyType::kSkEd25519, "sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com"},
}};

constexpr size_t kEd25519KeySize = 32;
constexpr size_t kMaxApplication = 1024;
constexpr size_t kMinRsaBits = 2048;
constexpr size_t kMaxRsaBits = 16384;
constexpr size_t kMaxKeyLine = 64 * 1024;

struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

// curve_of returns the SSH curve identifier, OpenSSL group name and uncompressed point size.
struct Curve {
  std::string_view ssh_name;
  const char* group;
  size_t point_size;
};

bool curve_of(KeyType type, Curve* out) {
  switch (type) {
    case KeyType::kEcdsaP256:
    case KeyType::kSkEcdsaP256:
      *out = {"nistp256", "prime256v1", 65};
      return true;
    case KeyType::kEcdsaP384:
      *out = {"nistp384", "secp384r1", 97};
      return true;
    case KeyType::kEcdsaP521:
      *out = {"nistp521", "secp521r1", 133};
      return true;
    default:
      return false;
  }
}

// ec_point_valid asks OpenSSL to import the point on the named curve (which refuses points off the
// curve) and then runs the full public key check (range, not infinity, order).
bool ec_point_valid(const char* group, Bytes point) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return false;
  std::array<OSSL_PARAM, 3> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end(),
  };
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.data()) != 1) return false;
  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey(raw);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  return check && EVP_PKEY_public_check(check.get()) == 1;
}

size_t bit_length(Bytes magnitude) {
  if (magnitude.empty()) return 0;
  size_t bits = (magnitude.size() - 1) * 8;
  for (uint8_t top = magnitude[0]; top != 0; top >>= 1) ++bits;
  return bits;
}

std::vector<uint8_t> encode_key(const PublicKey& k) {
  Writer w;
  w.string(key_type_name(k.type));
  Curve curve;
  switch (k.type) {
    case KeyType::kEd25519:
      w.string(std::span<const uint8_t>(k.ed25519));
      break;
    case KeyType::kSkEd25519:
      w.string(std::span<const uint8_t>(k.ed25519)).string(k.application);
      break;
    case KeyType::kEcdsaP256:
    case KeyType::kEcdsaP384:
    case KeyType::kEcdsaP521:
      curve_of(k.type, &curve);
      w.string(curve.ssh_name).string(std::span<const uint8_t>(k.ecdsa_point));
      break;
    case KeyType::kSkEcdsaP256:
      curve_of(k.type, &curve);
      w.string(curve.ssh_name)
          .string(std::span<const uint8_t>(k.ecdsa_point))
          .string(k.application);
      break;
    case KeyType::kRsa:
      w.mpint(k.rsa_e).mpint(k.rsa_n);
      break;
  }
  return w.take();
}

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_space(s.front()) || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string_view key_type_name(KeyType type) {
  for (const auto& info : kKeyTypes)
    if (info.type == type) return info.name;
  return "unknown";
}

std::string_view cert_type_name(KeyType type) {
  for (const auto& info : kKeyTypes)
    if (info.type == type) return info.cert_name;
  return "unknown";
}

bool is_security_key(KeyType type) {
  return type == KeyType::kSkEcdsaP256 || type == KeyType::kSkEd25519;
}

bool key_type_from_name(std::string_view name, KeyType* out) {
  for (const auto& info : kKeyTypes) {
    if (info.name == name) {
      *out = info.type;
      return true;
    }
  }
  return false;
}

bool key_type_from_cert_name(std::string_view name, KeyType* out) {
  for (const auto& info : kKeyTypes) {
    if (info.cert_name == name) {
      *out = info.type;
      return true;
    }
  }
  return false;
}

std::string PublicKey::fingerprint() const {
  return fingerprint_sha256(blob);
}

Result<PublicKey> parse_public_key_fields(KeyType type, Reader& r) {
  PublicKey k;
  k.type = type;
  const std::string_view name = key_type_name(type);
  auto malformed = [&](std::string_view what) {
    return fail("key_malformed", std::string(name) + " public key has " + std::string(what));
  };
  switch (type) {
    case KeyType::kEd25519:
    case KeyType::kSkEd25519: {
      Bytes pk;
      if (!r.string(&pk, kEd25519KeySize) || pk.size() != kEd25519KeySize) {
        return malformed("a malformed ed25519 key");
      }
      k.ed25519.assign(pk.begin(), pk.end());
      break;
    }
    case KeyType::kEcdsaP256:
    case KeyType::kEcdsaP384:
    case KeyType::kEcdsaP521:
    case KeyType::kSkEcdsaP256: {
      Curve curve;
      curve_of(type, &curve);
      std::string_view curve_name;
      Bytes point;
      if (!r.text(&curve_name, 64)) return malformed("an unreadable curve name");
      if (curve_name != curve.ssh_name)
        return malformed("a curve name that does not match its type");
      if (!r.string(&point, curve.point_size)) return malformed("an unreadable curve point");
      if (point.size() != curve.point_size || point[0] != 0x04) {
        return malformed("a curve point that is not in uncompressed form");
      }
      if (!ec_point_valid(curve.group, point)) return malformed("a point that is not on the curve");
      k.ecdsa_point.assign(point.begin(), point.end());
      break;
    }
    case KeyType::kRsa: {
      Bytes e;
      Bytes n;
      if (!r.mpint(&e) || !r.mpint(&n)) return malformed("a malformed exponent or modulus");
      if (e.empty() || (e.back() & 1) == 0 || bit_length(e) < 2 || e.size() > 8) {
        return malformed("an invalid public exponent");
      }
      const size_t bits = bit_length(n);
      if (bits < kMinRsaBits || bits > kMaxRsaBits) {
        return fail("key_unsupported", "RSA key of " + std::to_string(bits) +
                                           " bits is outside the supported 2048..16384 bits");
      }
      if ((n.back() & 1) == 0) return malformed("an even modulus");
      k.rsa_e.assign(e.begin(), e.end());
      k.rsa_n.assign(n.begin(), n.end());
      break;
    }
  }
  if (is_security_key(type)) {
    if (!r.text_copy(&k.application, kMaxApplication)) return malformed("a malformed application");
  }
  k.blob = encode_key(k);
  return k;
}

Result<PublicKey> parse_public_key(Bytes blob) {
  Reader r(blob);
  std::string_view name;
  if (!r.text(&name, 256)) return fail("key_malformed", "public key blob has no readable type");
  KeyType type;
  if (!key_type_from_name(name, &type)) {
    KeyType unused;
    if (key_type_from_cert_name(name, &unused)) {
      return fail("key_unsupported",
                  "a certificate was given where a plain public key is required");
    }
    return fail("key_unsupported", "unsupported public key type");
  }
  auto key = parse_public_key_fields(type, r);
  if (!key) return key;
  if (!r.finish()) return fail("key_malformed", "public key blob has trailing bytes");
  return key;
}

Result<KeyLine> parse_key_line(std::string_view line) {
  auto malformed = [](std::string message) {
    return fail("key_line_malformed", std::move(message));
  };
  if (line.size() > kMaxKeyLine) return malformed("key line is too long");
  line = trim(line);
  if (line.empty() || line.front() == '#') return malformed("key line is empty or a comment");
  size_t sp = 0;
  while (sp < line.size() && !is_space(line[sp])) ++sp;
  KeyLine out;
  out.type.assign(line.substr(0, sp));
  std::string_view rest = line.substr(sp);
  while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
  size_t end = 0;
  while (end < rest.size() && !is_space(rest[end])) ++end;
  std::string_view b64 = rest.substr(0, end);
  rest.remove_prefix(end);
  out.comment.assign(trim(rest));
  if (b64.empty()) return malformed("key line has no base64 key");
  auto blob = base64_decode(b64);
  if (!blob) return malformed("key line has invalid base64");
  out.blob = std::move(*blob);

  Reader r(out.blob);
  std::string_view inner;
  if (!r.text(&inner, 256)) return malformed("key blob has no readable type");
  if (inner != out.type) {
    return malformed("key type " + out.type + " on the line does not match the key inside");
  }
  KeyType type;
  if (!key_type_from_name(out.type, &type) && !key_type_from_cert_name(out.type, &type)) {
    return malformed("unsupported key type " + out.type);
  }
  return out;
}

std::string format_key_line(Bytes blob) {
  Reader r(blob);
  std::string_view name;
  if (!r.text(&name, 256)) return {};
  return std::string(name) + " " + base64_encode(blob);
}

}  // namespace touchgate::ssh
