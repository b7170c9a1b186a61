#include "cli/client_config.h"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "cli/context.h"
#include "policy/address.h"

namespace touchgate::cli {
namespace {

constexpr const char* kCode = "client_config_invalid";
constexpr const char* kDefaultCert = "~/.ssh/id_ed25519-cert.pub";
constexpr std::string_view kCertSuffix = "-cert.pub";
constexpr size_t kLineWidth = 78;
constexpr size_t kMaxValue = 1024;

// Characters that need no quoting in an ssh_config value.
bool plain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("._/~+@:,-%").find(c) != std::string_view::npos;
}

bool control_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// user_problem: why NAME cannot be written as an ssh_config User, or "" when it can. ssh splits
// values on blanks and quotes, '#' starts a comment, and newer clients expand % and ${} in User.
std::string user_problem(std::string_view name) {
  if (name.empty()) return "the user name is empty";
  if (name.size() > 256) return "the user name is longer than 256 bytes";
  for (char c : name) {
    if (control_char(c) || std::string_view(" \t\"'\\#%$").find(c) != std::string_view::npos) {
      return fmt::format(
          "the user name \"{}\" cannot be written in ssh_config (no blanks, "
          "quotes, backslashes, '#', '%', '$' or control characters)",
          name);
    }
  }
  return "";
}

// path_problem: why PATH cannot be written as an ssh_config file name, or "" when it can. A path
// is written in double quotes when it has other than plain characters; '%' is escaped as "%%";
// "${" would be read as an environment variable and cannot be escaped.
std::string path_problem(std::string_view path) {
  if (path.empty()) return "the file name is empty";
  if (path.size() > kMaxValue) return "the file name is too long";
  for (char c : path) {
    if (control_char(c) || c == '"' || c == '\\') {
      return fmt::format(
          "the file name \"{}\" cannot be written in ssh_config (no double "
          "quotes, backslashes or control characters)",
          path);
    }
  }
  if (path.find("${") != std::string_view::npos) {
    return fmt::format(
        "the file name \"{}\" cannot be written in ssh_config (\"${{\" would be "
        "read as an environment variable)",
        path);
  }
  return "";
}

struct GatewayAddress {
  std::string host;
  std::optional<uint16_t> port;  // none: the listen address's port
};

// parse_gateway accepts "host", "host:port", "[v6]" and "[v6]:port" (host a DNS name or a numeric
// address, as in a [[target]] address).
Result<GatewayAddress> parse_gateway(std::string_view text) {
  auto parsed = policy::parse_target_address(text);
  if (!parsed) {
    return fail(kCode, fmt::format("--gateway {}: {}", text, parsed.error().message));
  }
  GatewayAddress out;
  out.host = parsed->host;
  const bool bracketed = !text.empty() && text.front() == '[';
  const bool has_port = bracketed ? text.find("]:") != std::string_view::npos
                                  : text.find(':') != std::string_view::npos;
  if (has_port) out.port = parsed->port;
  return out;
}

// path_value writes a file name for ssh_config: '%' doubled (a literal percent), and in double
// quotes unless every character is plain.
std::string path_value(std::string_view path) {
  std::string v;
  for (char c : path) {
    v += c;
    if (c == '%') v += '%';
  }
  if (std::all_of(path.begin(), path.end(), plain_char)) return v;
  return "\"" + v + "\"";
}

// host_lines groups names into "Host a b c" lines of at most kLineWidth characters.
std::vector<std::string> host_lines(const std::vector<std::string>& names, std::string_view lead) {
  std::vector<std::string> lines;
  std::string line;
  for (const std::string& name : names) {
    if (!line.empty() && line.size() + 1 + name.size() > kLineWidth) {
      lines.push_back(std::move(line));
      line.clear();
    }
    line += line.empty() ? fmt::format("{}Host {}", lead, name) : " " + name;
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

bool wildcard(const std::string& host) {
  return host == "0.0.0.0" || host == "::";
}

// host_glob_ok: a `hosts` glob that can be written as an ssh_config Host pattern.
bool host_glob_ok(std::string_view glob) {
  return !glob.empty() && std::all_of(glob.begin(), glob.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == '*' || c == '?';
  });
}

void add_unique(std::vector<std::string>* list, const std::string& value) {
  if (std::find(list->begin(), list->end(), value) == list->end()) list->push_back(value);
}

}  // namespace

Result<std::string> render_client_config(const policy::Config& config,
                                         const ClientConfigOptions& options) {
  const std::string& alias = config.server.name;
  std::string hostname;
  uint16_t port = config.server.listen.empty() ? 22 : config.server.listen.front().port;
  bool guessed_hostname = false;
  if (!options.gateway.empty()) {
    auto gw = parse_gateway(options.gateway);
    if (!gw) return tl::unexpected(gw.error());
    hostname = gw->host;
    if (gw->port) port = *gw->port;
  } else if (!config.server.listen.empty() && !wildcard(config.server.listen.front().host)) {
    hostname = config.server.listen.front().host;
  } else {
    hostname = alias;
    guessed_hostname = true;
  }
  if (!options.user.empty()) {
    if (auto why = user_problem(options.user); !why.empty()) return fail(kCode, why);
  }
  std::string cert = options.cert.empty() ? kDefaultCert : options.cert;
  if (auto why = path_problem(cert); !why.empty()) return fail(kCode, "--cert: " + why);
  std::string identity = options.identity;
  if (identity.empty()) {
    const std::string_view c = cert;
    if (c.size() <= kCertSuffix.size() || c.substr(c.size() - kCertSuffix.size()) != kCertSuffix) {
      return fail(kCode, fmt::format("--cert {} does not end in \"{}\": name its private key "
                                     "with --identity",
                                     cert, kCertSuffix));
    }
    identity = std::string(c.substr(0, c.size() - kCertSuffix.size()));
  }
  if (auto why = path_problem(identity); !why.empty()) return fail(kCode, "--identity: " + why);

  std::string out;
  auto line = [&out](std::string_view text) {
    out += text;
    out += '\n';
  };
  line(fmt::format("# ssh_config for the touchgate gateway \"{}\" (touchgate client-config).",
                   alias));
  line("# Put it in ~/.ssh/config above any \"Host *\" block: ssh keeps the first value it finds.");
  line("");
  line(fmt::format("Host {}", alias));
  if (guessed_hostname) {
    line("    # The gateway listens on all its addresses: use the name users reach it by");
    line("    # (touchgate client-config --gateway HOST).");
  }
  line(fmt::format("    HostName {}", hostname));
  if (port != 22) line(fmt::format("    Port {}", port));
  if (options.user.empty()) {
    line("    # The gateway login must be one of your certificate's principals; without a");
    line("    # User line ssh uses your local login name.");
    line("    # User NAME");
  } else {
    line("    # The gateway login: one of your certificate's principals.");
    line(fmt::format("    User {}", options.user));
  }
  if (options.cert.empty()) {
    line("    # Your SSO certificate and its private key (adjust to where your SSO puts them).");
  } else {
    line("    # Your SSO certificate and its private key.");
  }
  line(fmt::format("    CertificateFile {}", path_value(cert)));
  line(fmt::format("    IdentityFile {}", path_value(identity)));
  line("    # Offer only the certificate as the login key, not every key in the agent.");
  line("    IdentitiesOnly yes");
  line("    # The gateway asks your hardware key for a touch through the forwarded agent (used");
  line("    # only for that one signature, never passed on). ssh -J does not forward the agent");
  line("    # to the jump host, so it is set here.");
  line("    ForwardAgent yes");

  std::vector<std::string> names;
  std::vector<std::string> skipped;
  for (const policy::Target& t : config.targets) {
    if (policy::iequals(t.name, alias)) {
      skipped.push_back(t.name);
    } else {
      names.push_back(t.name);
    }
  }
  line("");
  if (names.empty()) {
    line("# No [[target]] is configured at the gateway yet.");
  } else {
    line(fmt::format("# The configured targets: \"ssh {}\" goes through the gateway; the inner",
                     names.front()));
    line("# connection authenticates to the target end to end.");
    for (const std::string& host : host_lines(names, "")) {
      line(host);
      line(fmt::format("    ProxyJump {}", alias));
    }
  }
  for (const std::string& name : skipped) {
    line(fmt::format("# The target \"{}\" has the gateway's own name: reach it with", name));
    line(fmt::format("# ssh -J {} {}.", alias, name));
  }

  std::vector<std::string> globs;
  std::vector<std::string> networks;
  for (const policy::RuleConfig& rule : config.rules) {
    if (!rule.allow) continue;
    for (const std::string& h : rule.hosts) {
      if (h.find('/') != std::string::npos) {
        add_unique(&networks, h);
      } else if (host_glob_ok(h)) {
        add_unique(&globs, h);
      }
    }
  }
  if (!globs.empty() || !networks.empty()) {
    line("");
    line("# Rules also allow destinations that are not configured targets (`hosts`).");
    if (!globs.empty()) {
      line("# To reach them through the gateway, uncomment:");
      for (const std::string& host : host_lines(globs, "# ")) {
        line(host);
        line(fmt::format("#     ProxyJump {}", alias));
      }
    }
    if (!networks.empty()) {
      line(fmt::format("# Addresses in {}: ssh -J {} ADDRESS", fmt::join(networks, ", "), alias));
    }
  }

  // Terminating mode: offered when the gateway has a CA key and a rule allows shell, exec or
  // sftp somewhere.
  const auto terminating_mask = static_cast<uint8_t>(
      static_cast<uint8_t>(policy::Action::kShell) | static_cast<uint8_t>(policy::Action::kExec) |
      static_cast<uint8_t>(policy::Action::kSftp));
  const bool terminating =
      config.ca.configured() &&
      std::any_of(config.rules.begin(), config.rules.end(), [&](const policy::RuleConfig& r) {
        return r.allow && (r.actions & terminating_mask) != 0;
      });
  if (terminating) {
    line("");
    line("# Terminating mode: the gateway logs in to the target itself and records the session.");
    line(fmt::format("#   ssh -t {0} TARGET    a shell; ssh {0} TARGET COMMAND: a command", alias));
    line(fmt::format("#   rsync -e ssh FILE PRINCIPAL+TARGET@{}:FILE", alias));
    line("# sftp and scp never forward the agent the touch needs: open a master connection that");
    line("# does, then run them through it:");
    line(fmt::format("#   ssh -fNM -S ~/.ssh/tg-%C PRINCIPAL+TARGET@{}", alias));
    line(fmt::format("#   sftp -o ControlPath=~/.ssh/tg-%C PRINCIPAL+TARGET@{}", alias));
    line(fmt::format("# ssh {} alone lists what you may reach.", alias));
  }
  return out;
}

ClientConfigCommand::ClientConfigCommand(CLI::App& app) {
  command_ = app.add_subcommand("client-config",
                                "Print the ssh_config snippet users need to reach the targets");
  auto check = [](std::string (*problem)(std::string_view)) {
    return CLI::Validator([problem](std::string& v) { return problem(v); }, "", "");
  };
  command_
      ->add_option("--gateway", options_.gateway,
                   "Address users reach the gateway at (default: the first [server] listen "
                   "address)")
      ->option_text("HOST[:PORT]")
      ->check(check([](std::string_view v) {
        auto gw = parse_gateway(v);
        return gw ? std::string() : gw.error().message;
      }));
  command_
      ->add_option("--user", options_.user,
                   "Gateway login, one of the user's certificate principals (default: none)")
      ->option_text("NAME")
      ->check(check(user_problem));
  command_
      ->add_option("--cert", options_.cert,
                   "The user's certificate (default: ~/.ssh/id_ed25519-cert.pub)")
      ->option_text("FILE")
      ->check(check(path_problem));
  command_
      ->add_option("--identity", options_.identity,
                   "The certificate's private key (default: --cert without -cert.pub)")
      ->option_text("FILE")
      ->check(check(path_problem));
}

bool ClientConfigCommand::selected() const {
  return command_->parsed();
}

int ClientConfigCommand::run(const std::filesystem::path& config_file) const {
  auto config = policy::load_config(config_file);
  if (!config) return report(config.error());
  auto text = render_client_config(*config, options_);
  if (!text) return report(text.error());
  std::fwrite(text->data(), 1, text->size(), stdout);
  return kExitOk;
}

}  // namespace touchgate::cli
