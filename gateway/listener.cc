#include "gateway/listener.h"

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include <fcntl.h>
#include <sys/socket.h>

#include <utility>

#include <fmt/format.h>

namespace touchgate::gateway {

const char* upstream_ciphers() {
  static const bool aes = [] {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__)
    return (getauxval(AT_HWCAP) & HWCAP_AES) != 0 && (getauxval(AT_HWCAP) & HWCAP_PMULL) != 0;
#else
    return false;
#endif
  }();
  return aes ? "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,"
               "aes128-ctr,aes192-ctr,aes256-ctr"
             : "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com,"
               "aes128-ctr,aes192-ctr,aes256-ctr";
}

Result<BindPtr> open_listener(const policy::ListenAddress& address,
                              const std::vector<std::filesystem::path>& host_keys) {
  BindPtr bind(ssh_bind_new());
  if (!bind) return fail("listen_failed", "out of memory");
  auto set = [&](enum ssh_bind_options_e opt, const void* value, const char* what) -> Result<void> {
    if (ssh_bind_options_set(bind.get(), opt, value) != SSH_OK) {
      return fail("listen_failed", fmt::format("{}: cannot set {}: {}", address.to_string(), what,
                                               ssh_get_error(bind.get())));
    }
    return {};
  };
  unsigned int port = address.port;
  int verbosity = SSH_LOG_NOLOG;
  const std::pair<enum ssh_bind_options_e, std::pair<const void*, const char*>> options[] = {
      {SSH_BIND_OPTIONS_BINDADDR, {address.host.c_str(), "address"}},
      {SSH_BIND_OPTIONS_BINDPORT, {&port, "port"}},
      {SSH_BIND_OPTIONS_LOG_VERBOSITY, {&verbosity, "log level"}},
      {SSH_BIND_OPTIONS_KEY_EXCHANGE, {kKexAlgorithms, "key exchange algorithms"}},
      {SSH_BIND_OPTIONS_CIPHERS_C_S, {kCiphers, "ciphers"}},
      {SSH_BIND_OPTIONS_CIPHERS_S_C, {kCiphers, "ciphers"}},
      {SSH_BIND_OPTIONS_HMAC_C_S, {kMacs, "MACs"}},
      {SSH_BIND_OPTIONS_HMAC_S_C, {kMacs, "MACs"}},
      {SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, {kHostKeyAlgorithms, "host key algorithms"}},
      {SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, {kPubkeyTypes, "public key types"}},
  };
  for (const auto& [opt, value] : options) {
    auto r = set(opt, value.first, value.second);
    if (!r) return tl::unexpected(r.error());
  }
  for (const auto& key : host_keys) {
    auto r = set(SSH_BIND_OPTIONS_HOSTKEY, key.c_str(), "host key");
    if (!r) return tl::unexpected(r.error());
  }
  if (ssh_bind_listen(bind.get()) != SSH_OK) {
    return fail("listen_failed",
                fmt::format("cannot listen on {}: {}", address.to_string(), ssh_get_error(bind.get())));
  }
  int fd = ssh_bind_get_fd(bind.get());
  // libssh listens with a backlog of 10; bursts of clients need more.
  ::listen(fd, 4096);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  ssh_bind_set_blocking(bind.get(), 0);
  return bind;
}

}  // namespace touchgate::gateway
