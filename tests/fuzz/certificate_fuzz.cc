// Fuzz target: certificate and public key parsing and certificate validation (trust boundary:
// everything an SSH client offers as a key or certificate). Invariants violated abort.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ssh/certificate.h"
#include "ssh/key.h"
#include "ssh/validate.h"

namespace {

using namespace touchgate::ssh;

// CA keys from tests/data/certs (generate.sh); the seed corpus is signed by them, so inputs reach
// the checks after the signature. If the data is regenerated, update these lines.
constexpr std::string_view kCaLines[] = {
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM6100rf0a8+yewrz/WnrzaPN6PTKzFrj3rNgAfK00DJ",
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAH6TjVmaXip1+Jpqf"
    "bGE7ZzMDFbhIzmMW35Xl3psVOOx8G8cy4Vpvyv5lTNWmgphbxkj8tp04Klff631r7W7dkqfQE9Y8hR+ZuMr2bHUZDa"
    "z2fXhQCMcooTZrunRFIj+P7k536TCUkTXy+z0htg38KpjXus2yrF4jAK8GxoDfzSbePGEQ==",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCpR+SSVlZ3yVYcIainigvl1Xzbgo2hqMfzxwB1sIB+zM2EryxxGE"
    "7N91XYtUZ5997wKlEQU5pOzfXWqnUpRqOHoFAJJMcRg2TGiV89Xj0DQhcdfU5ia394/v3YXPemYx3hVdA8+gKQsdFA"
    "POF9FYwvcPbNKWJAUeS2FmPk9U0Z5MHUG5bE/L9+HxZVnigzC83LFg0FYI8kL3Z+x/NZd0QDypGgxqdhhk4OKZ10m6"
    "YhjA6LAfTd/QzNGml2MxZe8n4BCx9WKJc9jpL/B+33NSGXI93UBWQj+YOi2IfJymTrugVXA22aWnZkYGDescDzygDb"
    "3N9wZBeYlulfQio4UsXF8lXk5R8fvASaxPUk2OfQ9uHbuhfBxxKGDzM9A/ytQqCOyPIhNVxudQBDIKxP8DXMoNcFUl"
    "pMYxuHEn3ubEDytth8tX5E7BBVdqSgxP5Fbvc2HF0KgaMciwmUK+bNPRz2Z34ks8jrpbJft7kdoRawe+UCD9Z/86Cn"
    "GeV1TJ+3b6U=",
};

const TrustPolicy& trust() {
  static const TrustPolicy policy = [] {
    TrustPolicy p;
    for (std::string_view line : kCaLines) {
      auto parsed = parse_key_line(line);
      if (!parsed) __builtin_trap();
      auto key = parse_public_key(parsed->blob);
      if (!key) __builtin_trap();
      p.cas.push_back({std::string(key->type_name()), *key});
    }
    p.revoked = std::make_shared<const RevocationList>(RevocationList::empty());
    p.max_lifetime_seconds = 0;
    p.clock_skew_seconds = 300;
    p.permit_force_command = true;
    return p;
  }();
  return policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes input(data, size);

  if (auto cert = parse_certificate(input)) {
    // The certified key and the CA key re-parse as plain keys, byte for byte.
    auto key = parse_public_key(cert->key.blob);
    if (!key || key->blob != cert->key.blob) __builtin_trap();
    auto ca = parse_public_key(cert->signature_key);
    if (!ca || ca->blob != cert->signature_key) __builtin_trap();
    if (cert->signed_length > cert->blob.size()) __builtin_trap();
    for (const auto& opt : cert->critical_options) (void)option_string(opt);
  }

  ValidationContext ctx;
  ctx.login = "alice";
  ctx.client = *IpAddress::parse("192.168.7.7");
  ctx.now = 1700000000;
  if (auto v = validate_certificate(input, trust(), ctx)) {
    if (v->login() != "alice" || v->principals().empty()) __builtin_trap();
  }

  if (auto key = parse_public_key(input)) {
    if (key->blob.size() != size || !std::equal(key->blob.begin(), key->blob.end(), data)) {
      __builtin_trap();
    }
    (void)key->fingerprint();
  }

  (void)parse_key_line(as_text(input));
  (void)format_key_line(input);
  return 0;
}
