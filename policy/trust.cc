// Loads the certificate trust set from disk (trust boundary: admin-supplied files, parsed as
// untrusted bytes by ssh/; any malformation refuses the whole set).
#include "policy/trust.h"

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "policy/file.h"
#include "ssh/key.h"
#include "ssh/krl.h"

namespace touchgate::policy {
namespace {

constexpr const char* kTrustCode = "trust_invalid";
constexpr const char* kRevokedCode = "revoked_keys_invalid";
constexpr size_t kMaxCaFileSize = 1u << 20;
// A text revoked-keys file of kMaxRevocationEntries RSA keys stays below this.
constexpr size_t kMaxRevokedFileSize = 512u << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// load_ca_file appends the keys of one CA file to `out` (named "<name>" or "<name>#<n>").
Result<void> load_ca_file(const TrustConfig::CaFile& file, std::vector<ssh::TrustedCa>* out) {
  const std::string path = file.path.string();
  auto data = read_file(file.path, kMaxCaFileSize, kTrustCode);
  if (!data) return tl::unexpected(data.error());
  std::string_view text(reinterpret_cast<const char*>(data->data()), data->size());

  std::vector<ssh::PublicKey> keys;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;

    auto parsed = ssh::parse_key_line(line);
    if (!parsed) {
      return fail(kTrustCode, fmt::format("{}:{}: {}", path, line_number, parsed.error().message));
    }
    ssh::KeyType type;
    if (ssh::key_type_from_cert_name(parsed->type, &type)) {
      return fail(kTrustCode,
                  fmt::format("{}:{}: a certificate ({}) cannot be a CA key; use the CA's "
                              "public key",
                              path, line_number, parsed->type));
    }
    auto key = ssh::parse_public_key(parsed->blob);
    if (!key) {
      return fail(kTrustCode, fmt::format("{}:{}: {}", path, line_number, key.error().message));
    }
    if (key->type == ssh::KeyType::kSkEcdsaP256 || key->type == ssh::KeyType::kSkEd25519) {
      // Certificates signed by a security key carry sk signatures, which the CA check does not
      // accept: every one of them would be refused. Said here, once, instead.
      return fail(kTrustCode,
                  fmt::format("{}:{}: a security-key CA key ({}) is not supported; use an "
                              "ed25519, ecdsa or rsa CA key",
                              path, line_number, key->type_name()));
    }
    keys.push_back(std::move(*key));
  }
  if (keys.empty()) return fail(kTrustCode, fmt::format("{}: no CA key in file", path));

  for (size_t i = 0; i < keys.size(); ++i) {
    ssh::TrustedCa ca;
    ca.name = keys.size() == 1 ? file.name : fmt::format("{}#{}", file.name, i + 1);
    ca.key = std::move(keys[i]);
    out->push_back(std::move(ca));
  }
  return {};
}

}  // namespace

Result<ssh::TrustPolicy> load_trust(const TrustConfig& trust) {
  ssh::TrustPolicy policy;
  if (trust.user_ca_keys.empty()) return fail(kTrustCode, "no user_ca_keys configured");
  // Errors name the configuration entry first (where to fix it), then the file and line.
  auto located = [](const std::string& origin, const char* key, Error e) {
    if (!origin.empty()) e.message = fmt::format("{}: {}: {}", origin, key, e.message);
    return tl::unexpected<Error>(std::move(e));
  };
  for (const TrustConfig::CaFile& file : trust.user_ca_keys) {
    if (auto r = load_ca_file(file, &policy.cas); !r) {
      return located(file.origin, "user_ca_keys", r.error());
    }
  }
  if (trust.revoked_keys) {
    auto data = read_file(*trust.revoked_keys, kMaxRevokedFileSize, kRevokedCode);
    if (!data) return located(trust.revoked_keys_origin, "revoked_keys", data.error());
    auto list = ssh::RevocationList::parse(*data);
    if (!list) {
      return located(trust.revoked_keys_origin, "revoked_keys",
                     Error{kRevokedCode, fmt::format("{}: {}", trust.revoked_keys->string(),
                                                     list.error().message)});
    }
    policy.revoked = std::make_shared<const ssh::RevocationList>(std::move(*list));
  }
  policy.max_lifetime_seconds = static_cast<uint64_t>(trust.max_cert_lifetime.count());
  policy.clock_skew_seconds = static_cast<uint64_t>(trust.clock_skew.count());
  policy.allow_ssh_rsa_sha1 = trust.allow_ssh_rsa_sha1;
  policy.permit_force_command = trust.permit_force_command;
  return policy;
}

}  // namespace touchgate::policy
