// touchgate policy check|explain|test. Trust boundary: the certificate file comes from a user; it
// is parsed by ssh/ and only what its CA signed is shown.
#include "cli/policy.h"

#include "cli/key_file.h"

#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/context.h"
#include "cli/key_file.h"
#include "policy/address.h"
#include "policy/config.h"
#include "policy/duration.h"
#include "policy/engine.h"
#include "policy/expectations.h"
#include "policy/file.h"
#include "policy/lint.h"
#include "policy/timewindow.h"
#include "policy/trust.h"
#include "ssh/certificate.h"
#include "ssh/key.h"
#include "ssh/validate.h"

namespace touchgate::cli {
namespace {

// The CA name `policy explain` uses for a certificate no trusted CA signed; not a valid CA name,
// so no rule's `cas` can name it.
constexpr const char* kUntrustedCa = "(untrusted)";

int usage(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "touchgate: %s\nRun 'touchgate policy %s --help' for usage.\n",
               message.c_str(), command.c_str());
  return kExitUsage;
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

std::string format_instant(std::chrono::system_clock::time_point t) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  return ssh::format_utc(static_cast<uint64_t>(std::max<int64_t>(s, 0)));
}

// counted: "1 rule", "3 rules".
std::string counted(size_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

std::string join(const std::vector<std::string>& v) {
  return v.empty() ? std::string("none") : fmt::format("{}", fmt::join(v, ", "));
}

std::vector<std::string> factor_list(uint8_t mask) {
  std::vector<std::string> out;
  for (uint8_t bit = 1; bit != 0 && bit <= policy::kAllFactors; bit <<= 1) {
    if (mask & bit) out.emplace_back(policy::factor_name(static_cast<policy::Factor>(bit)));
  }
  return out;
}

// What explain learned about the certificate before the decision.
struct CertView {
  std::string principal;
  bool trusted = false;
  std::string ca_name;                 // the trusted CA's name, or "untrusted"
  std::optional<Error> login_refusal;  // what the gateway would say at login, if it refuses
};

}  // namespace

PolicyCommand::PolicyCommand(CLI::App& app) {
  policy_ = app.add_subcommand("policy", "Check, explain and test the access policy");
  policy_->require_subcommand(0, 1);
  policy_->footer("The policy is read from the configuration (-f FILE). See touchgate-policy(5).");

  check_ = policy_->add_subcommand(
      "check", "Load a configuration and report rules that never match, never decide or overlap");
  check_->add_option("FILE", file_, "Configuration to check (default: the one given by -f)")
      ->option_text(" ");
  check_->footer(
      "Exit status 0 when the configuration loads and has no errors (warnings are printed), "
      "1 otherwise.");

  explain_ = policy_->add_subcommand(
      "explain", "Show the decision for a certificate and target, and what every rule made of it");
  explain_->add_option("--cert", cert_, "The user's OpenSSH certificate (NAME-cert.pub)")
      ->required()
      ->option_text("CERT.pub");
  explain_->add_option("--target", target_, "A configured target, or HOST[:PORT]")
      ->required()
      ->option_text("T[:PORT]");
  explain_
      ->add_option("--user", user_,
                   "The login (required when the certificate has several principals)")
      ->option_text("PRINCIPAL");
  explain_->add_option("--from", from_, "The client's address")->option_text("ADDR");
  explain_->add_option("--at", at_, "The time, e.g. 2026-11-30T10:00:00+01:00 (default: now)")
      ->option_text("TIME");
  explain_->add_option("--action", action_, "jump (default), shell, exec or sftp")
      ->check(CLI::IsMember({"jump", "shell", "exec", "sftp"}))
      ->option_text("ACTION");
  explain_->add_flag("--json", json_, "Print a JSON object instead of text");

  test_ = policy_->add_subcommand(
      "test", "Run a table of requests and expected decisions ([[case]]s) against the policy");
  test_->add_option("FILE", file_, "The policy test file (TOML)")->required()->option_text(" ");
  test_->footer(
      "The policy comes from -f/--config FILE. Exit status 0 when every case passes, 1 when one "
      "fails or a file is invalid.");
}

bool PolicyCommand::selected() const {
  return policy_->parsed();
}

bool PolicyCommand::command_chosen() const {
  return !policy_->get_subcommands().empty();
}

std::string PolicyCommand::missing_command_message() const {
  return "a policy command is required: check, explain, test";
}

int PolicyCommand::run(const std::filesystem::path& config_file) const {
  if (check_->parsed()) return check(config_file);
  if (explain_->parsed()) return explain(config_file);
  if (test_->parsed()) return test(config_file);
  return kExitUsage;
}

int PolicyCommand::check(const std::filesystem::path& config_file) const {
  const std::string file = file_.empty() ? config_file.string() : file_;
  auto config = policy::load_config(file);
  if (!config) return report(config.error());
  const auto findings = policy::lint(*config);
  size_t errors = 0, warnings = 0, notes = 0;
  std::string out;
  for (const auto& f : findings) {
    switch (f.severity) {
      case policy::Severity::kError:
        ++errors;
        break;
      case policy::Severity::kWarning:
        ++warnings;
        break;
      case policy::Severity::kNote:
        ++notes;
        break;
    }
    out += policy::format_finding(file, f) + "\n";
  }
  out += fmt::format("{}, {}, {}: ", counted(config->rules.size(), "rule"),
                     counted(config->groups.size(), "group"),
                     counted(config->targets.size(), "target"));
  if (findings.empty()) {
    out += "ok\n";
  } else {
    out += fmt::format("{}, {}{}\n", counted(errors, "error"), counted(warnings, "warning"),
                       notes == 0 ? std::string() : ", " + counted(notes, "note"));
  }
  print(out);
  return errors == 0 ? kExitOk : kExitError;
}

int PolicyCommand::explain(const std::filesystem::path& config_file) const {
  using Json = nlohmann::ordered_json;
  auto config = policy::load_config(config_file);
  if (!config) return report(config.error());
  auto trust = policy::load_trust(config->trust);
  if (!trust) return report(trust.error());
  auto cert = read_certificate_file(cert_);
  if (!cert) return report(cert.error());

  // The request, checked before anything is decided.
  auto dest = policy::parse_target_address(target_);
  if (!dest) return usage("explain", fmt::format("--target: {}", dest.error().message));
  policy::Request request;
  request.host = dest->host;
  request.port = dest->port;
  request.action = *policy::parse_action(action_);  // CLI11 checked it
  if (!at_.empty()) {
    auto at = policy::parse_instant(at_);
    if (!at) return usage("explain", fmt::format("--at: {}", at.error().message));
    request.at = *at;
  }
  std::optional<ssh::IpAddress> from;
  if (!from_.empty()) {
    auto addr = ssh::IpAddress::parse(from_);
    if (!addr) return usage("explain", fmt::format("--from: not an IP address: \"{}\"", from_));
    from = *addr;
  }

  CertView view;
  if (!user_.empty()) {
    view.principal = user_;
  } else if (cert->principals.size() == 1) {
    view.principal = cert->principals.front();
  } else if (cert->principals.empty()) {
    return report(
        Error{"cert_no_principals", fmt::format("{}: the certificate names no principal", cert_)});
  } else {
    return usage("explain",
                 fmt::format("the certificate has several principals ({}); choose one with --user",
                             join(cert->principals)));
  }
  for (const auto& ca : trust->cas) {
    if (ca.key.blob == cert->signature_key) {
      view.trusted = true;
      view.ca_name = ca.name;
      break;
    }
  }
  if (!view.trusted) view.ca_name = "untrusted";
  // Would the gateway accept this certificate at a login now (signature, validity, revocation,
  // principal, source address)? The decision below is shown either way: --at asks about the
  // policy at another time, not about this certificate's validity then.
  ssh::ValidationContext ctx;
  ctx.login = view.principal;
  ctx.client = from.value_or(ssh::IpAddress{});
  ctx.now = static_cast<uint64_t>(std::max<int64_t>(0, std::time(nullptr)));
  if (auto v = ssh::validate_certificate(cert->blob, *trust, ctx); !v) {
    view.login_refusal = v.error();
    if (v.error().code == "cert_untrusted_ca") {
      view.login_refusal->message = "the certificate is not signed by a trusted CA";
    } else if (v.error().code == "cert_source_address" && !from) {
      view.login_refusal->message += " (give --from to check the client's address)";
    }
  }

  policy::Identity identity;
  identity.principal = view.principal;
  identity.key_id = cert->key_id;
  identity.serial = cert->serial;
  identity.ca_name = view.trusted ? view.ca_name : kUntrustedCa;
  identity.source = from;
  identity.extensions = policy::extension_values(cert->extensions);

  auto shared = std::make_shared<const policy::Config>(std::move(*config));
  auto compiled = policy::Policy::compile(shared);
  const policy::ResolvedIdentity who = compiled->resolve(identity);
  const policy::Decision d = compiled->decide(who, request, /*explain=*/true);
  const std::string action(policy::action_name(request.action));
  // A configured target is reached on its own port, whatever port was asked for with its name:
  // the request is shown with the port decided on, and the one asked for when it differs.
  const bool port_given = target_.rfind('[', 0) == 0 ? target_.find("]:") != std::string::npos
                                                     : target_.find(':') != std::string::npos;
  const bool port_replaced = d.target != nullptr && port_given && d.port != request.port;

  if (json_) {
    Json j;
    Json c;
    c["file"] = cert_;
    c["key_id"] = cert->key_id;
    c["serial"] = cert->serial;
    c["principal"] = view.principal;
    c["ca"] = view.ca_name;
    c["trusted"] = view.trusted;
    c["login_refused"] = view.login_refusal ? Json{{"code", view.login_refusal->code},
                                                   {"message", view.login_refusal->message}}
                                            : Json(nullptr);
    c["groups"] = who.group_names;
    j["certificate"] = std::move(c);
    j["request"] = {{"target", target_},
                    {"host", request.host},
                    {"port", d.port},
                    {"port_asked", port_replaced ? Json(request.port) : Json(nullptr)},
                    {"action", action},
                    {"at", format_instant(request.at)},
                    {"from", from ? Json(from->to_string()) : Json(nullptr)}};
    Json dj;
    dj["decision"] = d.allowed() ? "allow" : "deny";
    dj["code"] = d.code;
    dj["explanation"] = d.explanation;
    dj["rule"] = d.rule_id.empty() ? Json(nullptr) : Json(d.rule_id);
    dj["rule_line"] = d.rule_id.empty() ? Json(nullptr) : Json(d.rule_line);
    dj["target"] = d.target_name;
    dj["factors"] = d.allowed() ? Json(factor_list(d.factors)) : Json::array();
    dj["max_age_seconds"] = d.allowed() ? Json(d.max_age.count()) : Json(nullptr);
    dj["max_session_seconds"] = d.allowed() ? Json(d.max_session.count()) : Json(nullptr);
    j["decision"] = std::move(dj);
    Json rules = Json::array();
    for (const auto& t : d.trace) {
      rules.push_back({{"rule", t.rule_id},
                       {"line", t.line},
                       {"effect", t.allow ? "allow" : "deny"},
                       {"matched", t.matched},
                       {"why", t.why}});
    }
    j["rules"] = std::move(rules);
    print(j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
    return kExitOk;
  }

  std::string out;
  out += fmt::format("certificate: {} (key id \"{}\", serial {})\n", cert_, cert->key_id,
                     cert->serial);
  out += fmt::format("identity:    {}, CA {}, groups: {}\n", view.principal, view.ca_name,
                     join(who.group_names));
  if (view.login_refusal) {
    out += fmt::format(
        "warning:     the gateway would refuse this certificate at a login now: {} ({})\n",
        view.login_refusal->message, view.login_refusal->code);
  }
  out += fmt::format("request:     {} to {} port {} at {}{}\n", action, request.host, d.port,
                     format_instant(request.at),
                     from ? fmt::format(" from {}", from->to_string()) : std::string());
  if (port_replaced) {
    out += fmt::format(
        "note:        port {} was asked for; target {} is reached on its configured "
        "port {}, which the rules were checked against\n",
        request.port, d.target->name, d.port);
  }
  out += fmt::format("decision:    {} ({})\n", d.allowed() ? "ALLOW" : "DENY", d.code);
  out += fmt::format("explanation: {}\n", d.explanation);
  if (!d.rule_id.empty()) out += fmt::format("rule:        {} (line {})\n", d.rule_id, d.rule_line);
  if (d.allowed()) {
    out += fmt::format("factor:      {}\n", policy::factor_names(d.factors));
    out += fmt::format("max_age:     {}\n",
                       d.max_age.count() == 0
                           ? std::string("0 (a touch for every channel)")
                           : policy::format_duration(static_cast<uint64_t>(d.max_age.count())));
    if (d.max_session.count() != 0) {
      out += fmt::format("max_session: {}\n",
                         policy::format_duration(static_cast<uint64_t>(d.max_session.count())));
    }
  }
  out += "Rules considered:\n";
  if (d.trace.empty()) out += "  (none)\n";
  for (const auto& t : d.trace) {
    out += fmt::format("  line {}  rule {} ({}): {}\n", t.line, t.rule_id,
                       t.allow ? "allow" : "deny", t.matched ? "matches" : t.why);
  }
  print(out);
  return kExitOk;
}

int PolicyCommand::test(const std::filesystem::path& config_file) const {
  auto config = policy::load_config(config_file);
  if (!config) return report(config.error());
  auto cases = policy::load_expectations(file_);
  if (!cases) return report(cases.error());
  auto compiled =
      policy::Policy::compile(std::make_shared<const policy::Config>(std::move(*config)));
  const auto results = policy::run_expectations(*compiled, *cases);
  size_t failed = 0;
  std::string out;
  for (const auto& r : results) {
    if (r.passed) {
      out += fmt::format("PASS {}\n", r.name);
    } else {
      ++failed;
      out += fmt::format("FAIL {}: {}\n", r.name, r.message);
    }
  }
  out += fmt::format("{}: {} passed, {} failed\n", counted(results.size(), "case"),
                     results.size() - failed, failed);
  print(out);
  return failed == 0 ? kExitOk : kExitError;
}

}  // namespace touchgate::cli
