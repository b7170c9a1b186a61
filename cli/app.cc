#include "cli/app.h"

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/audit.h"
#include "cli/ca.h"
#include "cli/client_config.h"
#include "cli/context.h"
#include "cli/control.h"
#include "cli/keys.h"
#include "cli/policy.h"

namespace touchgate::cli {
namespace {

// command_path is "touchgate keys add" for the deepest subcommand the parser reached.
std::string command_path(const CLI::App& app) {
  std::string path = app.get_name();
  const CLI::App* at = &app;
  for (;;) {
    auto chosen = at->get_subcommands();
    if (chosen.empty()) return path;
    at = chosen.front();
    path += " " + at->get_name();
  }
}

// usage_error reports a wrong command line and returns kExitUsage.
int usage_error(const CLI::App& app, const std::string& message) {
  std::fprintf(stderr, "touchgate: %s\nRun '%s --help' for usage.\n", message.c_str(),
               command_path(app).c_str());
  return kExitUsage;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app("Administer the touchgate SSH gateway: enrolled hardware keys, the access policy, "
                "running sessions, configuration reload, the audit log.",
                "touchgate");
  app.fallthrough();  // global options are accepted after the command too
  app.footer("See touchgate(8).");
  app.get_formatter()->column_width(32);

  std::string config = config_from_environment().string();
  app.add_option("-f,--config", config,
                 "Configuration file (default: $TOUCHGATE_CONFIG, else "
                 "/etc/touchgate/touchgate.toml)")
      ->option_text("FILE");
  app.set_version_flag("-V,--version", "touchgate " TOUCHGATE_VERSION);
  // At most one command; a missing one is reported below, after CLI11 has had its say about
  // unknown arguments (which would otherwise be hidden behind "a command is required").
  app.require_subcommand(0, 1);

  KeysCommand keys(app);
  PolicyCommand policy(app);
  ClientConfigCommand client_config(app);
  CaCommand ca(app);
  ControlCommands control(app);
  AuditCommand audit(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e.what());
  }
  if (keys.selected()) {
    if (!keys.command_chosen()) return usage_error(app, keys.missing_command_message());
    return keys.run(config);
  }
  if (policy.selected()) {
    if (!policy.command_chosen()) return usage_error(app, policy.missing_command_message());
    return policy.run(config);
  }
  if (client_config.selected()) return client_config.run(config);
  if (ca.selected()) {
    if (!ca.command_chosen()) return usage_error(app, "\"touchgate ca\" needs a command: pubkey");
    return ca.run(config);
  }
  if (control.selected()) {
    if (!control.command_chosen()) return usage_error(app, control.missing_command_message());
    return control.run(config);
  }
  if (audit.selected()) {
    if (!audit.command_chosen()) return usage_error(app, audit.missing_command_message());
    return audit.run(config);
  }
  return usage_error(app,
                     "a command is required: keys, policy, client-config, reload, sessions, audit");
}

}  // namespace touchgate::cli
