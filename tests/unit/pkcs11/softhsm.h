// A SoftHSM2 token for tests: its own softhsm2.conf and token directory in a temporary directory
// (SOFTHSM2_CONF points at it for this process and the tools it runs), keys made by pkcs11-tool.
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

namespace touchgate::pkcs11::testing {

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr const char* kTokenLabel = "tg-test";
inline constexpr const char* kUserPin = "314159";
inline constexpr const char* kSoPin = "27182818";

// run runs a shell command with its output into log; true on exit status 0.
inline bool run(const std::string& command, const std::filesystem::path& log) {
  return std::system((command + " >>" + log.string() + " 2>&1").c_str()) == 0;
}

// write_file writes text to path with the given mode.
inline void write_file(const std::filesystem::path& path, const std::string& text,
                       mode_t mode = 0600) {
  std::ofstream(path, std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

class SoftHsm {
 public:
  // make creates the token; false (reason in error()) when SoftHSM2 or pkcs11-tool is missing
  // or a tool fails.
  bool make() {
    char dir_template[] = "/tmp/tg-softhsm-XXXXXX";
    if (!::mkdtemp(dir_template)) return failed("mkdtemp");
    dir_ = dir_template;
    std::filesystem::create_directory(dir_ / "tokens");
    log_ = dir_ / "tools.log";
    write_file(dir_ / "softhsm2.conf",
               fmt::format("directories.tokendir = {}\nobjectstore.backend = file\n"
                           "log.level = ERROR\n",
                           (dir_ / "tokens").string()));
    ::setenv("SOFTHSM2_CONF", (dir_ / "softhsm2.conf").c_str(), 1);
    if (!std::filesystem::exists(kSoftHsmModule)) return failed("no SoftHSM2 module");
    if (!init_token()) return false;
    write_file(pin_file(), std::string(kUserPin) + "\n");
    return true;
  }

  // init_token initialises a token labelled kTokenLabel in a free slot.
  bool init_token() {
    return run(fmt::format("softhsm2-util --init-token --free --label {} --so-pin {} --pin {}",
                           kTokenLabel, kSoPin, kUserPin),
               log_) ||
           failed("softhsm2-util --init-token");
  }

  // keypair makes a key pair with pkcs11-tool: key_type as its --key-type ("EC:prime256v1").
  bool keypair(const std::string& key_type, const std::string& id, const std::string& label) {
    return run(fmt::format("pkcs11-tool --module {} --token-label {} --login --pin {} "
                           "--keypairgen --key-type {} --id {} --label {}",
                           kSoftHsmModule, kTokenLabel, kUserPin, key_type, id, label),
               log_) ||
           failed("pkcs11-tool --keypairgen " + key_type);
  }

  // export_public writes the public key object with id as DER SubjectPublicKeyInfo.
  bool export_public(const std::string& id, const std::filesystem::path& out) {
    return run(fmt::format("pkcs11-tool --module {} --token-label {} --read-object --type pubkey "
                           "--id {} -o {}",
                           kSoftHsmModule, kTokenLabel, id, out.string()),
               log_);
  }

  void remove() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    dir_.clear();
  }

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path pin_file() const { return dir_ / "pin"; }
  const std::string& error() const { return error_; }

 private:
  bool failed(const std::string& what) {
    error_ = what;
    if (!log_.empty()) {
      std::ifstream in(log_);
      error_ += ": " + std::string(std::istreambuf_iterator<char>(in), {});
    }
    return false;
  }

  std::filesystem::path dir_;
  std::filesystem::path log_;
  std::string error_;
};

}  // namespace touchgate::pkcs11::testing
