#include "gateway/host_keys.h"

#include <libssh/libssh.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "gateway/log.h"

namespace touchgate::gateway {

namespace {
struct KeyDeleter {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;
}  // namespace

Result<void> ensure_host_keys(const std::vector<std::filesystem::path>& paths) {
  for (const auto& path : paths) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      ssh_key raw = nullptr;
      if (ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK) {
        return fail("host_key_invalid", fmt::format("{}: not a readable unencrypted private key",
                                                    path.string()));
      }
      ssh_key_free(raw);
      continue;
    }
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return fail("host_key_invalid",
                  fmt::format("{}: cannot create directory: {}", path.parent_path().string(), ec.message()));
    }
    ssh_key raw = nullptr;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) {
      return fail("host_key_invalid", "cannot generate an ed25519 host key");
    }
    KeyPtr key(raw);
    mode_t old = ::umask(077);
    int rc = ssh_pki_export_privkey_file(key.get(), nullptr, nullptr, nullptr, path.c_str());
    ::umask(old);
    if (rc != SSH_OK) {
      return fail("host_key_invalid", fmt::format("{}: cannot write host key", path.string()));
    }
    ::chmod(path.c_str(), 0600);
    char* b64 = nullptr;
    if (ssh_pki_export_pubkey_base64(key.get(), &b64) == SSH_OK) {
      std::ofstream pub(path.string() + ".pub");
      pub << "ssh-ed25519 " << b64 << " touchgate-host\n";
      ssh_string_free_char(b64);
    }
    char* fp = nullptr;
    unsigned char* hash = nullptr;
    size_t hlen = 0;
    std::string fingerprint;
    if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0) {
      fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
      if (fp != nullptr) fingerprint = fp;
      ssh_string_free_char(fp);
      ssh_clean_pubkey_hash(&hash);
    }
    log_event(Level::kInfo, "host_key_generated",
              {{"path", path.string()}, {"type", "ssh-ed25519"}, {"fingerprint", fingerprint}});
  }
  return {};
}

}  // namespace touchgate::gateway
