#include "gateway/upstream_cert.h"

#include <libssh/libssh.h>
#include <openssl/rand.h>

#include <array>
#include <ctime>

#include <fmt/format.h>

#include "ssh/cert_builder.h"
#include "ssh/digest.h"

namespace touchgate::gateway {

Result<UpstreamCredentials> mint_upstream_credentials(ssh::Signer& ca, const MintRequest& req) {
  if (auto r = ca.ready(); !r) return tl::unexpected(r.error());
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK || raw == nullptr) {
    return fail("ca_key_generation", "could not generate the upstream login key");
  }
  UpstreamCredentials out;
  out.key.reset(raw);
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(raw, &b64) != SSH_OK || b64 == nullptr) {
    return fail("ca_key_generation", "could not export the upstream login key");
  }
  auto blob = ssh::base64_decode(b64);
  ssh_string_free_char(b64);
  if (!blob) return fail("ca_key_generation", "could not read the upstream login key");

  std::array<uint8_t, ssh::kCertNonceSize> nonce{};
  uint64_t serial = 0;
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) != 1) {
    return fail("ca_key_generation", "no randomness for the upstream certificate");
  }
  serial &= (uint64_t{1} << 63) - 1;  // positive in every tool that prints it
  if (serial == 0) serial = 1;

  const auto now = static_cast<uint64_t>(std::time(nullptr));
  ssh::CertRequest cr;
  cr.key = *blob;
  cr.serial = serial;
  cr.key_id = fmt::format("touchgate:{}:{}", req.connection, req.principal);
  cr.principals = {req.remote_user};
  cr.valid_after = now > 30 ? now - 30 : 0;
  cr.valid_before = now + static_cast<uint64_t>(req.lifetime.count());
  if (!req.source_ip.empty()) {
    cr.critical_options.emplace_back(std::string(ssh::kOptSourceAddress), req.source_ip);
  }
  if (req.pty) cr.extensions.emplace_back(std::string(ssh::kExtPermitPty), "");
  auto cert = ssh::build_user_certificate(cr, ca, nonce);
  if (!cert) return tl::unexpected(cert.error());
  out.cert = std::move(*cert);
  out.cert_line = ssh::certificate_line(out.cert, "touchgate");
  out.serial = serial;
  out.key_id = cr.key_id;
  out.valid_after = cr.valid_after;
  out.valid_before = cr.valid_before;
  return out;
}

}  // namespace touchgate::gateway
