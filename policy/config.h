// The configuration model (one TOML file, see touchgate.conf(5)) and its loader.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"

namespace touchgate::policy {

struct ListenAddress {
  std::string host;  // numeric IPv4 or IPv6 (without brackets)
  uint16_t port = 0;
  std::string to_string() const;  // "127.0.0.1:2222" / "[::1]:2222"
};

struct ServerConfig {
  std::string name;                                   // gateway name; default: the host name
  std::vector<ListenAddress> listen;                  // required, at least one
  std::vector<std::filesystem::path> host_keys;       // default: [state_dir/ssh_host_ed25519_key]
  std::filesystem::path state_dir;                    // default: /var/lib/touchgate
  std::chrono::seconds login_grace_time{30};          // 0 < x <= 600
  int max_auth_tries = 6;                             // 1..100
  int max_startups = 1000;                            // concurrent unauthenticated connections
  int max_sessions = 10000;                           // concurrent connections in all
  int max_channels_per_connection = 10;
  int workers = 0;                                    // 0 = number of cores
  std::chrono::seconds connect_timeout{10};           // target TCP connect
  std::chrono::seconds drain_timeout{30};             // SIGTERM: wait this long for sessions
  std::chrono::seconds idle_timeout{0};               // 0 = none
};

struct TrustConfig {
  // Each entry: one OpenSSH public key file with one or more CA keys; name defaults to file stem.
  struct CaFile {
    std::string name;
    std::filesystem::path path;
    std::string origin;  // "CONFIG:LINE:COL" of the entry, prefixed to errors about the file
  };
  std::vector<CaFile> user_ca_keys;                   // required, at least one
  std::optional<std::filesystem::path> revoked_keys;  // KRL or plain list
  std::string revoked_keys_origin;                    // "CONFIG:LINE:COL" of revoked_keys
  std::chrono::seconds max_cert_lifetime{0};          // 0 = no limit
  std::chrono::seconds clock_skew{60};
  bool allow_ssh_rsa_sha1 = false;
  bool permit_force_command = false;
};

// The second factor (a touch of an enrolled hardware key through the forwarded agent).
struct MfaConfig {
  std::chrono::seconds touch_timeout{60};  // how long to wait for the agent's answer, 1..600 s
  std::chrono::seconds max_age{0};         // reuse a touch on one connection this long (0: never)
  bool require_pin = false;                // FIDO2 keys must report user verification (PIN)
  std::vector<std::string> prefer{"fido2", "piv"};  // key kinds, most preferred first

};

struct Target {
  std::string name;
  std::string host;  // as written (DNS name or numeric)
  uint16_t port = 22;
  std::vector<std::string> tags;
  std::string address() const;  // "host:port" ("[v6]:port" for IPv6)
};

struct Config {
  std::filesystem::path source;  // the file it was loaded from (absolute)
  ServerConfig server;
  TrustConfig trust;
  MfaConfig mfa;
  std::vector<Target> targets;

  // mfa_namespace is the SSHSIG namespace of touch challenges: "touchgate-mfa@<server.name>".
  std::string mfa_namespace() const { return "touchgate-mfa@" + server.name; }

  // find_target matches by name, or by exact "host:port" of a target (also host alone when the
  // requested port equals the target's port). nullptr if none.
  const Target* find_target(std::string_view host, uint16_t port) const;
};

// load_config reads and validates a config file. Relative paths inside are resolved against the
// file's directory. Unknown keys, wrong types, out-of-range values, duplicate target names and
// unparsable addresses are errors; the message is "FILE:LINE:COL: what is wrong" (code
// "config_invalid"; "config_unreadable" when the file cannot be read).
Result<Config> load_config(const std::filesystem::path& file);

// parse_config is load_config on text already in memory; base_dir resolves relative paths and
// source_name prefixes messages.
Result<Config> parse_config(std::string_view text, const std::filesystem::path& base_dir,
                            std::string_view source_name);

// parse_duration accepts an integer number of seconds or a string with unit: "30s", "5m", "12h",
// "7d", combinations like "1h30m". Code "config_invalid".
Result<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace touchgate::policy
