// touchgate keys: enroll, list and revoke users' hardware keys and clear suspected clones.
#pragma once

#include <filesystem>
#include <string>

namespace CLI {
class App;
}

namespace touchgate::cli {

// KeysCommand adds "keys" and its subcommands (add, list, revoke, clear-clone) to a command line
// and runs the one chosen. CLI11 binds the options to its members, so it stays where it was made.
class KeysCommand {
 public:
  explicit KeysCommand(CLI::App& app);
  KeysCommand(const KeysCommand&) = delete;
  KeysCommand& operator=(const KeysCommand&) = delete;

  // selected is true when the command line chose "keys".
  bool selected() const;
  // command_chosen is true when one of the keys subcommands was chosen; when not,
  // missing_command_message says what is missing.
  bool command_chosen() const;
  std::string missing_command_message() const;
  // run runs the chosen subcommand against the store of config_file and returns the exit status
  // (errors are reported on stderr as "touchgate: MESSAGE (CODE)").
  int run(const std::filesystem::path& config_file) const;

 private:
  int add(const std::filesystem::path& config_file) const;
  int list(const std::filesystem::path& config_file) const;
  int revoke(const std::filesystem::path& config_file) const;
  int clear_clone(const std::filesystem::path& config_file) const;

  CLI::App* keys_ = nullptr;
  CLI::App* add_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* revoke_ = nullptr;
  CLI::App* clear_clone_ = nullptr;

  std::string user_;
  std::string kind_;
  std::string label_;
  bool pin_required_ = false;
  std::string key_file_;
  bool json_ = false;
  std::string fingerprint_;
};

}  // namespace touchgate::cli
