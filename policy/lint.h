// Static checks of a loaded policy for `touchgate policy check`: rules that can never match,
// rules that never decide because an earlier or a deny rule covers them, overlapping allow and
// deny rules, and rules that open more than an admin likely meant.
//
// The loader (load_config) has already refused everything malformed; lint judges a valid
// configuration. It is conservative: a rule is reported as shadowed only when the covering rule
// provably matches every request the shadowed one matches, selector by selector.
#pragma once

#include <string>
#include <vector>

#include "policy/config.h"

namespace touchgate::policy {

enum class Severity { kError, kWarning };

// severity_name: "error" / "warning".
const char* severity_name(Severity s);

// Finding: one observation about one rule. Codes are stable (tooling greps for them):
//   rule_never_matches       error: no day in its time window, `from` lists no usable network,
//                            its targets select no configured target and it has no hosts, or its
//                            ports exclude the port of every target it selects
//   rule_never_allows        error: an allow rule every request of which a deny rule denies
//   rule_shadowed            warning: an earlier rule of the same effect matches everything it
//                            matches, so it never decides
//   rule_overlaps_deny       warning: an allow and a deny rule share some requests (deny wins)
//   rule_attestation_only    warning: an allow rule accepts only attested factors
//   rule_any_user_any_host   warning: an allow rule for principals "*" and hosts "*"
struct Finding {
  Severity severity = Severity::kWarning;
  std::string rule_id;
  int line = 0;  // the rule's [[rule]] line
  std::string code;
  std::string message;
};

// lint returns the findings for the rules of `config`, ordered by rule line, errors of a rule
// before its warnings.
std::vector<Finding> lint(const Config& config);

}  // namespace touchgate::policy
