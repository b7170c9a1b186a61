// touchgate reload and touchgate sessions: requests to the running daemon over its control socket
// ([server] control_socket; the wire format is gateway/control_protocol.h).
#pragma once

#include <filesystem>
#include <string>

namespace CLI {
class App;
}

#include "gateway/control_protocol.h"
#include "ssh/error.h"

namespace touchgate::cli {

// control_exchange sends one request to the daemon at `socket` and returns the detail of its
// "ok" reply; an "error" reply is the Error it names, an absent daemon control_unreachable.
Result<std::string> control_exchange(const std::filesystem::path& socket,
                                     const gateway::ControlRequest& request);

// ControlCommands adds "reload" and "sessions" (list, kill) to a command line and runs the one
// chosen. CLI11 binds the options to its members, so it stays where it was made.
class ControlCommands {
 public:
  explicit ControlCommands(CLI::App& app);
  ControlCommands(const ControlCommands&) = delete;
  ControlCommands& operator=(const ControlCommands&) = delete;

  // selected is true when the command line chose "reload" or "sessions".
  bool selected() const;
  // command_chosen is false for "sessions" without a subcommand; missing_command_message then
  // says what is missing.
  bool command_chosen() const;
  std::string missing_command_message() const;
  // run sends the request to the daemon found through config_file (or --socket) and returns the
  // exit status; errors are reported on stderr as "touchgate: MESSAGE (CODE)".
  int run(const std::filesystem::path& config_file) const;

 private:
  int reload(const std::filesystem::path& socket) const;
  int list(const std::filesystem::path& socket) const;
  int kill(const std::filesystem::path& socket) const;

  CLI::App* reload_ = nullptr;
  CLI::App* sessions_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* kill_ = nullptr;

  std::string socket_;
  bool json_ = false;
  std::string id_;
  std::string user_;
};

}  // namespace touchgate::cli
