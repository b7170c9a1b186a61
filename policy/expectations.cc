// Policy test files (trust boundary: an admin-written file; every malformation is a
// line-numbered error).
#include "policy/expectations.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "policy/address.h"
#include "policy/file.h"
#include "policy/toml_util.h"
#include "policy/timewindow.h"

namespace touchgate::policy {
namespace {

constexpr const char* kCode = "policy_test_invalid";
constexpr size_t kMaxTestFile = 16u << 20;

using namespace std::chrono;

// Splits "touch+pin or piv" into its names.
std::vector<std::string> split_or(std::string_view text) {
  std::vector<std::string> out;
  for (;;) {
    const size_t at = text.find(" or ");
    std::string_view part = text.substr(0, at);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    out.emplace_back(part);
    if (at == std::string_view::npos) return out;
    text.remove_prefix(at + 4);
  }
}

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  Result<std::vector<Expectation>> parse(const toml::table& root) const {
    std::vector<Expectation> out;
    for (auto&& [key, node] : root) {
      if (key.str() != "case") {
        return error_at(key.source(), fmt::format("unknown key \"{}\" (a policy test file holds "
                                                  "[[case]] tables only)",
                                                  key.str()));
      }
      const auto* cases = node.as_array();
      if (cases == nullptr || !cases->is_array_of_tables()) {
        return error_at(key.source(), "cases must be written as [[case]] tables");
      }
      for (const toml::node& item : *cases) {
        auto c = parse_case(*item.as_table());
        if (!c) return tl::unexpected(c.error());
        out.push_back(std::move(*c));
      }
    }
    if (out.empty()) return error_at(root.source(), "no [[case]] in the file");
    return out;
  }

 private:
  tl::unexpected<Error> error_at(const toml::source_region& where, std::string_view what) const {
    const auto line = std::max<uint32_t>(where.begin.line, 1);
    const auto column = where.begin.line == 0 ? 1 : std::max<uint32_t>(where.begin.column, 1);
    return fail(kCode, fmt::format("{}:{}:{}: {}", source_, line, column, what));
  }
  tl::unexpected<Error> wrong_type(const toml::node& n, std::string_view key,
                                   std::string_view expected) const {
    return error_at(n.source(), fmt::format("{} must be {}, not {}", key, expected,
                                            toml_type_name(n.type())));
  }

  Result<std::string> get_string(const toml::node& n, std::string_view key) const {
    const auto* s = n.as_string();
    if (s == nullptr) return wrong_type(n, key, "a string");
    if (s->get().find('\0') != std::string::npos) {
      return error_at(n.source(), fmt::format("{} must not contain a NUL character", key));
    }
    return s->get();
  }

  Result<uint8_t> get_factors(const toml::node& n) const {
    std::vector<std::pair<std::string, const toml::node*>> names;
    if (n.is_string()) {
      for (auto& name : split_or(n.as_string()->get())) names.emplace_back(std::move(name), &n);
    } else if (const auto* a = n.as_array()) {
      if (a->empty()) return error_at(n.source(), "factor must not be empty");
      for (const toml::node& item : *a) {
        auto s = get_string(item, "factor entries");
        if (!s) return tl::unexpected(s.error());
        names.emplace_back(std::move(*s), &item);
      }
    } else {
      return wrong_type(n, "factor", "a string or an array of strings");
    }
    uint8_t mask = 0;
    for (const auto& [name, node] : names) {
      auto f = parse_factor(name);
      if (!f) {
        return error_at(node->source(),
                        fmt::format("unknown factor \"{}\" (use touch, piv, touch+pin, "
                                    "piv-attested-touch or fido2-attested)",
                                    name));
      }
      mask |= static_cast<uint8_t>(*f);
    }
    return mask;
  }

  Result<system_clock::time_point> get_instant(const toml::node& n) const {
    if (const auto* dt = n.as_date_time()) {
      const toml::date_time& v = dt->get();
      const sys_days date{year{v.date.year} / month{v.date.month} / day{v.date.day}};
      const auto t = hours{v.time.hour} + minutes{v.time.minute} + seconds{v.time.second};
      const minutes offset{v.offset ? v.offset->minutes : 0};
      return system_clock::time_point(date + t - offset);
    }
    auto s = get_string(n, "at");
    if (!s) return wrong_type(n, "at", "a time like \"2026-11-30T10:00:00+01:00\"");
    auto at = parse_instant(*s);
    if (!at) return error_at(n.source(), fmt::format("at: {}", at.error().message));
    return *at;
  }

  Result<Expectation> parse_case(const toml::table& t) const {
    Expectation c;
    c.line = static_cast<int>(t.source().begin.line);
    bool have_principal = false, have_target = false, have_expect = false;
    const toml::node* factor_node = nullptr;
    for (auto&& [key, node] : t) {
      const std::string_view k = key.str();
      if (k == "name" || k == "principal" || k == "key_id" || k == "ca" || k == "rule" ||
          k == "code") {
        auto s = get_string(node, k);
        if (!s) return tl::unexpected(s.error());
        if (k == "name") {
          c.name = std::move(*s);
        } else if (k == "principal") {
          if (s->empty()) return error_at(node.source(), "principal must not be empty");
          c.identity.principal = std::move(*s);
          have_principal = true;
        } else if (k == "key_id") {
          c.identity.key_id = std::move(*s);
        } else if (k == "ca") {
          c.identity.ca_name = std::move(*s);
        } else if (k == "rule") {
          c.rule_id = std::move(*s);
        } else {
          c.code = std::move(*s);
        }
      } else if (k == "serial") {
        const auto* i = node.as_integer();
        if (i == nullptr) return wrong_type(node, k, "an integer");
        if (i->get() < 0) return error_at(node.source(), "serial must not be negative");
        c.identity.serial = static_cast<uint64_t>(i->get());
      } else if (k == "extensions") {
        const auto* ext = node.as_table();
        if (ext == nullptr) return wrong_type(node, k, "a table of strings");
        for (auto&& [name, value] : *ext) {
          auto v = get_string(value, fmt::format("extension \"{}\"", name.str()));
          if (!v) return tl::unexpected(v.error());
          c.identity.extensions.emplace_back(std::string(name.str()), std::move(*v));
        }
      } else if (k == "from") {
        auto s = get_string(node, k);
        if (!s) return tl::unexpected(s.error());
        auto addr = ssh::IpAddress::parse(*s);
        if (!addr) {
          return error_at(node.source(), fmt::format("from must be an IP address, not \"{}\"", *s));
        }
        c.identity.source = *addr;
      } else if (k == "target") {
        auto s = get_string(node, k);
        if (!s) return tl::unexpected(s.error());
        auto dest = parse_target_address(*s);
        if (!dest) {
          return error_at(
              node.source(),
              fmt::format("target must be a target name or HOST[:PORT], not \"{}\"", *s));
        }
        c.target = std::move(*s);
        c.request.host = dest->host;
        c.request.port = dest->port;
        have_target = true;
      } else if (k == "at") {
        auto at = get_instant(node);
        if (!at) return tl::unexpected(at.error());
        c.request.at = *at;
        c.at_given = true;
      } else if (k == "action") {
        auto s = get_string(node, k);
        if (!s) return tl::unexpected(s.error());
        auto a = parse_action(*s);
        if (!a) {
          return error_at(node.source(),
                          fmt::format("unknown action \"{}\" (use jump, shell, exec or sftp)", *s));
        }
        c.request.action = *a;
      } else if (k == "expect") {
        auto s = get_string(node, k);
        if (!s) return tl::unexpected(s.error());
        if (*s != "allow" && *s != "deny") {
          return error_at(node.source(),
                          fmt::format("expect must be \"allow\" or \"deny\", not \"{}\"", *s));
        }
        c.expect_allow = *s == "allow";
        have_expect = true;
      } else if (k == "factor") {
        auto f = get_factors(node);
        if (!f) return tl::unexpected(f.error());
        c.factors = *f;
        factor_node = &node;
      } else {
        return error_at(key.source(),
                        fmt::format("unknown key \"{}\" in [[case]] (known: name, principal, "
                                    "key_id, serial, ca, extensions, from, target, at, action, "
                                    "expect, factor, rule, code)",
                                    k));
      }
    }
    const char* missing = !have_principal ? "principal"
                          : !have_target  ? "target"
                          : !have_expect  ? "expect"
                                          : nullptr;
    if (missing != nullptr) {
      return error_at(t.source(),
                      fmt::format("[[case]] is missing the required key \"{}\"", missing));
    }
    if (factor_node != nullptr && !c.expect_allow) {
      return error_at(factor_node->source(), "factor applies only to expect = \"allow\"");
    }
    if (c.name.empty()) {
      c.name = fmt::format("line {}: {} to {}", c.line, c.identity.principal, c.target);
    }
    return c;
  }

  std::string source_;
};

std::string describe_expected(const Expectation& c) {
  std::string out = c.expect_allow ? "allow" : "deny";
  if (c.rule_id) out += fmt::format(" by rule {}", *c.rule_id);
  if (c.factors) out += fmt::format(" with {}", factor_names(*c.factors));
  if (c.code) out += fmt::format(", code {}", *c.code);
  return out;
}

std::string describe_decision(const Decision& d) {
  std::string out = d.allowed() ? "allow" : "deny";
  if (!d.rule_id.empty()) out += fmt::format(" by rule {}", d.rule_id);
  if (d.allowed()) out += fmt::format(" with {}", factor_names(d.factors));
  out += fmt::format(", code {}", d.code);
  return out;
}

// why_not adds what the rules that select the destination made of the request to a failure
// message: the expected rule's, else those of up to three rules.
std::string why_not(const Decision& traced, const Expectation& c) {
  constexpr size_t kMaxRules = 3;
  std::string out;
  size_t shown = 0;
  for (const RuleTrace& t : traced.trace) {
    if (c.rule_id ? t.rule_id != *c.rule_id
                  : (t.rule_id == traced.rule_id || t.why.rfind("does not select", 0) == 0 ||
                     t.why.rfind("selects only", 0) == 0)) {
      continue;
    }
    if (shown++ == kMaxRules) {
      out += "; ...";
      break;
    }
    out += fmt::format("; rule {}: {}", t.rule_id, t.matched ? "matches" : t.why);
  }
  return out;
}

}  // namespace

Result<std::vector<Expectation>> parse_expectations(std::string_view text,
                                                    std::string_view source_name) {
  auto root = parse_toml(text, source_name, kCode);
  if (!root) return tl::unexpected(root.error());
  try {
    return Parser(source_name).parse(*root);
  } catch (const std::exception& e) {
    return fail(kCode, fmt::format("{}: {}", source_name, e.what()));
  }
}

Result<std::vector<Expectation>> load_expectations(const std::string& file) {
  auto data = read_file(file, kMaxTestFile, "policy_test_unreadable");
  if (!data) return tl::unexpected(data.error());
  return parse_expectations(
      std::string_view(reinterpret_cast<const char*>(data->data()), data->size()), file);
}

std::vector<CaseResult> run_expectations(const Policy& policy,
                                         const std::vector<Expectation>& cases,
                                         system_clock::time_point now) {
  const auto& cas = policy.config().trust.user_ca_keys;
  std::vector<CaseResult> out;
  for (const Expectation& c : cases) {
    CaseResult r{c.name, c.line, false, {}};
    Identity identity = c.identity;
    if (identity.ca_name.empty()) {
      if (!cas.empty()) identity.ca_name = cas.front().name;
    } else if (std::none_of(cas.begin(), cas.end(),
                            [&](const auto& ca) { return ca.name == identity.ca_name; })) {
      r.message = fmt::format("ca \"{}\" is not a CA of the configuration", identity.ca_name);
      out.push_back(std::move(r));
      continue;
    }
    Request request = c.request;
    if (!c.at_given) request.at = now;
    const ResolvedIdentity who = policy.resolve(std::move(identity));
    const Decision d = policy.decide(who, request);
    bool ok = d.allowed() == c.expect_allow;
    if (c.rule_id) ok = ok && d.rule_id == *c.rule_id;
    if (c.factors) ok = ok && d.factors == *c.factors;
    if (c.code) ok = ok && d.code == *c.code;
    r.passed = ok;
    if (!ok) {
      r.message =
          fmt::format("expected {}, got {} ({}{})", describe_expected(c), describe_decision(d),
                      d.explanation, why_not(policy.decide(who, request, /*explain=*/true), c));
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace touchgate::policy
