// Policy tests: a TOML table of requests and the decisions an admin expects for them
// (`touchgate policy test`), and the runner that checks a compiled Policy against them.
//
// File format (see touchgate-policy(5)); every [[case]] is one request:
//   [[case]]
//   name = "alice reaches staging"      # optional
//   principal = "alice"                 # required: the login
//   key_id = "alice@corp.example"       # optional
//   serial = 7                          # optional
//   ca = "corp"                         # optional; default: the first CA of the configuration
//   extensions = { "groups@corp.example" = "dev,oncall" }  # optional
//   from = "10.8.1.2"                   # optional: the client's address
//   target = "db1" | "web3.prod.example.com:22" | "db1:2222" | "[2001:db8::1]:22"
//   at = "2026-11-30T10:00:00+01:00"    # optional (a string for parse_instant, or a TOML
//                                       # date-time); default: the time of the run
//   action = "jump"                     # optional; default jump
//   expect = "allow" | "deny"           # required
//   factor = "touch+pin or piv" | ["touch+pin", "piv"]  # optional, allow only: the acceptable
//                                       # factors of the deciding rule, compared as sets
//   rule = "prod"                       # optional: the id of the deciding rule
//   code = "policy_no_match"            # optional: the decision's code
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/engine.h"
#include "ssh/error.h"

namespace touchgate::policy {

struct Expectation {
  std::string name;    // as written, or "line N: PRINCIPAL to TARGET"
  int line = 0;        // where [[case]] starts
  Identity identity;   // ca_name empty = the configuration's first CA
  std::string target;  // as written
  Request request;     // host, port (default 22), action; `at` only when at_given
  bool at_given = false;
  bool expect_allow = false;
  std::optional<uint8_t> factors;  // mask of Factor
  std::optional<std::string> rule_id;
  std::optional<std::string> code;
};

// parse_expectations reads a policy test file. Strict: unknown keys, wrong types, unknown
// factors or actions, malformed addresses, targets and times, `factor` with expect = "deny", and
// a file without any [[case]] are errors "SOURCE:LINE:COL: what is wrong" with code
// "policy_test_invalid".
Result<std::vector<Expectation>> parse_expectations(std::string_view text,
                                                    std::string_view source_name);

// load_expectations reads and parses a file (code "policy_test_unreadable" when it cannot be
// read).
Result<std::vector<Expectation>> load_expectations(const std::string& file);

struct CaseResult {
  std::string name;
  int line = 0;
  bool passed = false;
  // Failure: "expected allow by rule prod with touch+pin or piv, got deny, code policy_no_match
  // (no rule allows ...)". Empty when passed.
  std::string message;
};

// run_expectations decides every case (cases without `at` at `now`) and compares. A case naming
// a CA the configuration does not have fails with a message saying so.
std::vector<CaseResult> run_expectations(
    const Policy& policy, const std::vector<Expectation>& cases,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace touchgate::policy
