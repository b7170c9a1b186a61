// The configuration model (one TOML file, see touchgate.conf(5)) and its loader.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/factor.h"
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
  std::filesystem::path control_socket;               // default: state_dir/control.sock
  std::string admin_group;                            // "" = none: only root and the daemon's uid
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

// [policy]
struct PolicyConfig {
  bool reevaluate = false;  // on reload, re-check running channels and close those now denied
};

// [audit]: the tamper-evident audit log (docs/audit-format.md). Always on.
struct AuditConfig {
  std::filesystem::path dir;       // default: state_dir/audit
  // The audit signing key: a key file (default state_dir/audit_key, created with its .pub), or a
  // key in a PKCS#11 token (pkcs11_uri, as [ca] names one). Not both; key stays empty with a URI.
  std::filesystem::path key;
  std::string pkcs11_uri;               // "pkcs11:token=...;object=..." (RFC 7512)
  std::filesystem::path pkcs11_module;  // the module (or module-path in the URI)
  std::filesystem::path pin_file;       // the token PIN, first line; required with a URI
  // Where the writer records the key's public line and `touchgate audit verify` looks for it:
  // <key>.pub for a key file, state_dir/audit_key.pub for a token key (set by the loader).
  std::filesystem::path public_key;
  uint64_t max_segment_size = 64ull << 20;            // bytes, 1 MiB .. 16 GiB
  std::chrono::seconds max_segment_age{24 * 3600};    // 1 min .. 30 days
  uint64_t checkpoint_every = 1000;                   // records, 1 .. 1,000,000
  std::chrono::seconds checkpoint_interval{60};       // 1 s .. 1 day
  bool deny_on_failure = true;                        // on_failure = "deny" | "continue"
  // syslog: a copy of every record as an RFC 5424 message to a local datagram socket.
  bool syslog = false;
  std::filesystem::path syslog_socket = "/dev/log";
  std::string syslog_facility = "authpriv";           // auth, authpriv, daemon, local0..local7

  bool operator==(const AuditConfig&) const = default;
};

// [ca]: the gateway's own CA, which signs the short-lived certificates it logs in to targets with
// in terminating mode. The key lives in a PKCS#11 token; a key file only as explicit fallback.
struct CaConfig {
  std::string pkcs11_uri;                    // "pkcs11:token=...;object=..." (RFC 7512)
  std::filesystem::path pkcs11_module;       // the module (or module-path in the URI)
  std::filesystem::path pin_file;            // the token PIN, first line; required with a URI
  std::filesystem::path key_file;            // fallback: a PEM private key file
  std::chrono::seconds cert_lifetime{60};    // of each upstream certificate, 10 s .. 10 min
  bool configured() const { return !pkcs11_uri.empty() || !key_file.empty(); }
};

// [recording]: session recordings of terminating mode (asciicast v2, one file per channel).
struct RecordingConfig {
  std::filesystem::path dir;                 // default: state_dir/recordings
  uint64_t max_size = 256ull << 20;          // per channel, 1 MiB .. 64 GiB
  bool end_session_on_cap = false;           // on_cap = "stop" (recording) | "end" (session)
};

// [terminating]: the gateway as the SSH client of the target.
struct TerminatingConfig {
  // Environment variables a client may pass on (env requests): names or NAME_* prefixes.
  std::vector<std::string> env{"LANG", "LC_*"};
  std::filesystem::path known_hosts;         // default: state_dir/known_hosts (TOFU records)
};

// [[group]]: a named set of identities. Membership comes only from the verified certificate.
struct GroupConfig {
  std::string name;                     // [A-Za-z0-9._-]{1,64}, unique
  std::vector<std::string> principals;  // the login (certificate principal) equals one of these
  std::vector<std::string> key_ids;     // the certificate key id matches one glob (* ?)
  std::string extension;                // a certificate extension holding a comma-separated list
  std::string extension_value;          // ... that lists this value (default: the group name)
  std::vector<std::string> cas;         // only certificates of these CAs can be members; empty = any
  int line = 0;                         // where [[group]] starts
};

// [[rule]]: one access rule. Selectors left out match everything of their kind except where
// noted; see touchgate-policy(5).
struct RuleConfig {
  std::string id;                        // [A-Za-z0-9._-]{1,64}, unique, required
  bool allow = true;                     // effect = "allow" | "deny"
  // Subjects (at least one of principals/groups is required; "*" in principals = everyone).
  std::vector<std::string> principals;   // exact login names, or "*"
  std::vector<std::string> groups;       // names of [[group]]s (must exist)
  std::vector<std::string> cas;          // CA names of [trust] user_ca_keys; empty = any
  // Targets (at least one of targets/hosts is required).
  std::vector<std::string> targets;      // configured targets: "name", "glob*", "tag:T"
  std::vector<std::string> hosts;        // destinations NOT configured as [[target]]: host-name
                                         // globs ("*.prod.example.com") or CIDRs ("10.1.0.0/16")
  std::vector<std::pair<uint16_t, uint16_t>> ports;  // inclusive ranges; empty = any (hosts: 22)
  uint8_t actions = static_cast<uint8_t>(Action::kJump);  // mask of Action; default jump
  uint8_t factors = static_cast<uint8_t>(Factor::kTouch);  // mask of Factor: any one suffices
  std::optional<std::chrono::seconds> max_age;  // freshness; default [mfa] max_age
  std::chrono::seconds max_session{0};   // 0 = no limit
  std::vector<std::string> days;         // see timewindow.h
  std::vector<std::string> hours;
  std::string timezone;                  // IANA name; default UTC
  std::vector<std::string> from;         // source networks (CIDR); empty = anywhere
  // Terminating mode (actions shell, exec, sftp):
  std::string remote_user;               // the login on the target; "" = the principal
  bool record_input = false;             // record the user's keystrokes too
  int line = 0;                          // where [[rule]] starts
};

struct Target {
  std::string name;
  std::string host;  // as written (DNS name or numeric)
  uint16_t port = 22;
  std::vector<std::string> tags;
  // Terminating mode: the target's SSH host key, pinned (an OpenSSH public key line's blob), or
  // trust on first use (the first key seen is recorded in [terminating] known_hosts).
  std::vector<uint8_t> host_key;
  bool trust_on_first_use = false;
  std::string address() const;  // "host:port" ("[v6]:port" for IPv6)
};

struct Config {
  std::filesystem::path source;  // the file it was loaded from (absolute)
  ServerConfig server;
  TrustConfig trust;
  MfaConfig mfa;
  PolicyConfig policy;
  AuditConfig audit;
  CaConfig ca;
  RecordingConfig recording;
  TerminatingConfig terminating;
  std::vector<Target> targets;
  std::vector<GroupConfig> groups;
  std::vector<RuleConfig> rules;

  // mfa_namespace is the SSHSIG namespace of touch challenges: "touchgate-mfa@<server.name>".
  std::string mfa_namespace() const { return "touchgate-mfa@" + server.name; }

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
