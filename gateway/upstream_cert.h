// The credentials the gateway logs in to a target with in terminating mode: a fresh Ed25519 key
// per upstream login and an OpenSSH user certificate for it, valid for about a minute, signed by
// the gateway's CA (a PKCS#11 token, or a key file). The user's own keys never leave the client.
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/upstream_ssh.h"
#include "ssh/error.h"
#include "ssh/signer.h"

namespace touchgate::gateway {

struct MintRequest {
  std::string connection;   // "<instance>-<n>"
  std::string principal;    // the user's certificate principal
  std::string remote_user;  // the login on the target (the certificate's only principal)
  std::string source_ip;    // the gateway's address towards the target (source-address)
  bool pty = false;         // permit-pty
  std::chrono::seconds lifetime{60};
};

struct UpstreamCredentials {
  SshKeyPtr key;              // the private key (Ed25519), for libssh
  std::vector<uint8_t> cert;  // the certificate blob
  std::string cert_line;      // "ssh-ed25519-cert-v01@openssh.com AAAA... touchgate"
  uint64_t serial = 0;
  std::string key_id;         // "touchgate:<connection>:<principal>"
  uint64_t valid_after = 0, valid_before = 0;
};

// mint_upstream_credentials makes the key and has `ca` sign its certificate: key id
// "touchgate:<connection>:<principal>", a random 63-bit serial, principal remote_user, valid
// from 30 s ago (clock skew) for `lifetime`, source-address = source_ip, and no permission but
// permit-pty when asked (never agent, X11 or port forwarding, nor user rc). It may block on the
// token: call it off the worker threads. Codes: "ca_key_generation", the Signer's own codes
// (e.g. "pkcs11_token_missing"), ssh::build_user_certificate's.
Result<UpstreamCredentials> mint_upstream_credentials(ssh::Signer& ca, const MintRequest& req);

}  // namespace touchgate::gateway
