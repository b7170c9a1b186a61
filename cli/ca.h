// touchgate ca pubkey: the public key of the gateway's CA ([ca]), the line targets put in
// sshd's TrustedUserCAKeys for terminating mode.
#pragma once

#include <filesystem>

namespace CLI {
class App;
}

namespace touchgate::cli {

class CaCommand {
 public:
  explicit CaCommand(CLI::App& app);
  CaCommand(const CaCommand&) = delete;
  CaCommand& operator=(const CaCommand&) = delete;

  bool selected() const;
  bool command_chosen() const;
  int run(const std::filesystem::path& config_file) const;

 private:
  CLI::App* ca_ = nullptr;
  CLI::App* pubkey_ = nullptr;
};

}  // namespace touchgate::cli
