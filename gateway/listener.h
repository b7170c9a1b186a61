// A listening socket wrapped in a libssh ssh_bind, with touchgate's algorithm choices.
#pragma once

#include <libssh/libssh.h>
#include <libssh/server.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "policy/config.h"
#include "ssh/error.h"

namespace touchgate::gateway {

// Only modern algorithms: no SHA-1 anywhere, no CBC, no non-ETM MACs.
inline constexpr const char* kKexAlgorithms =
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
    "ecdh-sha2-nistp521";
inline constexpr const char* kCiphers =
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,"
    "aes192-ctr,aes128-ctr";
// upstream_ciphers is kCiphers in the order the gateway prefers as an SSH client (terminating
// mode): AES-GCM first where the CPU has AES instructions (several times faster than
// chacha20-poly1305 there), chacha20-poly1305 first where it has not.
const char* upstream_ciphers();
inline constexpr const char* kMacs = "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com";
inline constexpr const char* kHostKeyAlgorithms =
    "ssh-ed25519,ecdsa-sha2-nistp521,ecdsa-sha2-nistp384,ecdsa-sha2-nistp256,rsa-sha2-512,"
    "rsa-sha2-256";
// Certificates are what we accept; plain key types are listed so that their offers are seen and
// refused with a reason instead of being dropped silently.
inline constexpr const char* kPubkeyTypes =
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,"
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
    "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256";

struct BindDeleter {
  void operator()(ssh_bind b) const { ssh_bind_free(b); }
};
using BindPtr = std::unique_ptr<ssh_bind_struct, BindDeleter>;

// open_listener binds and listens (backlog 4096) on one address with the given host keys.
Result<BindPtr> open_listener(const policy::ListenAddress& address,
                              const std::vector<std::filesystem::path>& host_keys);

}  // namespace touchgate::gateway
