// touchgate client-config: the ssh_config snippet users need to reach the gateway's targets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "policy/config.h"
#include "ssh/error.h"

namespace CLI {
class App;
}

namespace touchgate::cli {

// ClientConfigOptions: what the admin chose on the command line; empty strings mean "default".
struct ClientConfigOptions {
  std::string gateway;   // HostName users reach the gateway at, "host", "host:port", "[v6]:port"
  std::string user;      // the gateway login (a certificate principal); empty: left out
  std::string cert;      // CertificateFile; default ~/.ssh/id_ed25519-cert.pub
  std::string identity;  // IdentityFile; default: cert without "-cert.pub"
};

// render_client_config writes the snippet for config: a Host block for the gateway (its alias is
// [server] name) with HostName, Port, User, CertificateFile, IdentityFile and ForwardAgent, then
// Host lines for every configured target with ProxyJump to that alias, then (commented out)
// patterns for the destinations rules select with `hosts`. Every value written is checked to be
// safe in an ssh_config line; code "client_config_invalid" when one is not (a value that cannot
// be written, e.g. a path with a double quote).
Result<std::string> render_client_config(const policy::Config& config,
                                         const ClientConfigOptions& options);

// ClientConfigCommand adds "client-config" to a command line and runs it.
class ClientConfigCommand {
 public:
  explicit ClientConfigCommand(CLI::App& app);
  ClientConfigCommand(const ClientConfigCommand&) = delete;
  ClientConfigCommand& operator=(const ClientConfigCommand&) = delete;

  bool selected() const;
  // run loads config_file, prints the snippet on stdout and returns the exit status (errors on
  // stderr as "touchgate: MESSAGE (CODE)").
  int run(const std::filesystem::path& config_file) const;

 private:
  CLI::App* command_ = nullptr;
  ClientConfigOptions options_;
};

}  // namespace touchgate::cli
