// The policy engine: deny-by-default access decisions over [[group]]s, [[target]]s and
// [[rule]]s of the configuration (touchgate-policy(5)).
//
// A decision for (identity, request):
//   1. the destination: a configured [[target]] (by name, or host:port) or, if none, an
//      unconfigured destination that only rules with `hosts` can select;
//   2. every rule is checked in file order; a rule matches when ALL its selectors match
//      (subjects, CA, targets/hosts, ports, action, source network, time window);
//   3. any matching deny rule wins (the first one decides); else the first matching allow rule
//      decides, with its factors, freshness and session limit; else deny (policy_no_match).
// Decisions cost microseconds: rules are pre-selected per configured target at compile time and
// groups are resolved once per connection (resolve()).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policy/config.h"
#include "policy/factor.h"
#include "ssh/address.h"
#include "ssh/certificate.h"

namespace touchgate::policy {

// Identity: what a verified certificate (and the connection) says about the user.
struct Identity {
  std::string principal;  // the login name (one of the certificate's principals)
  std::string key_id;
  uint64_t serial = 0;
  std::string ca_name;                    // name of the trusted CA that signed it
  std::optional<ssh::IpAddress> source;   // the client's address
  std::vector<std::pair<std::string, std::string>> extensions;  // name, value (see below)
};

// extension_values decodes certificate extensions: an extension whose data is one SSH string
// (what `ssh-keygen -O extension:NAME=VALUE` writes) gives that string; empty data gives "";
// anything else is left out.
std::vector<std::pair<std::string, std::string>> extension_values(
    const std::vector<ssh::CertOption>& extensions);

// ResolvedIdentity: an identity with its group memberships (resolve() once per connection).
struct ResolvedIdentity {
  Identity identity;
  std::vector<uint64_t> group_bits;      // bit i = member of config().groups[i]
  std::vector<std::string> group_names;  // the same, by name, in config order
};

struct Request {
  std::string host;  // as the client asked: a target name, a host name or a numeric address
  uint16_t port = 22;
  Action action = Action::kJump;
  std::chrono::system_clock::time_point at = std::chrono::system_clock::now();
  // as_host: judge `host` as an unconfigured destination (only rules with `hosts` select it),
  // even when it is a configured target's name or address. For the addresses a name resolved
  // to, whose deny rules must hold as well.
  bool as_host = false;
};

enum class Effect : uint8_t { kAllow, kDeny };

// RuleTrace: for `policy explain`, what one rule made of the request.
struct RuleTrace {
  std::string rule_id;
  int line = 0;
  bool allow = true;    // the rule's effect
  bool matched = false;
  std::string why;      // matched: "matches"; else the first selector that failed, e.g.
                        // "alice is not in groups ops, dba" or "Sat 10:05 Europe/Berlin is
                        // outside mon-fri 09:00-18:00"
};

struct Decision {
  Effect effect = Effect::kDeny;
  // Codes: "policy_allowed"; "policy_denied" (a deny rule); "policy_no_match" (no rule allows);
  // "target_unknown" (not a configured target, and no rule's `hosts` could select it).
  std::string code;
  std::string explanation;  // one sentence, fit for the log and the client
  std::string rule_id;      // the deciding rule; empty when none matched
  int rule_line = 0;
  uint8_t factors = 0;      // allow: acceptable factors, any one suffices
  std::chrono::seconds max_age{0};      // allow: reuse a sufficient touch this long (0: never)
  std::chrono::seconds max_session{0};  // allow: close the channel after this long (0: never)
  // allow, terminating mode: the login on the target (the rule's remote_user, else the
  // principal) and whether the user's input is recorded too.
  std::string remote_user;
  bool record_input = false;
  // allow, by a rule with a time window: when the window closes (the channel is closed then),
  // and the window as text ("mon-fri 09:00-18:00 Europe/Berlin").
  std::optional<std::chrono::system_clock::time_point> window_closes;
  std::string window;
  // Destination: a configured target (target != nullptr; host/port from it) or the host and
  // port the client asked for (selected by `hosts`; resolved at connect time).
  const Target* target = nullptr;
  std::string target_name;  // the configured name, or the host as asked (lower case)
  std::string host;
  uint16_t port = 0;
  std::vector<RuleTrace> trace;  // only when decide(..., explain = true)

  bool allowed() const { return effect == Effect::kAllow; }
};

class Policy {
 public:
  // compile prepares a validated configuration (load_config has checked every reference,
  // pattern, time zone and network) for fast decisions.
  static std::shared_ptr<const Policy> compile(std::shared_ptr<const Config> config);

  const Config& config() const { return *config_; }
  const std::shared_ptr<const Config>& config_ptr() const { return config_; }

  ResolvedIdentity resolve(Identity identity) const;

  // decide: the decision for one request. With explain, the trace lists every rule in order.
  Decision decide(const ResolvedIdentity& who, const Request& req, bool explain = false) const;

  struct Compiled;  // internal

  Policy(std::shared_ptr<const Config> config, std::unique_ptr<const Compiled> compiled);
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

 private:
  std::shared_ptr<const Config> config_;
  std::unique_ptr<const Compiled> compiled_;
};

// glob_match: '*' any run (also empty), '?' one character; ASCII case-insensitive.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace touchgate::policy
