// Static checks of a loaded policy for `touchgate policy check`, `touchgated -t`, the start of
// touchgated and every reload: rules that can never match, rules that never decide because an
// earlier or a deny rule covers them, overlapping allow and deny rules, and rules that open more
// than an admin likely meant.
//
// The loader (load_config) has already refused everything malformed; lint judges a valid
// configuration. It is conservative: a rule is reported as shadowed only when the covering rule
// provably matches every request the shadowed one matches, selector by selector.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/config.h"

namespace touchgate::policy {

// kError: the rule cannot do what it says; touchgated refuses to start with it or reload to it.
// kWarning: valid, but probably not meant. kNote: valid and perhaps meant; worth knowing.
enum class Severity { kError, kWarning, kNote };

// severity_name: "error" / "warning" / "note".
const char* severity_name(Severity s);

// Finding: one observation about one rule. Codes are stable (tooling greps for them):
//   rule_never_matches       error: no day in its time window, `from` lists no usable network,
//                            its targets select no configured target and it has no hosts, or its
//                            ports exclude the port of every target it selects
//   rule_never_allows        error: an allow rule every request of which a deny rule denies
//   rule_shadowed            warning: an earlier rule of the same effect matches everything it
//                            matches, so it never decides
//   rule_overlaps_deny       warning: an allow and a deny rule share some requests (deny wins):
//                            some configured target, or some destination their `hosts` globs and
//                            networks both select (one finding per allow rule)
//   rule_may_overlap_deny    note: an allow and a deny rule share requests if one user is in
//                            groups of both (membership by key id or extension can overlap with
//                            any other; principal lists only where they share a name); one
//                            finding per allow rule
//   rule_attestation_only    warning: an allow rule accepts only attested factors
//   rule_any_user_any_host   warning: an allow rule for principals "*" and hosts "*"
struct Finding {
  Severity severity = Severity::kWarning;
  std::string rule_id;
  int line = 0;  // the rule's [[rule]] line
  std::string code;
  std::string message;
};

// lint returns the findings for the rules of `config`, ordered by rule line, and by severity
// (errors first) within a rule.
std::vector<Finding> lint(const Config& config);

// format_finding renders a finding as `policy check` prints it:
// "FILE:LINE: SEVERITY: [RULE] MESSAGE (CODE)"; with_severity = false leaves "SEVERITY: " out.
std::string format_finding(std::string_view file, const Finding& finding,
                           bool with_severity = true);

// check_lint is what the gateway does with lint at its start, on `touchgated -t` and on every
// reload: a configuration with an error is refused (code "policy_invalid", the message lists
// every error as format_finding(file, ..., false) does, joined by "; "). `findings` (when not
// null) receives every finding, also on refusal, for the caller to log or print.
Result<void> check_lint(const Config& config, std::string_view file,
                        std::vector<Finding>* findings = nullptr);

}  // namespace touchgate::policy
