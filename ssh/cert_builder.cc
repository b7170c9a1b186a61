#include "ssh/cert_builder.h"

#include <algorithm>
#include <array>

#include "ssh/certificate.h"
#include "ssh/digest.h"
#include "ssh/key.h"
#include "ssh/reader.h"
#include "ssh/signature.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

// The limits parse_certificate enforces (certificate.cc), so that what is built also parses.
constexpr size_t kMaxPrincipals = 256;
constexpr size_t kMaxName = 1024;
constexpr size_t kMaxOptions = 64;

constexpr std::array<std::string_view, 7> kFlagNames = {
    kOptVerifyRequired,        kExtNoTouchRequired,      kExtPermitX11Forwarding,
    kExtPermitAgentForwarding, kExtPermitPortForwarding, kExtPermitPty,
    kExtPermitUserRc,
};
constexpr std::array<std::string_view, 2> kStringNames = {kOptForceCommand, kOptSourceAddress};
constexpr std::array<std::string_view, 3> kCriticalNames = {kOptForceCommand, kOptSourceAddress,
                                                            kOptVerifyRequired};

template <size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

tl::unexpected<Error> invalid(std::string message) {
  return fail("cert_build_invalid", "certificate request " + message);
}

bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

// check_text refuses what the parser's text fields refuse: NUL bytes and over-long strings.
Result<void> check_text(std::string_view s, std::string_view what, size_t max = kMaxName) {
  if (has_nul(s)) return invalid("has a NUL byte in " + std::string(what));
  if (s.size() > max) return invalid("has an over-long " + std::string(what));
  return {};
}

using Options = std::vector<std::pair<std::string, std::string>>;

// encode_options returns the critical_options or extensions section: (string name, string data)
// sorted by name, data empty for a flag and one string holding the value otherwise.
Result<std::vector<uint8_t>> encode_options(const Options& options, bool critical) {
  const std::string what = critical ? "critical option" : "extension";
  if (options.size() > kMaxOptions) return invalid("has too many " + what + "s");
  std::vector<const std::pair<std::string, std::string>*> sorted;
  for (const auto& opt : options) {
    const auto& [name, value] = opt;
    if (name.empty()) return invalid("has an " + what + " without a name");
    if (auto r = check_text(name, what + " name"); !r) return tl::unexpected(r.error());
    if (has_nul(value)) return invalid("has a NUL byte in " + what + " " + name);
    if (critical && !contains(kCriticalNames, name)) {
      return invalid("has critical option " + name + ", which sshd does not know");
    }
    if (contains(kFlagNames, name) && !value.empty()) {
      return invalid("gives flag " + name + " a value");
    }
    if (contains(kStringNames, name) && value.empty()) {
      return invalid("gives " + what + " " + name + " no value");
    }
    sorted.push_back(&opt);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  Writer w;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& [name, value] = *sorted[i];
    if (i > 0 && sorted[i - 1]->first == name) return invalid("repeats " + what + " " + name);
    w.string(name);
    if (value.empty()) {
      w.string(std::string_view());
    } else {
      w.string(Writer().string(value).bytes());
    }
  }
  if (w.bytes().size() > kMaxString) return invalid("has over-long " + what + "s");
  return w.take();
}

// check_signature accepts only a signature by the CA key with one of its own algorithms.
Result<void> check_signature(const PublicKey& ca, Bytes signature, Bytes data) {
  auto ok = verify_signature(ca, signature, data);
  if (ok) return {};
  const std::string& code = ok.error().code;
  if (code == "sig_algorithm_mismatch" || code == "sig_sha1_refused") {
    return fail("cert_build_signature_mismatch",
                "CA signature algorithm " + signature_algorithm(signature) +
                    " does not belong to the CA key " + std::string(ca.type_name()));
  }
  return fail("cert_build_bad_signature",
              "CA signature does not verify with the CA key (" + ok.error().message + ")");
}

}  // namespace

Result<std::vector<uint8_t>> build_user_certificate(const CertRequest& req, Signer& ca,
                                                    std::span<const uint8_t> nonce) {
  if (nonce.size() != kCertNonceSize) return invalid("has a nonce that is not 32 bytes");
  if (req.principals.empty()) return invalid("has no principals");
  if (req.principals.size() > kMaxPrincipals) return invalid("has too many principals");
  if (req.valid_after >= req.valid_before) return invalid("has valid_after >= valid_before");
  if (auto r = check_text(req.key_id, "key id"); !r) return tl::unexpected(r.error());

  auto key = parse_public_key(req.key);
  if (!key) {
    return fail("cert_build_key_unsupported", "certified key: " + key.error().message);
  }
  auto ca_key = parse_public_key(ca.public_key());
  if (!ca_key || is_security_key(ca_key->type)) {
    return fail("cert_build_ca_unsupported",
                "CA key: " + (ca_key ? "security keys cannot sign certificates here"
                                     : ca_key.error().message));
  }

  Writer principals;
  for (const auto& p : req.principals) {
    if (auto r = check_text(p, "principal"); !r) return tl::unexpected(r.error());
    principals.string(p);
  }
  auto critical = encode_options(req.critical_options, true);
  if (!critical) return tl::unexpected(critical.error());
  auto extensions = encode_options(req.extensions, false);
  if (!extensions) return tl::unexpected(extensions.error());

  // The certified key's fields are its blob after the type name (parse_public_key has made sure
  // the blob is canonical).
  Reader fields(key->blob);
  Bytes type;
  if (!fields.string(&type)) return fail("cert_build_key_unsupported", "certified key unreadable");

  Writer w;
  w.string(cert_type_name(key->type))
      .string(nonce)
      .raw(fields.rest())
      .u64(req.serial)
      .u32(kCertTypeUser)
      .string(req.key_id)
      .string(principals.bytes())
      .u64(req.valid_after)
      .u64(req.valid_before)
      .string(*critical)
      .string(*extensions)
      .string(std::string_view())
      .string(ca.public_key());

  auto signature = ca.sign(w.bytes());
  if (!signature) return tl::unexpected(signature.error());
  if (auto r = check_signature(*ca_key, *signature, w.bytes()); !r) {
    return tl::unexpected(r.error());
  }
  w.string(*signature);
  return w.take();
}

std::string certificate_line(std::span<const uint8_t> blob, std::string_view comment) {
  std::string line = format_key_line(blob);
  if (!comment.empty()) {
    line += ' ';
    line += comment;
  }
  return line;
}

}  // namespace touchgate::ssh
