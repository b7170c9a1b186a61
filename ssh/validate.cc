// Trust boundary: decides whether a certificate offered by a client authenticates a login.
#include "ssh/validate.h"

#include <fmt/format.h>

#include <limits>

#include "ssh/digest.h"
#include "ssh/signature.h"

namespace touchgate::ssh {
namespace {

constexpr uint64_t kForever = std::numeric_limits<uint64_t>::max();
constexpr size_t kMaxShown = 128;

// printable makes certificate-supplied text safe to show in a message: control and non-ASCII bytes
// become \xNN, and long text is cut.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= kMaxShown) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > kForever - b ? kForever : a + b;
}

std::string format_duration(uint64_t seconds) {
  if (seconds % 3600 == 0) return fmt::format("{}h", seconds / 3600);
  if (seconds % 60 == 0) return fmt::format("{}m", seconds / 60);
  return fmt::format("{}s", seconds);
}

std::string principal_list(const std::vector<std::string>& principals) {
  std::string out = "[";
  for (size_t i = 0; i < principals.size(); ++i) {
    if (i == 8) {
      out += fmt::format(", ... {} more", principals.size() - i);
      break;
    }
    if (i > 0) out += ", ";
    out += printable(principals[i]);
  }
  return out + "]";
}

}  // namespace

std::string format_utc(uint64_t seconds) {
  if (seconds == kForever) return "forever";
  // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), valid for any uint64.
  const auto days = static_cast<int64_t>(seconds / 86400);
  const uint64_t secs = seconds % 86400;
  const int64_t z = days + 719468;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", year, month, day, secs / 3600,
                     secs / 60 % 60, secs % 60);
}

Result<VerifiedCertificate> validate_certificate(Bytes cert_blob, const TrustPolicy& trust,
                                                 const ValidationContext& ctx) {
  auto parsed = parse_certificate(cert_blob);
  if (!parsed) return tl::unexpected(parsed.error());
  const Certificate& cert = *parsed;

  if (cert.cert_type != kCertTypeUser) {
    return fail("cert_not_user_certificate",
                cert.cert_type == kCertTypeHost
                    ? "certificate is a host certificate, not a user certificate"
                    : fmt::format("certificate has unknown type {}, not a user certificate",
                                  cert.cert_type));
  }

  const TrustedCa* ca = nullptr;
  for (const auto& candidate : trust.cas) {
    if (candidate.key.blob == cert.signature_key) {
      ca = &candidate;
      break;
    }
  }
  const std::string ca_fingerprint = cert.ca_key.fingerprint();
  if (ca == nullptr) {
    return fail("cert_untrusted_ca",
                fmt::format("certificate signed by an untrusted CA ({})", ca_fingerprint));
  }

  SignatureOptions sig_options;
  sig_options.allow_ssh_rsa_sha1 = trust.allow_ssh_rsa_sha1;
  if (auto ok = verify_signature(ca->key, cert.signature, cert.signed_data(), sig_options); !ok) {
    if (ok.error().code == "sig_sha1_refused") {
      return fail(
          "cert_sha1_signature",
          fmt::format("certificate is signed by CA {} with SHA-1 (ssh-rsa), which is refused",
                      ca->name));
    }
    return fail("cert_bad_signature", fmt::format("certificate signature by CA {} is invalid ({})",
                                                  ca->name, ok.error().message));
  }

  if (trust.revoked) {
    if (trust.revoked->key_revoked(cert.signature_key)) {
      return fail("cert_ca_revoked", fmt::format("certificate signed by a revoked CA {} ({})",
                                                 ca->name, ca_fingerprint));
    }
    if (trust.revoked->cert_revoked(cert.signature_key, cert.serial, cert.key_id) ||
        trust.revoked->key_revoked(cert.key.blob)) {
      return fail("cert_revoked", fmt::format("certificate revoked (serial {})", cert.serial));
    }
  }

  if (saturating_add(ctx.now, trust.clock_skew_seconds) < cert.valid_after) {
    return fail("cert_not_yet_valid",
                fmt::format("certificate not valid before {}", format_utc(cert.valid_after)));
  }
  if (ctx.now >= saturating_add(cert.valid_before, trust.clock_skew_seconds)) {
    return fail("cert_expired",
                fmt::format("certificate expired at {}", format_utc(cert.valid_before)));
  }
  if (trust.max_lifetime_seconds != 0) {
    const std::string limit = format_duration(trust.max_lifetime_seconds);
    if (cert.valid_before == kForever) {
      return fail("cert_lifetime_exceeded",
                  fmt::format("certificate lifetime forever exceeds the limit of {}", limit));
    }
    const uint64_t lifetime =
        cert.valid_before > cert.valid_after ? cert.valid_before - cert.valid_after : 0;
    if (lifetime > trust.max_lifetime_seconds) {
      return fail("cert_lifetime_exceeded",
                  fmt::format("certificate lifetime {} exceeds the limit of {}",
                              format_duration(lifetime), limit));
    }
  }

  if (cert.principals.empty()) {
    return fail("cert_no_principals", "certificate has no principals (valid for nobody)");
  }
  bool principal_ok = false;
  for (const auto& p : cert.principals) principal_ok = principal_ok || p == ctx.login;
  if (!principal_ok) {
    return fail("cert_principal_mismatch",
                fmt::format("certificate principals {} do not include login {}",
                            principal_list(cert.principals), printable(ctx.login)));
  }

  VerifiedCertificate v;
  for (const auto& opt : cert.critical_options) {
    if (opt.name == "force-command" || opt.name == "source-address") continue;
    if (opt.name == "verify-required") {
      v.verify_required_ = true;
      continue;
    }
    return fail("cert_unknown_critical_option",
                fmt::format("certificate has unsupported critical option {}", printable(opt.name)));
  }

  if (const CertOption* opt = cert.find_critical("source-address")) {
    auto text = option_string(*opt);
    Result<std::vector<Cidr>> list = tl::unexpected(Error{});
    if (text) list = parse_cidr_list(*text);
    if (!text || !list) {
      return fail("cert_source_address", "certificate source-address option is malformed");
    }
    if (!cidr_list_contains(*list, ctx.client)) {
      return fail("cert_source_address",
                  fmt::format("source address {} not allowed by certificate (allowed: {})",
                              ctx.client.to_string(), printable(*text)));
    }
  }

  if (const CertOption* opt = cert.find_critical("force-command")) {
    auto command = option_string(*opt);
    if (!command) return tl::unexpected(command.error());
    if (!trust.permit_force_command) {
      return fail(
          "cert_force_command",
          fmt::format("certificate forces the command \"{}\", which this gateway does not permit",
                      printable(*command)));
    }
    v.force_command_ = std::move(*command);
  }

  v.login_ = ctx.login;
  v.ca_name_ = ca->name;
  v.ca_fingerprint_ = ca_fingerprint;
  v.key_fingerprint_ = cert.key.fingerprint();
  v.key_id_ = cert.key_id;
  v.serial_ = cert.serial;
  v.valid_after_ = cert.valid_after;
  v.valid_before_ = cert.valid_before;
  v.principals_ = cert.principals;
  v.extensions_ = cert.extensions;
  v.key_type_ = cert.key.type;
  v.no_touch_required_ = cert.find_extension("no-touch-required") != nullptr;
  v.permit_port_forwarding_ = cert.find_extension("permit-port-forwarding") != nullptr;
  v.permit_agent_forwarding_ = cert.find_extension("permit-agent-forwarding") != nullptr;
  v.permit_pty_ = cert.find_extension("permit-pty") != nullptr;
  return v;
}

}  // namespace touchgate::ssh
