#include "cli/ca.h"

#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "cli/context.h"
#include "gateway/config_bridge.h"
#include "pkcs11/open.h"
#include "policy/config.h"
#include "ssh/cert_builder.h"
#include "ssh/digest.h"

namespace touchgate::cli {

CaCommand::CaCommand(CLI::App& app) {
  ca_ = app.add_subcommand("ca", "The gateway's own CA (terminating mode)");
  ca_->footer(
      "The CA signs the short-lived certificates touchgated logs in to targets with; it is the "
      "[ca] of the configuration (a PKCS#11 token, or a key file).");
  pubkey_ = ca_->add_subcommand(
      "pubkey", "Print the CA's public key: the line targets put in sshd's TrustedUserCAKeys");
}

bool CaCommand::selected() const { return ca_->parsed(); }

bool CaCommand::command_chosen() const { return pubkey_->parsed(); }

int CaCommand::run(const std::filesystem::path& config_file) const {
  auto config = policy::load_config(config_file);
  if (!config) return report(config.error());
  if (!config->ca.configured()) {
    return report(Error{"ca_not_configured",
                        fmt::format("{} has no [ca] section: terminating mode is off",
                                    config_file.string())});
  }
  auto signer = pkcs11::open_ca_signer(gateway::ca_key_config(config->ca));
  if (!signer) return report(signer.error());
  const std::string line = ssh::certificate_line((*signer)->public_key(),
                                                 "touchgate-ca@" + config->server.name);
  std::printf("%s\n", line.c_str());
  std::fprintf(stderr, "touchgate: %s\n", (*signer)->describe().c_str());
  return kExitOk;
}

}  // namespace touchgate::cli
