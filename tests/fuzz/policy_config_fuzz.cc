// Fuzz target: the configuration loader and everything built on a loaded policy, and the policy
// test file parser (trust boundary: admin-written files that `touchgated -t` and `touchgate
// policy check|test` must judge without crashing, whatever they hold). Invariants violated
// abort.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "policy/config.h"
#include "policy/engine.h"
#include "policy/expectations.h"
#include "policy/lint.h"

namespace {

using namespace touchgate::policy;

// parse_config resolves relative paths against this directory but reads no file (CA keys are
// read by load_trust), so it need not exist.
constexpr const char* kBaseDir = "/nonexistent/touchgate-fuzz";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The same bytes as a policy test file.
  auto cases = parse_expectations(text, "fuzz-cases.toml");
  if (!cases && (cases.error().code != "policy_test_invalid" || cases.error().message.empty())) {
    __builtin_trap();
  }
  auto config = parse_config(text, kBaseDir, "fuzz.toml");
  if (!config) {
    if (config.error().code != "config_invalid" || config.error().message.empty()) __builtin_trap();
    return 0;
  }

  for (const Finding& f : lint(*config)) {
    bool known = false;
    for (const auto& r : config->rules) known = known || (r.id == f.rule_id && r.line == f.line);
    if (!known || f.code.empty() || f.message.empty()) __builtin_trap();
  }

  auto policy = Policy::compile(std::make_shared<const Config>(std::move(*config)));
  Identity id;
  id.principal = "alice";
  id.key_id = "alice@corp.example";
  id.ca_name = policy->config().trust.user_ca_keys.empty()
                   ? std::string()
                   : policy->config().trust.user_ca_keys.front().name;
  id.source = touchgate::ssh::IpAddress::parse("10.8.1.2").value();
  id.extensions = {{"groups@corp.example", "dev,oncall"}};
  const ResolvedIdentity who = policy->resolve(id);
  Request req;
  req.host = policy->config().targets.empty() ? "db1" : policy->config().targets.front().name;
  req.at = std::chrono::system_clock::time_point(std::chrono::seconds(1796032800));
  const Decision d = policy->decide(who, req, /*explain=*/true);
  const Decision fast = policy->decide(who, req);
  if (d.code.empty() || d.effect != fast.effect || d.rule_id != fast.rule_id) __builtin_trap();
  if (d.allowed() && (d.rule_id.empty() || d.factors == 0)) __builtin_trap();
  if (d.trace.size() != policy->config().rules.size()) __builtin_trap();
  return 0;
}
