// The TOML configuration loader (trust boundary: an admin-written file; every malformation is a
// line-numbered error, nothing is guessed).
#include "policy/config.h"

#include <algorithm>
#include <exception>
#include <functional>
#include <map>
#include <system_error>
#include <utility>

#include <unistd.h>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "pkcs11/uri.h"
#include "policy/address.h"
#include "policy/duration.h"
#include "policy/file.h"
#include "policy/toml_util.h"
#include "policy/timewindow.h"
#include "ssh/address.h"
#include "ssh/key.h"

namespace touchgate::policy {
namespace {

bool valid_gateway_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
  });
}

// default_gateway_name is the host name, or "touchgate" if it is unusable as a name.
std::string default_gateway_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) == 0 && valid_gateway_name(buf)) return buf;
  return "touchgate";
}

constexpr const char* kCode = "config_invalid";
constexpr size_t kMaxConfigSize = 16u << 20;
constexpr size_t kMaxNameLength = 64;

using std::chrono::seconds;

// ---- small text helpers ----------------------------------------------------------------------

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// valid_name: the identifier syntax of target names, CA names and tags: [A-Za-z0-9._-]{1,64}.
bool valid_name(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameLength && std::all_of(s.begin(), s.end(), is_name_char);
}

// edit_distance for "did you mean" hints on unknown keys (short strings only).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (iequals(a.substr(i - 1, 1), b.substr(j - 1, 1)) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(std::string_view key, std::initializer_list<std::string_view> known) {
  std::string_view best;
  size_t best_distance = 3;  // suggest only close matches
  for (std::string_view k : known) {
    size_t d = edit_distance(key, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean \"{}\"?)", best);
}

// ---- the loader --------------------------------------------------------------------------------

// Loader walks the parsed document. Every check returns the first error found, located at the
// offending key or value.
class Loader {
 public:
  Loader(std::string_view source_name, std::filesystem::path base_dir)
      : source_name_(source_name), base_dir_(std::move(base_dir)) {}

  Result<Config> load(const toml::table& root);

 private:
  tl::unexpected<Error> error_at(const toml::source_region& where, std::string_view what) const {
    auto line = where.begin.line;
    auto column = where.begin.column;
    if (line == 0) {
      line = 1;
      column = 1;
    }
    return fail(kCode, fmt::format("{}:{}:{}: {}", source_name_, line, column, what));
  }
  tl::unexpected<Error> error_at(const toml::node& node, std::string_view what) const {
    return error_at(node.source(), what);
  }
  std::string origin(const toml::node& node) const {
    auto where = node.source();
    return fmt::format("{}:{}:{}", source_name_, std::max<uint32_t>(where.begin.line, 1),
                       std::max<uint32_t>(where.begin.column, 1));
  }
  tl::unexpected<Error> wrong_type(const toml::node& node, std::string_view key,
                                   std::string_view expected) const {
    return error_at(node,
                    fmt::format("{} must be {}, not {}", key, expected,
                                toml_type_name(node.type())));
  }

  Result<std::string> get_string(const toml::node& node, std::string_view key) const;
  Result<int64_t> get_int(const toml::node& node, std::string_view key, int64_t lo,
                          int64_t hi) const;
  Result<bool> get_bool(const toml::node& node, std::string_view key) const;
  Result<seconds> get_duration(const toml::node& node, std::string_view key, uint64_t lo,
                               uint64_t hi) const;
  Result<std::filesystem::path> get_path(const toml::node& node, std::string_view key) const;
  Result<const toml::array*> get_array(const toml::node& node, std::string_view key,
                                       bool allow_empty) const;

  Result<void> load_server(const toml::table& table, ServerConfig* out) const;
  Result<void> load_trust(const toml::table& table, TrustConfig* out) const;
  Result<void> load_mfa(const toml::table& table, MfaConfig* out) const;
  Result<void> load_ca(const toml::node& node, TrustConfig* out,
                       std::map<std::string, const toml::node*>* names) const;
  Result<Target> load_target(const toml::table& table) const;
  Result<void> load_policy(const toml::table& table, PolicyConfig* out) const;
  Result<void> load_audit(const toml::table& table, AuditConfig* out) const;
  Result<void> load_ca(const toml::table& table, CaConfig* out) const;
  Result<void> load_recording(const toml::table& table, RecordingConfig* out) const;
  Result<void> load_terminating(const toml::table& table, TerminatingConfig* out) const;
  // get_size: an integer of bytes or a string with K, M or G, between lo and hi.
  Result<uint64_t> get_size(const toml::node& node, std::string_view key, uint64_t lo,
                            uint64_t hi, std::string_view range) const;
  Result<GroupConfig> load_group(const toml::table& table, const Config& config) const;
  Result<RuleConfig> load_rule(const toml::table& table, const Config& config) const;
  // get_strings: an array of strings (or, with allow_single, one string); each checked by `ok`
  // (which returns an error text, empty when fine).
  Result<std::vector<std::string>> get_strings(
      const toml::node& node, std::string_view key, bool allow_single,
      const std::function<std::string(const std::string&)>& ok) const;

  std::filesystem::path resolve(const std::string& p) const {
    std::filesystem::path path(p);
    if (path.is_relative()) path = base_dir_ / path;
    return path.lexically_normal();
  }

  std::string source_name_;
  std::filesystem::path base_dir_;
};

Result<std::string> Loader::get_string(const toml::node& node, std::string_view key) const {
  const auto* s = node.as_string();
  if (s == nullptr) return wrong_type(node, key, "a string");
  if (s->get().find('\0') != std::string::npos) {
    return error_at(node, fmt::format("{} must not contain a NUL character", key));
  }
  return s->get();
}

Result<int64_t> Loader::get_int(const toml::node& node, std::string_view key, int64_t lo,
                                int64_t hi) const {
  const auto* i = node.as_integer();
  if (i == nullptr) return wrong_type(node, key, "an integer");
  int64_t v = i->get();
  if (v < lo || v > hi) {
    return error_at(node, fmt::format("{} must be between {} and {}, not {}", key, lo, hi, v));
  }
  return v;
}

Result<bool> Loader::get_bool(const toml::node& node, std::string_view key) const {
  const auto* b = node.as_boolean();
  if (b == nullptr) return wrong_type(node, key, "true or false");
  return b->get();
}

Result<seconds> Loader::get_duration(const toml::node& node, std::string_view key, uint64_t lo,
                                     uint64_t hi) const {
  uint64_t value = 0;
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) return error_at(node, fmt::format("{} must not be negative", key));
    if (static_cast<uint64_t>(i->get()) > kMaxDurationSeconds) {
      return error_at(node, fmt::format("{} is too long (at most {})", key,
                                        format_duration(kMaxDurationSeconds)));
    }
    value = static_cast<uint64_t>(i->get());
  } else if (const auto* s = node.as_string()) {
    auto d = parse_duration(s->get());
    if (!d) return error_at(node, fmt::format("{}: {}", key, d.error().message));
    value = static_cast<uint64_t>(d->count());
  } else {
    return wrong_type(node, key, "a duration (seconds, or a string like \"30s\")");
  }
  if (value < lo || value > hi) {
    return error_at(node,
                    fmt::format("{} must be between {} and {}, not {}", key, format_duration(lo),
                                format_duration(hi), format_duration(value)));
  }
  return seconds(static_cast<seconds::rep>(value));
}

Result<std::filesystem::path> Loader::get_path(const toml::node& node, std::string_view key) const {
  auto s = get_string(node, key);
  if (!s) return tl::unexpected(s.error());
  if (s->empty()) return error_at(node, fmt::format("{} must not be empty", key));
  return resolve(*s);
}

Result<const toml::array*> Loader::get_array(const toml::node& node, std::string_view key,
                                             bool allow_empty) const {
  const auto* a = node.as_array();
  if (a == nullptr) return wrong_type(node, key, "an array");
  if (!allow_empty && a->empty()) return error_at(node, fmt::format("{} must not be empty", key));
  return a;
}

Result<void> Loader::load_server(const toml::table& table, ServerConfig* out) const {
  // A unix socket path fits sockaddr_un's 108 bytes with its terminating NUL.
  constexpr size_t kMaxSocketPath = 107;
  // A group name as useradd(8) takes it, and nothing a log line or a shell would misread.
  const auto valid_group_name = [](std::string_view g) {
    return !g.empty() && g.size() <= 32 && g.front() != '-' &&
           std::all_of(g.begin(), g.end(), [](char c) {
             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
           });
  };
  bool have_state_dir = false;
  bool have_listen = false;
  const toml::node* host_keys = nullptr;
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("server.{}", k);
    if (k == "name") {
      auto v = get_string(node, name);
      if (!v) return tl::unexpected(v.error());
      if (!valid_gateway_name(*v)) {
        return error_at(node, "server.name must be 1-64 characters of letters, digits, '.', '-' "
                              "and '_'");
      }
      out->name = std::move(*v);
    } else if (k == "listen") {
      auto a = get_array(node, name, false);
      if (!a) return tl::unexpected(a.error());
      for (const toml::node& item : **a) {
        auto s = get_string(item, name + " entries");
        if (!s) return tl::unexpected(s.error());
        auto addr = parse_listen_address(*s);
        if (!addr) return error_at(item, addr.error().message);
        for (const ListenAddress& prev : out->listen) {
          if (prev.host == addr->host && prev.port == addr->port) {
            return error_at(item, fmt::format("duplicate listen address {}", addr->to_string()));
          }
        }
        out->listen.push_back(std::move(*addr));
      }
      have_listen = true;
    } else if (k == "host_keys") {
      host_keys = &node;  // resolved after state_dir, whose default it depends on
    } else if (k == "state_dir") {
      auto p = get_path(node, name);
      if (!p) return tl::unexpected(p.error());
      out->state_dir = std::move(*p);
      have_state_dir = true;
    } else if (k == "login_grace_time") {
      auto d = get_duration(node, name, 1, 600);
      if (!d) return tl::unexpected(d.error());
      out->login_grace_time = *d;
    } else if (k == "max_auth_tries") {
      auto v = get_int(node, name, 1, 100);
      if (!v) return tl::unexpected(v.error());
      out->max_auth_tries = static_cast<int>(*v);
    } else if (k == "max_startups") {
      auto v = get_int(node, name, 1, 1'000'000);
      if (!v) return tl::unexpected(v.error());
      out->max_startups = static_cast<int>(*v);
    } else if (k == "max_sessions") {
      auto v = get_int(node, name, 1, 1'000'000);
      if (!v) return tl::unexpected(v.error());
      out->max_sessions = static_cast<int>(*v);
    } else if (k == "max_channels_per_connection") {
      auto v = get_int(node, name, 1, 1000);
      if (!v) return tl::unexpected(v.error());
      out->max_channels_per_connection = static_cast<int>(*v);
    } else if (k == "workers") {
      auto v = get_int(node, name, 0, 1024);
      if (!v) return tl::unexpected(v.error());
      out->workers = static_cast<int>(*v);
    } else if (k == "connect_timeout") {
      auto d = get_duration(node, name, 1, 3600);
      if (!d) return tl::unexpected(d.error());
      out->connect_timeout = *d;
    } else if (k == "drain_timeout") {
      auto d = get_duration(node, name, 0, 86400);
      if (!d) return tl::unexpected(d.error());
      out->drain_timeout = *d;
    } else if (k == "idle_timeout") {
      auto d = get_duration(node, name, 0, kMaxDurationSeconds);
      if (!d) return tl::unexpected(d.error());
      out->idle_timeout = *d;
    } else if (k == "control_socket") {
      auto p = get_path(node, name);
      if (!p) return tl::unexpected(p.error());
      if (p->string().size() > kMaxSocketPath) {
        return error_at(node, fmt::format("server.control_socket is too long for a unix socket "
                                          "(at most {} bytes)",
                                          kMaxSocketPath));
      }
      out->control_socket = std::move(*p);
    } else if (k == "admin_group") {
      auto v = get_string(node, name);
      if (!v) return tl::unexpected(v.error());
      if (!valid_group_name(*v)) {
        return error_at(node,
                        "server.admin_group must be a group name: 1-32 characters of "
                        "letters, digits, '.', '-' and '_', not starting with '-'");
      }
      out->admin_group = std::move(*v);
    } else {
      return error_at(
          key.source(),
          fmt::format("unknown key \"{}\" in [server]{}", k,
                      suggestion(k, {"name", "listen", "host_keys", "state_dir", "login_grace_time",
                                     "max_auth_tries", "max_startups", "max_sessions",
                                     "max_channels_per_connection", "workers", "connect_timeout",
                                     "drain_timeout", "idle_timeout", "control_socket",
                                     "admin_group"})));
    }
  }
  if (!have_listen) return error_at(table, "[server] is missing the required key \"listen\"");
  if (!have_state_dir) out->state_dir = "/var/lib/touchgate";
  if (out->name.empty()) out->name = default_gateway_name();
  if (host_keys != nullptr) {
    auto a = get_array(*host_keys, "server.host_keys", false);
    if (!a) return tl::unexpected(a.error());
    for (const toml::node& item : **a) {
      auto p = get_path(item, "server.host_keys entries");
      if (!p) return tl::unexpected(p.error());
      if (std::find(out->host_keys.begin(), out->host_keys.end(), *p) != out->host_keys.end()) {
        return error_at(item, fmt::format("duplicate host key file {}", p->string()));
      }
      out->host_keys.push_back(std::move(*p));
    }
  } else {
    out->host_keys.push_back(out->state_dir / "ssh_host_ed25519_key");
  }
  if (out->control_socket.empty()) out->control_socket = out->state_dir / "control.sock";
  return {};
}

Result<void> Loader::load_ca(const toml::node& node, TrustConfig* out,
                             std::map<std::string, const toml::node*>* names) const {
  TrustConfig::CaFile ca;
  const toml::node* name_node = &node;
  bool named = false;
  if (node.is_string()) {
    auto p = get_path(node, "trust.user_ca_keys entries");
    if (!p) return tl::unexpected(p.error());
    ca.path = std::move(*p);
  } else if (const auto* t = node.as_table()) {
    bool have_path = false;
    for (auto&& [key, value] : *t) {
      const std::string_view k = key.str();
      if (k == "name") {
        auto s = get_string(value, "trust.user_ca_keys name");
        if (!s) return tl::unexpected(s.error());
        if (!valid_name(*s)) {
          return error_at(
              value, fmt::format("invalid CA name \"{}\": use 1 to {} of A-Z a-z 0-9 . _ -", *s,
                                 kMaxNameLength));
        }
        ca.name = std::move(*s);
        name_node = &value;
        named = true;
      } else if (k == "path") {
        auto p = get_path(value, "trust.user_ca_keys path");
        if (!p) return tl::unexpected(p.error());
        ca.path = std::move(*p);
        have_path = true;
      } else {
        return error_at(key.source(), fmt::format("unknown key \"{}\" in a user_ca_keys entry "
                                                  "(allowed: name, path){}",
                                                  k, suggestion(k, {"name", "path"})));
      }
    }
    if (!have_path)
      return error_at(node, "user_ca_keys entry is missing the required key \"path\"");
  } else {
    return wrong_type(node, "trust.user_ca_keys entries", "a path string or { name, path } table");
  }
  if (!named) {
    ca.name = ca.path.stem().string();
    if (!valid_name(ca.name)) {
      return error_at(node, fmt::format("the file name of {} is not a valid CA name; give one with "
                                        "{{ name = \"...\", path = \"...\" }}",
                                        ca.path.string()));
    }
  }
  auto [it, inserted] = names->emplace(ca.name, name_node);
  if (!inserted) {
    return error_at(*name_node,
                    fmt::format("duplicate CA name \"{}\" (first at line {}); give each "
                                "file its own name = \"...\"",
                                ca.name, it->second->source().begin.line));
  }
  ca.origin = origin(node);
  out->user_ca_keys.push_back(std::move(ca));
  return {};
}

Result<void> Loader::load_trust(const toml::table& table, TrustConfig* out) const {
  bool have_cas = false;
  std::map<std::string, const toml::node*> names;
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("trust.{}", k);
    if (k == "user_ca_keys") {
      auto a = get_array(node, name, false);
      if (!a) return tl::unexpected(a.error());
      for (const toml::node& item : **a) {
        auto r = load_ca(item, out, &names);
        if (!r) return r;
      }
      have_cas = true;
    } else if (k == "revoked_keys") {
      auto p = get_path(node, name);
      if (!p) return tl::unexpected(p.error());
      out->revoked_keys = std::move(*p);
      out->revoked_keys_origin = origin(node);
    } else if (k == "max_cert_lifetime") {
      auto d = get_duration(node, name, 0, kMaxDurationSeconds);
      if (!d) return tl::unexpected(d.error());
      out->max_cert_lifetime = *d;
    } else if (k == "clock_skew") {
      auto d = get_duration(node, name, 0, 3600);
      if (!d) return tl::unexpected(d.error());
      out->clock_skew = *d;
    } else if (k == "allow_ssh_rsa_sha1") {
      auto b = get_bool(node, name);
      if (!b) return tl::unexpected(b.error());
      out->allow_ssh_rsa_sha1 = *b;
    } else if (k == "permit_force_command") {
      auto b = get_bool(node, name);
      if (!b) return tl::unexpected(b.error());
      out->permit_force_command = *b;
    } else {
      return error_at(
          key.source(),
          fmt::format("unknown key \"{}\" in [trust]{}", k,
                      suggestion(k, {"user_ca_keys", "revoked_keys", "max_cert_lifetime",
                                     "clock_skew", "allow_ssh_rsa_sha1", "permit_force_command"})));
    }
  }
  if (!have_cas) return error_at(table, "[trust] is missing the required key \"user_ca_keys\"");
  return {};
}

Result<Target> Loader::load_target(const toml::table& table) const {
  Target out;
  bool have_name = false, have_address = false;
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("target.{}", k);
    if (k == "name") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (!valid_name(*s)) {
        return error_at(
            node, fmt::format("invalid target name \"{}\": use 1 to {} of A-Z a-z 0-9 . _ -", *s,
                              kMaxNameLength));
      }
      out.name = std::move(*s);
      have_name = true;
    } else if (k == "address") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      auto addr = parse_target_address(*s);
      if (!addr) return error_at(node, addr.error().message);
      out.host = std::move(addr->host);
      out.port = addr->port;
      have_address = true;
    } else if (k == "tags") {
      auto a = get_array(node, name, true);
      if (!a) return tl::unexpected(a.error());
      for (const toml::node& item : **a) {
        auto s = get_string(item, "target.tags entries");
        if (!s) return tl::unexpected(s.error());
        if (!valid_name(*s)) {
          return error_at(item, fmt::format("invalid tag \"{}\": use 1 to {} of A-Z a-z 0-9 . _ -",
                                            *s, kMaxNameLength));
        }
        if (std::find(out.tags.begin(), out.tags.end(), *s) != out.tags.end()) {
          return error_at(item, fmt::format("duplicate tag \"{}\"", *s));
        }
        out.tags.push_back(std::move(*s));
      }
    } else if (k == "host_key") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      auto line = ssh::parse_key_line(*s);
      if (!line) {
        return error_at(node, fmt::format("target.host_key must be an OpenSSH public key line "
                                          "(\"ssh-ed25519 AAAA...\"): {}",
                                          line.error().message));
      }
      out.host_key = std::move(line->blob);
    } else if (k == "trust_on_first_use") {
      auto b = get_bool(node, name);
      if (!b) return tl::unexpected(b.error());
      out.trust_on_first_use = *b;
    } else {
      return error_at(key.source(),
                      fmt::format("unknown key \"{}\" in [[target]]{}", k,
                                  suggestion(k, {"name", "address", "tags", "host_key",
                                                 "trust_on_first_use"})));
    }
  }
  if (!have_name) return error_at(table, "[[target]] is missing the required key \"name\"");
  if (!out.host_key.empty() && out.trust_on_first_use) {
    return error_at(table, fmt::format("target \"{}\" has a pinned host_key and trust_on_first_use: "
                                       "choose one",
                                       out.name));
  }
  if (!have_address) {
    return error_at(table,
                    fmt::format("target \"{}\" is missing the required key \"address\"", out.name));
  }
  return out;
}

Result<void> Loader::load_mfa(const toml::table& table, MfaConfig* out) const {
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("mfa.{}", k);
    if (k == "touch_timeout") {
      auto d = get_duration(node, name, 1, 600);
      if (!d) return tl::unexpected(d.error());
      out->touch_timeout = *d;
    } else if (k == "max_age") {
      auto d = get_duration(node, name, 0, 86400);
      if (!d) return tl::unexpected(d.error());
      out->max_age = *d;
    } else if (k == "require_pin") {
      auto b = get_bool(node, name);
      if (!b) return tl::unexpected(b.error());
      out->require_pin = *b;
    } else if (k == "prefer") {
      auto a = get_array(node, name, false);
      if (!a) return tl::unexpected(a.error());
      std::vector<std::string> kinds;
      for (const toml::node& item : **a) {
        auto s = get_string(item, name + " entries");
        if (!s) return tl::unexpected(s.error());
        if (*s != "fido2" && *s != "piv") {
          return error_at(item, fmt::format("unknown key kind \"{}\" in mfa.prefer (allowed: "
                                            "fido2, piv)",
                                            *s));
        }
        if (std::find(kinds.begin(), kinds.end(), *s) != kinds.end()) {
          return error_at(item, fmt::format("duplicate key kind \"{}\" in mfa.prefer", *s));
        }
        kinds.push_back(std::move(*s));
      }
      out->prefer = std::move(kinds);
    } else {
      return error_at(key.source(),
                      fmt::format("unknown key \"{}\" in [mfa]{}", k,
                                  suggestion(k, {"touch_timeout", "max_age", "require_pin",
                                                 "prefer"})));
    }
  }
  return {};
}

Result<std::vector<std::string>> Loader::get_strings(
    const toml::node& node, std::string_view key, bool allow_single,
    const std::function<std::string(const std::string&)>& ok) const {
  std::vector<std::string> out;
  auto check = [&](const toml::node& item) -> Result<void> {
    auto s = get_string(item, allow_single ? key : fmt::format("{} entries", key));
    if (!s) return tl::unexpected(s.error());
    std::string why = ok(*s);
    if (!why.empty()) return error_at(item, fmt::format("{}: {}", key, why));
    out.push_back(std::move(*s));
    return {};
  };
  if (allow_single && node.is_string()) {
    if (auto r = check(node); !r) return tl::unexpected(r.error());
    return out;
  }
  const auto* a = node.as_array();
  if (a == nullptr) {
    return wrong_type(node, key, allow_single ? "a string or an array of strings" : "an array");
  }
  if (a->size() > 10000) return error_at(node, fmt::format("{} has too many entries", key));
  for (const toml::node& item : *a) {
    if (auto r = check(item); !r) return tl::unexpected(r.error());
  }
  return out;
}

Result<void> Loader::load_policy(const toml::table& table, PolicyConfig* out) const {
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    if (k == "reevaluate") {
      auto b = get_bool(node, "policy.reevaluate");
      if (!b) return tl::unexpected(b.error());
      out->reevaluate = *b;
    } else {
      return error_at(key.source(), fmt::format("unknown key \"{}\" in [policy]{}", k,
                                                suggestion(k, {"reevaluate"})));
    }
  }
  return {};
}

Result<uint64_t> Loader::get_size(const toml::node& node, std::string_view key, uint64_t lo,
                                  uint64_t hi, std::string_view range) const {
  uint64_t bytes = 0;
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) return error_at(node, fmt::format("{} must not be negative", key));
    bytes = static_cast<uint64_t>(i->get());
  } else if (const auto* s = node.as_string()) {
    const std::string& t = s->get();
    size_t digits = 0;
    while (digits < t.size() && digits < 12 && t[digits] >= '0' && t[digits] <= '9') ++digits;
    const std::string unit = t.substr(digits);
    const uint64_t mult = unit.empty() ? 1 : unit == "K" ? 1ull << 10 : unit == "M" ? 1ull << 20
                          : unit == "G" ? 1ull << 30 : 0;
    if (digits == 0 || digits > 11 || mult == 0) {
      return error_at(node, fmt::format("{}: \"{}\" is not a size (write e.g. \"64M\", \"1G\" or "
                                        "a number of bytes)",
                                        key, t));
    }
    bytes = std::stoull(t.substr(0, digits)) * mult;
  } else {
    return wrong_type(node, key, "a size (bytes, or a string like \"64M\")");
  }
  if (bytes < lo || bytes > hi) {
    return error_at(node, fmt::format("{} must be between {}", key, range));
  }
  return bytes;
}

Result<void> Loader::load_ca(const toml::table& table, CaConfig* out) const {
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("ca.{}", k);
    if (k == "pkcs11_uri") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (s->rfind("pkcs11:", 0) != 0) {
        return error_at(node, fmt::format("{} must be a PKCS#11 URI (\"pkcs11:token=...;object=...\")",
                                          name));
      }
      if (s->find("pin-value") != std::string::npos) {
        return error_at(node, fmt::format("{}: a PIN never goes into the configuration; put it in "
                                          "the file named by ca.pin_file",
                                          name));
      }
      // Parsed whole now, so that a mistake is named with its line, not at the first login.
      auto uri = pkcs11::parse_uri(*s);
      if (!uri) return error_at(node, fmt::format("{}: {}", name, uri.error().message));
      if (uri->module_name) {
        return error_at(node, fmt::format("{}: module-name is not resolved; give the module's "
                                          "path in ca.pkcs11_module",
                                          name));
      }
      out->pkcs11_uri = std::move(*s);
    } else if (k == "pkcs11_module" || k == "pin_file" || k == "key_file") {
      auto p = get_path(node, name);
      if (!p) return tl::unexpected(p.error());
      (k == "pkcs11_module" ? out->pkcs11_module : k == "pin_file" ? out->pin_file : out->key_file) =
          *p;
    } else if (k == "cert_lifetime") {
      auto d = get_duration(node, name, 10, 600);
      if (!d) return tl::unexpected(d.error());
      out->cert_lifetime = *d;
    } else {
      return error_at(key.source(),
                      fmt::format("unknown key \"{}\" in [ca]{}", k,
                                  suggestion(k, {"pkcs11_uri", "pkcs11_module", "pin_file",
                                                 "key_file", "cert_lifetime"})));
    }
  }
  if (!out->pkcs11_uri.empty() && !out->key_file.empty()) {
    return error_at(table, "[ca] takes either pkcs11_uri (a key in a token) or key_file (a key "
                           "file, the fallback), not both");
  }
  if (!out->pkcs11_uri.empty() && out->pin_file.empty()) {
    return error_at(table, "[ca] pkcs11_uri needs pin_file (the file holding the token's PIN)");
  }
  if (out->pkcs11_uri.empty() && out->key_file.empty()) {
    return error_at(table, "[ca] needs pkcs11_uri (a key in a PKCS#11 token) or key_file");
  }
  return {};
}

Result<void> Loader::load_recording(const toml::table& table, RecordingConfig* out) const {
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("recording.{}", k);
    if (k == "dir") {
      auto p = get_path(node, name);
      if (!p) return tl::unexpected(p.error());
      out->dir = *p;
    } else if (k == "max_size") {
      auto bytes = get_size(node, name, 1ull << 20, 64ull << 30, "1M and 64G");
      if (!bytes) return tl::unexpected(bytes.error());
      out->max_size = *bytes;
    } else if (k == "on_cap") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (*s != "stop" && *s != "end") {
        return error_at(node, fmt::format("{} must be \"stop\" (stop recording) or \"end\" (end "
                                          "the session), not \"{}\"",
                                          name, *s));
      }
      out->end_session_on_cap = *s == "end";
    } else {
      return error_at(key.source(), fmt::format("unknown key \"{}\" in [recording]{}", k,
                                                suggestion(k, {"dir", "max_size", "on_cap"})));
    }
  }
  return {};
}

Result<void> Loader::load_terminating(const toml::table& table, TerminatingConfig* out) const {
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("terminating.{}", k);
    if (k == "env") {
      auto v = get_strings(node, name, false, [](const std::string& e) {
        const std::string_view base =
            e.size() > 1 && e.back() == '*' ? std::string_view(e).substr(0, e.size() - 1) : e;
        const bool ok = !base.empty() && base.size() <= 64 &&
                        std::all_of(base.begin(), base.end(), [](char c) {
                          return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                 (c >= '0' && c <= '9') || c == '_';
                        });
        return ok ? std::string()
                  : fmt::format("\"{}\" is not a variable name (letters, digits, _; a final * "
                                "for a prefix)",
                                e);
      });
      if (!v) return tl::unexpected(v.error());
      out->env = std::move(*v);
    } else if (k == "known_hosts") {
      auto p = get_path(node, name);
      if (!p) return tl::unexpected(p.error());
      out->known_hosts = *p;
    } else {
      return error_at(key.source(), fmt::format("unknown key \"{}\" in [terminating]{}", k,
                                                suggestion(k, {"env", "known_hosts"})));
    }
  }
  return {};
}

Result<void> Loader::load_audit(const toml::table& table, AuditConfig* out) const {
  bool uri_names_module = false;
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("audit.{}", k);
    if (k == "dir" || k == "key" || k == "syslog_socket" || k == "pkcs11_module" ||
        k == "pin_file") {
      auto p = get_path(node, name);
      if (!p) return tl::unexpected(p.error());
      (k == "dir"             ? out->dir
       : k == "key"           ? out->key
       : k == "pkcs11_module" ? out->pkcs11_module
       : k == "pin_file"      ? out->pin_file
                              : out->syslog_socket) = *p;
    } else if (k == "pkcs11_uri") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (s->find("pin-value") != std::string::npos) {
        return error_at(node, fmt::format("{}: a PIN never goes into the configuration; put it in "
                                          "the file named by audit.pin_file",
                                          name));
      }
      auto uri = pkcs11::parse_uri(*s);
      if (!uri) return error_at(node, fmt::format("{}: {}", name, uri.error().message));
      if (uri->module_name) {
        return error_at(node, fmt::format("{}: module-name is not resolved; give the module's "
                                          "path in audit.pkcs11_module",
                                          name));
      }
      uri_names_module = uri->module_path.has_value();
      out->pkcs11_uri = std::move(*s);
    } else if (k == "max_segment_size") {
      auto bytes = get_size(node, name, 1ull << 20, 16ull << 30, "1M and 16G");
      if (!bytes) return tl::unexpected(bytes.error());
      out->max_segment_size = *bytes;
    } else if (k == "max_segment_age") {
      auto d = get_duration(node, name, 60, 30 * 86400);
      if (!d) return tl::unexpected(d.error());
      out->max_segment_age = *d;
    } else if (k == "checkpoint_every") {
      auto i = get_int(node, name, 1, 1000000);
      if (!i) return tl::unexpected(i.error());
      out->checkpoint_every = static_cast<uint64_t>(*i);
    } else if (k == "checkpoint_interval") {
      auto d = get_duration(node, name, 1, 86400);
      if (!d) return tl::unexpected(d.error());
      out->checkpoint_interval = *d;
    } else if (k == "on_failure") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (*s != "deny" && *s != "continue") {
        return error_at(node, fmt::format("{} must be \"deny\" or \"continue\", not \"{}\"", name,
                                          *s));
      }
      out->deny_on_failure = *s == "deny";
    } else if (k == "syslog") {
      auto b = get_bool(node, name);
      if (!b) return tl::unexpected(b.error());
      out->syslog = *b;
    } else if (k == "syslog_facility") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      static constexpr std::string_view kFacilities[] = {
          "auth", "authpriv", "daemon", "local0", "local1", "local2",
          "local3", "local4", "local5", "local6", "local7"};
      if (std::find(std::begin(kFacilities), std::end(kFacilities), *s) == std::end(kFacilities)) {
        return error_at(node, fmt::format("{}: unknown facility \"{}\" (allowed: auth, authpriv, "
                                          "daemon, local0 .. local7)",
                                          name, *s));
      }
      out->syslog_facility = *s;
    } else {
      return error_at(
          key.source(),
          fmt::format("unknown key \"{}\" in [audit]{}", k,
                      suggestion(k, {"dir", "key", "pkcs11_uri", "pkcs11_module", "pin_file",
                                     "max_segment_size", "max_segment_age", "checkpoint_every",
                                     "checkpoint_interval", "on_failure", "syslog", "syslog_socket",
                                     "syslog_facility"})));
    }
  }
  // The key: a file or a token, never both; the token's settings only with a token.
  const auto at = [&table](std::string_view key) -> const toml::node& {
    const toml::node* n = table.get(key);
    return n != nullptr ? *n : static_cast<const toml::node&>(table);
  };
  if (!out->pkcs11_uri.empty() && !out->key.empty()) {
    return error_at(at("pkcs11_uri"),
                    "[audit] takes either key (a key file) or pkcs11_uri (a key in a PKCS#11 "
                    "token), not both");
  }
  if (!out->pkcs11_uri.empty() && out->pin_file.empty()) {
    return error_at(at("pkcs11_uri"),
                    "[audit] pkcs11_uri needs pin_file (the file holding the token's PIN)");
  }
  if (!out->pkcs11_uri.empty() && out->pkcs11_module.empty() && !uri_names_module) {
    return error_at(at("pkcs11_uri"),
                    "[audit] pkcs11_uri needs pkcs11_module (the PKCS#11 module's path), or "
                    "module-path in the URI");
  }
  if (out->pkcs11_uri.empty() && (!out->pkcs11_module.empty() || !out->pin_file.empty())) {
    return error_at(at(out->pin_file.empty() ? "pkcs11_module" : "pin_file"),
                    "[audit] pkcs11_module and pin_file belong to a key in a token: set "
                    "pkcs11_uri too, or remove them");
  }
  return {};
}

namespace {

// Principals and key ids: printable ASCII without spaces or commas, 1..256 characters.
std::string check_principal(const std::string& s) {
  if (s.empty() || s.size() > 256) return fmt::format("\"{}\" must be 1 to 256 characters", s);
  for (char c : s) {
    if (c <= ' ' || c > '~' || c == ',') {
      return fmt::format("\"{}\" contains a space, comma or control character", s);
    }
  }
  return {};
}

std::string check_key_id_glob(const std::string& s) {
  if (s.empty() || s.size() > 256) return fmt::format("\"{}\" must be 1 to 256 characters", s);
  for (char c : s) {
    if (static_cast<unsigned char>(c) < ' ' || c == 0x7f) {
      return fmt::format("\"{}\" contains a control character", s);
    }
  }
  return {};
}

bool is_glob(std::string_view s) { return s.find_first_of("*?") != std::string_view::npos; }

// A target pattern: name characters plus * and ?.
bool valid_target_glob(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameLength && std::all_of(s.begin(), s.end(), [](char c) {
    return is_name_char(c) || c == '*' || c == '?';
  });
}

// A host pattern: DNS characters plus * and ? (matched without regard to case).
bool valid_host_glob(std::string_view s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == '*' || c == '?';
  });
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace

Result<GroupConfig> Loader::load_group(const toml::table& table, const Config& config) const {
  GroupConfig out;
  out.line = static_cast<int>(table.source().begin.line);
  bool have_name = false;
  const toml::node* value_node = nullptr;
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("group.{}", k);
    if (k == "name") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (!valid_name(*s)) {
        return error_at(node, fmt::format("invalid group name \"{}\": use 1 to {} of A-Z a-z 0-9 "
                                          ". _ -",
                                          *s, kMaxNameLength));
      }
      out.name = std::move(*s);
      have_name = true;
    } else if (k == "principals") {
      auto v = get_strings(node, name, false, check_principal);
      if (!v) return tl::unexpected(v.error());
      out.principals = std::move(*v);
    } else if (k == "key_ids") {
      auto v = get_strings(node, name, false, check_key_id_glob);
      if (!v) return tl::unexpected(v.error());
      out.key_ids = std::move(*v);
    } else if (k == "extension") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (std::string why = check_principal(*s); !why.empty()) {
        return error_at(node, fmt::format("{}: {}", name, why));
      }
      out.extension = std::move(*s);
    } else if (k == "cas") {
      auto v = get_strings(node, name, false, [&config](const std::string& s) {
        for (const auto& ca : config.trust.user_ca_keys) {
          if (ca.name == s) return std::string();
        }
        return fmt::format("unknown CA \"{}\" (not a name in [trust] user_ca_keys)", s);
      });
      if (!v) return tl::unexpected(v.error());
      if (v->empty()) return error_at(node, "group.cas must not be empty (leave it out for any CA)");
      out.cas = std::move(*v);
    } else if (k == "extension_value") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (s->empty() || s->find(',') != std::string::npos || s->size() > 256) {
        return error_at(node, "group.extension_value must be 1 to 256 characters without a comma");
      }
      out.extension_value = std::move(*s);
      value_node = &node;
    } else {
      return error_at(key.source(),
                      fmt::format("unknown key \"{}\" in [[group]]{}", k,
                                  suggestion(k, {"name", "principals", "key_ids", "extension",
                                                 "extension_value", "cas"})));
    }
  }
  if (!have_name) return error_at(table, "[[group]] is missing the required key \"name\"");
  if (value_node != nullptr && out.extension.empty()) {
    return error_at(*value_node, "group.extension_value needs group.extension");
  }
  if (out.principals.empty() && out.key_ids.empty() && out.extension.empty()) {
    return error_at(table, fmt::format("group \"{}\" has no members: give principals, key_ids or "
                                       "extension",
                                       out.name));
  }
  if (!out.extension.empty() && out.extension_value.empty()) out.extension_value = out.name;
  return out;
}

Result<RuleConfig> Loader::load_rule(const toml::table& table, const Config& config) const {
  RuleConfig out;
  out.line = static_cast<int>(table.source().begin.line);
  bool have_id = false;
  const toml::node* factor_node = nullptr;
  const toml::node* max_age_node = nullptr;
  const toml::node* max_session_node = nullptr;
  const toml::node* window_node = nullptr;
  for (auto&& [key, node] : table) {
    const std::string_view k = key.str();
    const std::string name = fmt::format("rule.{}", k);
    Result<void> r;
    if (k == "id") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (!valid_name(*s)) {
        return error_at(node, fmt::format("invalid rule id \"{}\": use 1 to {} of A-Z a-z 0-9 . _ "
                                          "-",
                                          *s, kMaxNameLength));
      }
      out.id = std::move(*s);
      have_id = true;
    } else if (k == "effect") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (*s != "allow" && *s != "deny") {
        return error_at(node, fmt::format("rule.effect must be \"allow\" or \"deny\", not \"{}\"", *s));
      }
      out.allow = *s == "allow";
    } else if (k == "principals") {
      auto v = get_strings(node, name, false, [](const std::string& s) {
        if (s == "*") return std::string();
        if (is_glob(s)) return fmt::format("\"{}\": only exact names or \"*\" (everyone)", s);
        return check_principal(s);
      });
      if (!v) return tl::unexpected(v.error());
      out.principals = std::move(*v);
    } else if (k == "groups") {
      auto v = get_strings(node, name, false, [&config](const std::string& s) {
        for (const auto& g : config.groups) {
          if (iequals(g.name, s)) return std::string();
        }
        return fmt::format("unknown group \"{}\" (no [[group]] has that name)", s);
      });
      if (!v) return tl::unexpected(v.error());
      out.groups = std::move(*v);
    } else if (k == "cas") {
      auto v = get_strings(node, name, false, [&config](const std::string& s) {
        for (const auto& ca : config.trust.user_ca_keys) {
          if (ca.name == s) return std::string();
        }
        return fmt::format("unknown CA \"{}\" (not a name in [trust] user_ca_keys)", s);
      });
      if (!v) return tl::unexpected(v.error());
      out.cas = std::move(*v);
    } else if (k == "targets") {
      auto v = get_strings(node, name, false, [&config](const std::string& s) {
        if (s.rfind("tag:", 0) == 0) {
          std::string tag = s.substr(4);
          if (!valid_name(tag)) return fmt::format("invalid tag in \"{}\"", s);
          for (const auto& t : config.targets) {
            if (std::find(t.tags.begin(), t.tags.end(), tag) != t.tags.end()) return std::string();
          }
          return fmt::format("no [[target]] has the tag \"{}\"", tag);
        }
        if (is_glob(s)) {
          return valid_target_glob(s) ? std::string()
                                      : fmt::format("invalid target pattern \"{}\"", s);
        }
        for (const auto& t : config.targets) {
          if (iequals(t.name, s)) return std::string();
        }
        return fmt::format("unknown target \"{}\" (no [[target]] has that name; use hosts for "
                           "destinations that are not configured)",
                           s);
      });
      if (!v) return tl::unexpected(v.error());
      out.targets = std::move(*v);
    } else if (k == "hosts") {
      auto v = get_strings(node, name, false, [](const std::string& s) {
        if (s.find('/') != std::string::npos || ssh::IpAddress::parse(s)) {
          auto c = ssh::Cidr::parse(s);
          return c ? std::string() : fmt::format("invalid network \"{}\": {}", s, c.error().message);
        }
        return valid_host_glob(s) ? std::string()
                                  : fmt::format("invalid host pattern \"{}\" (a host name, a "
                                                "pattern like *.prod.example.com, or a CIDR)",
                                                s);
      });
      if (!v) return tl::unexpected(v.error());
      for (auto& h : *v) h = lower(std::move(h));
      out.hosts = std::move(*v);
    } else if (k == "ports") {
      const auto* a = node.as_array();
      if (a == nullptr) return wrong_type(node, name, "an array of ports or \"from-to\" ranges");
      for (const toml::node& item : *a) {
        uint16_t lo = 0, hi = 0;
        if (const auto* i = item.as_integer()) {
          if (i->get() < 1 || i->get() > 65535) {
            return error_at(item, fmt::format("rule.ports: {} is not a port (1-65535)", i->get()));
          }
          lo = hi = static_cast<uint16_t>(i->get());
        } else if (const auto* str = item.as_string()) {
          std::string_view t = str->get();
          size_t dash = t.find('-');
          bool good = dash == std::string_view::npos
                          ? parse_port(t, &lo) && (hi = lo, true)
                          : parse_port(t.substr(0, dash), &lo) && parse_port(t.substr(dash + 1), &hi);
          if (!good || lo > hi) {
            return error_at(item, fmt::format("rule.ports: invalid port range \"{}\" (use \"2200-2299\")",
                                              t));
          }
        } else {
          return wrong_type(item, "rule.ports entries", "a port or a \"from-to\" string");
        }
        out.ports.emplace_back(lo, hi);
      }
    } else if (k == "actions") {
      auto v = get_strings(node, name, true, [](const std::string& s) {
        return parse_action(s) ? std::string()
                               : fmt::format("unknown action \"{}\" (jump, shell, exec, sftp)", s);
      });
      if (!v) return tl::unexpected(v.error());
      if (v->empty()) return error_at(node, "rule.actions must not be empty");
      out.actions = 0;
      for (const auto& s : *v) out.actions |= static_cast<uint8_t>(*parse_action(s));
    } else if (k == "factor") {
      auto v = get_strings(node, name, true, [](const std::string& s) {
        return parse_factor(s) ? std::string()
                               : fmt::format("unknown factor \"{}\" (touch, piv, touch+pin, "
                                             "piv-attested-touch, fido2-attested)",
                                             s);
      });
      if (!v) return tl::unexpected(v.error());
      if (v->empty()) return error_at(node, "rule.factor must not be empty");
      out.factors = 0;
      for (const auto& s : *v) out.factors |= static_cast<uint8_t>(*parse_factor(s));
      factor_node = &node;
    } else if (k == "max_age") {
      auto d = get_duration(node, name, 0, 86400);
      if (!d) return tl::unexpected(d.error());
      out.max_age = *d;
      max_age_node = &node;
    } else if (k == "max_session") {
      auto d = get_duration(node, name, 0, 30 * 86400);
      if (!d) return tl::unexpected(d.error());
      out.max_session = *d;
      max_session_node = &node;
    } else if (k == "days") {
      auto v = get_strings(node, name, false, [](const std::string&) { return std::string(); });
      if (!v) return tl::unexpected(v.error());
      if (v->empty()) return error_at(node, "rule.days must not be empty (leave it out for every day)");
      out.days = std::move(*v);
      window_node = &node;
    } else if (k == "hours") {
      auto v = get_strings(node, name, true, [](const std::string&) { return std::string(); });
      if (!v) return tl::unexpected(v.error());
      if (v->empty()) return error_at(node, "rule.hours must not be empty (leave it out for all day)");
      out.hours = std::move(*v);
      if (window_node == nullptr) window_node = &node;
    } else if (k == "timezone") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      out.timezone = std::move(*s);
      if (window_node == nullptr) window_node = &node;
    } else if (k == "from") {
      auto v = get_strings(node, name, false, [](const std::string& s) {
        auto c = ssh::Cidr::parse(s);
        return c ? std::string() : fmt::format("invalid network \"{}\": {}", s, c.error().message);
      });
      if (!v) return tl::unexpected(v.error());
      if (v->empty()) return error_at(node, "rule.from must not be empty (leave it out for anywhere)");
      out.from = std::move(*v);
    } else if (k == "remote_user") {
      auto s = get_string(node, name);
      if (!s) return tl::unexpected(s.error());
      if (std::string why = check_principal(*s); !why.empty()) {
        return error_at(node, fmt::format("rule.remote_user: {}", why));
      }
      out.remote_user = std::move(*s);
    } else if (k == "record_input") {
      auto b = get_bool(node, name);
      if (!b) return tl::unexpected(b.error());
      out.record_input = *b;
    } else {
      return error_at(key.source(),
                      fmt::format("unknown key \"{}\" in [[rule]]{}", k,
                                  suggestion(k, {"id", "effect", "principals", "groups", "cas",
                                                 "targets", "hosts", "ports", "actions", "factor",
                                                 "max_age", "max_session", "days", "hours",
                                                 "timezone", "from", "remote_user",
                                                 "record_input"})));
    }
  }
  if (!have_id) return error_at(table, "[[rule]] is missing the required key \"id\"");
  if (out.principals.empty() && out.groups.empty()) {
    return error_at(table, fmt::format("rule \"{}\" names no subjects: give principals and/or groups "
                                       "(principals = [\"*\"] for everyone)",
                                       out.id));
  }
  if (out.targets.empty() && out.hosts.empty()) {
    return error_at(table, fmt::format("rule \"{}\" names no targets: give targets and/or hosts "
                                       "(targets = [\"*\"] for every configured target)",
                                       out.id));
  }
  if (!out.allow) {
    const toml::node* n = factor_node != nullptr    ? factor_node
                          : max_age_node != nullptr ? max_age_node
                                                    : max_session_node;
    if (n != nullptr) {
      return error_at(*n, fmt::format("rule \"{}\" denies: factor, max_age and max_session "
                                      "apply only to allow rules",
                                      out.id));
    }
  }
  if (window_node != nullptr) {
    auto w = TimeWindow::parse(out.days, out.hours, out.timezone);
    if (!w) return error_at(*window_node, fmt::format("rule \"{}\": {}", out.id, w.error().message));
  }
  return out;
}

Result<Config> Loader::load(const toml::table& root) {
  Config config;
  const toml::table* server = nullptr;
  const toml::table* trust = nullptr;
  const toml::table* mfa = nullptr;
  const toml::table* policy_table = nullptr;
  const toml::table* audit_table = nullptr;
  const toml::table* ca_table = nullptr;
  const toml::table* recording_table = nullptr;
  const toml::table* terminating_table = nullptr;
  const toml::array* target_tables = nullptr;
  const toml::array* group_tables = nullptr;
  const toml::array* rule_tables = nullptr;
  for (auto&& [key, node] : root) {
    const std::string_view k = key.str();
    if (k == "server" || k == "trust" || k == "mfa") {
      const auto* t = node.as_table();
      if (t == nullptr) return error_at(key.source(), fmt::format("{} must be a table [{}]", k, k));
      (k == "server" ? server : k == "trust" ? trust : mfa) = t;
    } else if (k == "policy") {
      policy_table = node.as_table();
      if (policy_table == nullptr) return error_at(key.source(), "policy must be a table [policy]");
    } else if (k == "target" || k == "group" || k == "rule") {
      const auto* a = node.as_array();
      if (a == nullptr || !a->is_array_of_tables()) {
        return error_at(key.source(), fmt::format("{}s must be written as [[{}]] tables", k, k));
      }
      (k == "target" ? target_tables : k == "group" ? group_tables : rule_tables) = a;
    } else if (k == "audit" || k == "ca" || k == "recording" || k == "terminating") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return error_at(key.source(), fmt::format("{} must be a table [{}]", k, k));
      (k == "audit" ? audit_table : k == "ca" ? ca_table : k == "recording" ? recording_table
                                                                           : terminating_table) = t;
    } else {
      return error_at(key.source(),
                      fmt::format("unknown {} \"{}\"{}", node.is_table() ? "section" : "key", k,
                                  suggestion(k, {"server", "trust", "mfa", "policy", "audit", "ca",
                                                 "recording", "terminating", "target", "group",
                                                 "rule"})));
    }
  }
  if (target_tables != nullptr) {
    std::vector<std::pair<std::string, const toml::table*>> seen;
    for (const toml::node& item : *target_tables) {
      const toml::table& t = *item.as_table();
      auto target = load_target(t);
      if (!target) return tl::unexpected(target.error());
      for (const auto& [prev_name, prev_table] : seen) {
        if (iequals(prev_name, target->name)) {
          const toml::node* name_node = t.get("name");
          return error_at(*name_node,
                          fmt::format("duplicate target name \"{}\" (first at line {})",
                                      target->name, prev_table->source().begin.line));
        }
      }
      seen.emplace_back(target->name, &t);
      config.targets.push_back(std::move(*target));
    }
  }
  if (server == nullptr) return error_at(root, "missing required section [server]");
  if (trust == nullptr) return error_at(root, "missing required section [trust]");
  if (auto r = load_server(*server, &config.server); !r) return tl::unexpected(r.error());
  if (auto r = load_trust(*trust, &config.trust); !r) return tl::unexpected(r.error());
  if (mfa != nullptr) {
    if (auto r = load_mfa(*mfa, &config.mfa); !r) return tl::unexpected(r.error());
  }
  if (policy_table != nullptr) {
    if (auto r = load_policy(*policy_table, &config.policy); !r) return tl::unexpected(r.error());
  }
  if (audit_table != nullptr) {
    if (auto r = load_audit(*audit_table, &config.audit); !r) return tl::unexpected(r.error());
  }
  if (config.audit.dir.empty()) config.audit.dir = config.server.state_dir / "audit";
  if (config.audit.key.empty() && config.audit.pkcs11_uri.empty())
    config.audit.key = config.server.state_dir / "audit_key";
  config.audit.public_key = config.audit.pkcs11_uri.empty()
                                ? std::filesystem::path(config.audit.key.string() + ".pub")
                                : config.server.state_dir / "audit_key.pub";
  if (ca_table != nullptr) {
    if (auto r = load_ca(*ca_table, &config.ca); !r) return tl::unexpected(r.error());
  }
  if (recording_table != nullptr) {
    if (auto r = load_recording(*recording_table, &config.recording); !r) {
      return tl::unexpected(r.error());
    }
  }
  if (config.recording.dir.empty()) config.recording.dir = config.server.state_dir / "recordings";
  if (terminating_table != nullptr) {
    if (auto r = load_terminating(*terminating_table, &config.terminating); !r) {
      return tl::unexpected(r.error());
    }
  }
  if (config.terminating.known_hosts.empty()) {
    config.terminating.known_hosts = config.server.state_dir / "known_hosts";
  }
  // Groups before rules (rules name groups, wherever they stand in the file).
  if (group_tables != nullptr) {
    for (const toml::node& item : *group_tables) {
      const toml::table& t = *item.as_table();
      auto group = load_group(t, config);
      if (!group) return tl::unexpected(group.error());
      for (const auto& prev : config.groups) {
        if (iequals(prev.name, group->name)) {
          return error_at(*t.get("name"), fmt::format("duplicate group name \"{}\" (first at line {})",
                                                      group->name, prev.line));
        }
      }
      config.groups.push_back(std::move(*group));
    }
  }
  if (rule_tables != nullptr) {
    for (const toml::node& item : *rule_tables) {
      const toml::table& t = *item.as_table();
      auto rule = load_rule(t, config);
      if (!rule) return tl::unexpected(rule.error());
      for (const auto& prev : config.rules) {
        if (iequals(prev.id, rule->id)) {
          return error_at(*t.get("id"), fmt::format("duplicate rule id \"{}\" (first at line {})",
                                                    rule->id, prev.line));
        }
      }
      config.rules.push_back(std::move(*rule));
    }
  }
  return config;
}

}  // namespace

Result<Config> parse_config(std::string_view text, const std::filesystem::path& base_dir,
                            std::string_view source_name) {
  auto root = parse_toml(text, source_name, kCode);
  if (!root) return tl::unexpected(root.error());
  try {
    Loader loader(source_name, base_dir);
    return loader.load(*root);
  } catch (const std::exception& e) {
    return fail(kCode, fmt::format("{}: {}", source_name, e.what()));
  }
}

Result<Config> load_config(const std::filesystem::path& file) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(file, ec);
  if (ec) return fail("config_unreadable", fmt::format("{}: {}", file.string(), ec.message()));
  absolute = absolute.lexically_normal();
  auto data = read_file(file, kMaxConfigSize, "config_unreadable");
  if (!data) return tl::unexpected(data.error());
  std::string_view text(reinterpret_cast<const char*>(data->data()), data->size());
  auto config = parse_config(text, absolute.parent_path(), file.string());
  if (!config) return config;
  config->source = absolute;
  return config;
}

}  // namespace touchgate::policy
