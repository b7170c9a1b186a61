// Trust boundary: parses certificate blobs offered by SSH clients.
#include "ssh/certificate.h"

#include <algorithm>
#include <array>

namespace touchgate::ssh {
namespace {

constexpr size_t kMaxPrincipals = 256;  // as OpenSSH (SSHKEY_CERT_MAX_PRINCIPALS)
constexpr size_t kMaxName = 1024;
constexpr size_t kMaxOptions = 64;

// Options whose data must be empty, and options whose data must be exactly one string.
constexpr std::array<std::string_view, 7> kFlagOptions = {
    "verify-required",         "no-touch-required",      "permit-X11-forwarding",
    "permit-agent-forwarding", "permit-port-forwarding", "permit-pty",
    "permit-user-rc",
};
constexpr std::array<std::string_view, 2> kStringOptions = {"force-command", "source-address"};

template <size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

tl::unexpected<Error> malformed(std::string message) {
  return fail("cert_malformed", "certificate " + message);
}

// data_is_one_string is true when data holds exactly one SSH string and nothing else.
bool data_is_one_string(Bytes data) {
  Reader r(data);
  Bytes inner;
  return r.string(&inner) && r.finish();
}

// parse_options reads a critical_options or extensions section: (string name, string data)*, names
// strictly increasing, each data empty or exactly one string (empty for flags).
Result<std::vector<CertOption>> parse_options(Bytes section, std::string_view what) {
  std::vector<CertOption> out;
  Reader r(section);
  while (!r.empty()) {
    CertOption opt;
    Bytes data;
    if (!r.text_copy(&opt.name, kMaxName) || !r.string(&data)) {
      return malformed("has malformed " + std::string(what));
    }
    if (out.size() >= kMaxOptions) return malformed("has too many " + std::string(what));
    if (!out.empty() && !(out.back().name < opt.name)) {
      return malformed("has " + std::string(what) + " that are not sorted or repeat a name");
    }
    if (contains(kFlagOptions, opt.name)) {
      if (!data.empty()) return malformed("option " + opt.name + " carries unexpected data");
    } else if (contains(kStringOptions, opt.name)) {
      if (!data_is_one_string(data)) return malformed("option " + opt.name + " is malformed");
    } else if (!data.empty() && !data_is_one_string(data)) {
      return malformed("has " + std::string(what) + " with trailing data");
    }
    opt.data.assign(data.begin(), data.end());
    out.push_back(std::move(opt));
  }
  return out;
}

const CertOption* find_option(const std::vector<CertOption>& list, std::string_view name) {
  for (const auto& o : list)
    if (o.name == name) return &o;
  return nullptr;
}

}  // namespace

const CertOption* Certificate::find_critical(std::string_view name) const {
  return find_option(critical_options, name);
}

const CertOption* Certificate::find_extension(std::string_view name) const {
  return find_option(extensions, name);
}

Result<std::string> option_string(const CertOption& opt) {
  Reader r(opt.data);
  std::string value;
  if (!r.text_copy(&value) || !r.finish()) {
    return fail("cert_malformed", "certificate option " + opt.name + " does not hold one string");
  }
  return value;
}

Result<Certificate> parse_certificate(Bytes blob) {
  Certificate c;
  Reader r(blob);
  if (!r.text_copy(&c.type_name, 256)) return malformed("has no readable type");
  KeyType key_type;
  if (!key_type_from_cert_name(c.type_name, &key_type)) {
    return fail("cert_unsupported_type", "unsupported certificate type");
  }
  Bytes nonce;
  if (!r.string(&nonce, 1024)) return malformed("has a malformed nonce");
  c.nonce.assign(nonce.begin(), nonce.end());

  auto key = parse_public_key_fields(key_type, r);
  if (!key) {
    if (key.error().code == "key_unsupported") {
      return fail("cert_unsupported_type", "certified key: " + key.error().message);
    }
    return malformed("key: " + key.error().message);
  }
  c.key = std::move(*key);

  Reader principals;
  Bytes critical;
  Bytes extensions;
  Bytes reserved;
  Bytes ca_blob;
  if (!r.u64(&c.serial) || !r.u32(&c.cert_type) || !r.text_copy(&c.key_id, kMaxName) ||
      !r.nested(&principals) || !r.u64(&c.valid_after) || !r.u64(&c.valid_before) ||
      !r.string(&critical) || !r.string(&extensions) || !r.string(&reserved) ||
      !r.string(&ca_blob)) {
    return malformed("is truncated or has malformed fields");
  }
  c.signed_length = r.offset();
  Bytes signature;
  if (!r.string(&signature)) return malformed("has a malformed signature");
  if (!r.finish()) return malformed("has trailing bytes");

  while (!principals.empty()) {
    std::string p;
    if (!principals.text_copy(&p, kMaxName)) return malformed("has a malformed principal list");
    if (c.principals.size() >= kMaxPrincipals) return malformed("has too many principals");
    c.principals.push_back(std::move(p));
  }

  auto crit = parse_options(critical, "critical options");
  if (!crit) return tl::unexpected(crit.error());
  c.critical_options = std::move(*crit);
  auto ext = parse_options(extensions, "extensions");
  if (!ext) return tl::unexpected(ext.error());
  c.extensions = std::move(*ext);

  auto ca = parse_public_key(ca_blob);
  if (!ca) {
    Reader t(ca_blob);
    std::string_view ca_type;
    KeyType unused;
    if (t.text(&ca_type, 256) && key_type_from_cert_name(ca_type, &unused)) {
      return malformed("is signed by a CA key that is itself a certificate");
    }
    return malformed("CA key: " + ca.error().message);
  }
  c.ca_key = std::move(*ca);
  c.signature_key.assign(ca_blob.begin(), ca_blob.end());
  c.signature.assign(signature.begin(), signature.end());
  c.blob.assign(blob.begin(), blob.end());
  return c;
}

}  // namespace touchgate::ssh
