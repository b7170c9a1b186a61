// touchgate policy: check the access policy of a configuration, explain one decision for a real
// certificate, and run a table of expected decisions against it.
#pragma once

#include <filesystem>
#include <string>

namespace CLI {
class App;
}

namespace touchgate::cli {

// PolicyCommand adds "policy" and its subcommands (check, explain, test) to a command line and
// runs the one chosen. CLI11 binds the options to its members, so it stays where it was made.
//
// Exit statuses: check 0 = no errors (warnings are printed), 1 = the configuration does not load
// or lint found errors; explain 0 whatever the decision, 1 when the configuration, the trust set
// or the certificate cannot be read; test 0 = every case passed, 1 = a case failed or a file is
// invalid; 2 = a wrong command line.
class PolicyCommand {
 public:
  explicit PolicyCommand(CLI::App& app);
  PolicyCommand(const PolicyCommand&) = delete;
  PolicyCommand& operator=(const PolicyCommand&) = delete;

  bool selected() const;
  bool command_chosen() const;
  std::string missing_command_message() const;
  int run(const std::filesystem::path& config_file) const;

 private:
  int check(const std::filesystem::path& config_file) const;
  int explain(const std::filesystem::path& config_file) const;
  int test(const std::filesystem::path& config_file) const;

  CLI::App* policy_ = nullptr;
  CLI::App* check_ = nullptr;
  CLI::App* explain_ = nullptr;
  CLI::App* test_ = nullptr;

  std::string file_;  // check: the file to check; test: the test table
  std::string cert_;
  std::string target_;
  std::string user_;
  std::string from_;
  std::string at_;
  std::string action_ = "jump";
  bool json_ = false;
};

}  // namespace touchgate::cli
