// Fuzz target: minting certificates (ssh/cert_builder.h). A request derived from the input is
// either refused with a cert_build_* code, or built into a certificate that parse_certificate
// reads back field for field, whose CA signature verifies and that validate_certificate does not
// find malformed. Invariants violated abort.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/cert_builder.h"
#include "ssh/certificate.h"
#include "ssh/key.h"
#include "ssh/signature.h"
#include "ssh/validate.h"
#include "ssh/writer.h"
#include "tests/unit/ssh/test_signer.h"

namespace {

using namespace touchgate::ssh;

// Input reader: takes what is left when the input runs out (zeros, empty strings).
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
    return v;
  }
  // text is a string of up to 255 bytes, its length in the first byte.
  std::string text() {
    const size_t n = std::min<size_t>(u8(), size_ - pos_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::vector<uint8_t> bytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::vector<uint8_t> b(data_ + pos_, data_ + pos_ + n);
    pos_ += n;
    return b;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

constexpr std::string_view kNames[] = {
    "force-command",         "source-address",          "verify-required",        "permit-pty",
    "permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-user-rc",
    "no-touch-required",     "group@example.com",
};

// Certified keys: fixed ed25519 keys and the CA keys of tests/data/certs (ecdsa-p521, rsa).
const std::vector<std::vector<uint8_t>>& keys() {
  static const std::vector<std::vector<uint8_t>> k = [] {
    std::vector<std::vector<uint8_t>> out;
    for (uint8_t seed = 1; seed <= 2; ++seed) {
      std::array<uint8_t, 32> s{};
      s.fill(seed);
      out.push_back(testing::TestSigner::ed25519_from_seed(s)->public_key());
    }
    for (std::string_view line :
         {"ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAH6TjVmaXip1+"
          "JpqfbGE7ZzMDFbhIzmMW35Xl3psVOOx8G8cy4Vpvyv5lTNWmgphbxkj8tp04Klff631r7W7dkqfQE9Y8hR+"
          "ZuMr2bHUZDaz2fXhQCMcooTZrunRFIj+P7k536TCUkTXy+z0htg38KpjXus2yrF4jAK8GxoDfzSbePGEQ=="}) {
      auto parsed = parse_key_line(line);
      if (!parsed) __builtin_trap();
      out.push_back(parsed->blob);
    }
    return out;
  }();
  return k;
}

testing::TestSigner& ca() {
  static const std::unique_ptr<testing::TestSigner> signer = [] {
    std::array<uint8_t, 32> seed{};
    for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(0x40 + i);
    return testing::TestSigner::ed25519_from_seed(seed);
  }();
  return *signer;
}

std::vector<std::pair<std::string, std::string>> options(Input& in) {
  std::vector<std::pair<std::string, std::string>> out;
  const size_t n = in.u8() % 6;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t pick = in.u8();
    std::string name = pick < 200 ? std::string(kNames[pick % std::size(kNames)]) : in.text();
    out.emplace_back(std::move(name), in.text());
  }
  return out;
}

// expected_data is how a value must appear in the certificate: empty for a flag, else a string.
std::vector<uint8_t> expected_data(const std::string& value) {
  if (value.empty()) return {};
  return Writer().string(value).take();
}

void check_options(const std::vector<std::pair<std::string, std::string>>& asked,
                   const std::vector<CertOption>& got) {
  std::map<std::string, std::string> want(asked.begin(), asked.end());
  if (want.size() != asked.size() || got.size() != want.size()) __builtin_trap();
  size_t i = 0;
  for (const auto& [name, value] : want) {  // std::map iterates in the certificate's order
    if (got[i].name != name || got[i].data != expected_data(value)) __builtin_trap();
    ++i;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  CertRequest req;
  const uint8_t key_pick = in.u8();
  if (key_pick < 250) {
    req.key = keys()[key_pick % keys().size()];
  } else {
    const auto raw = in.text();
    req.key.assign(raw.begin(), raw.end());
  }
  req.serial = in.u64();
  req.key_id = in.text();
  const size_t principals = in.u8() % 5;
  for (size_t i = 0; i < principals; ++i) req.principals.push_back(in.text());
  req.valid_after = in.u64();
  const uint8_t mode = in.u8();
  req.valid_before = mode < 128 ? req.valid_after + mode : in.u64();
  req.critical_options = options(in);
  req.extensions = options(in);
  std::vector<uint8_t> nonce = in.bytes(kCertNonceSize);
  nonce.resize(kCertNonceSize);

  auto built = build_user_certificate(req, ca(), nonce);
  if (!built) {
    if (!built.error().code.starts_with("cert_build_")) __builtin_trap();
    return 0;
  }
  // What must have been refused was refused.
  if (req.principals.empty() || req.valid_after >= req.valid_before) __builtin_trap();

  auto c = parse_certificate(*built);
  if (!c) __builtin_trap();
  KeyType type;
  if (!key_type_from_cert_name(c->type_name, &type) || c->key.type != type) __builtin_trap();
  if (c->nonce != nonce || c->key.blob != req.key || c->serial != req.serial ||
      c->cert_type != kCertTypeUser || c->key_id != req.key_id || c->principals != req.principals ||
      c->valid_after != req.valid_after || c->valid_before != req.valid_before ||
      c->signature_key != ca().public_key()) {
    __builtin_trap();
  }
  check_options(req.critical_options, c->critical_options);
  check_options(req.extensions, c->extensions);
  if (!verify_signature(c->ca_key, c->signature, c->signed_data())) __builtin_trap();

  TrustPolicy trust;
  trust.cas.push_back({"fuzz", c->ca_key});
  trust.permit_force_command = true;
  ValidationContext ctx;
  ctx.login = req.principals.front();
  ctx.client = *IpAddress::parse("192.168.7.7");
  ctx.now = req.valid_after;
  if (auto v = validate_certificate(*built, trust, ctx); !v) {
    const std::string& code = v.error().code;
    if (code == "cert_malformed" || code == "cert_unsupported_type" ||
        code == "cert_untrusted_ca" || code == "cert_bad_signature" ||
        code == "cert_not_yet_valid" || code == "cert_expired" ||
        code == "cert_unknown_critical_option" || code == "cert_principal_mismatch") {
      __builtin_trap();
    }
  }
  return 0;
}
