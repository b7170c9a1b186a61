// touchgate audit: verify the audit log's integrity, and search, show, follow, export and count
// its records (docs/audit-format.md). Reads the log directly; the daemon may be writing it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "audit/query.h"
#include "ssh/error.h"

namespace CLI {
class App;
}

namespace touchgate::cli {

// AuditCommand adds "audit" and its subcommands (verify, search, show, tail, export, stats,
// replay) to a command line and runs the one chosen. CLI11 binds the options to its members, so it stays where
// it was made.
//
// Exit statuses: verify 0 = clean (warnings are printed), 1 = tampered, 2 = a wrong command line
// or a log or key that cannot be read; replay 0 = played (or stopped by SIGINT/SIGTERM), 1 = no
// single recording matched, the file differs from its record (without --force) or cannot be
// read; the others 0 = done (records that do not parse are skipped with a warning), 1 = nothing
// could be read or (show) nothing matched, 2 = a wrong command line.
class AuditCommand {
 public:
  explicit AuditCommand(CLI::App& app);
  AuditCommand(const AuditCommand&) = delete;
  AuditCommand& operator=(const AuditCommand&) = delete;

  bool selected() const;
  bool command_chosen() const;
  std::string missing_command_message() const;
  int run(const std::filesystem::path& config_file) const;

 private:
  int verify(const std::filesystem::path& config_file) const;
  int search(const std::filesystem::path& dir) const;
  int show(const std::filesystem::path& dir) const;
  int tail(const std::filesystem::path& dir) const;
  int export_records(const std::filesystem::path& dir) const;
  int stats(const std::filesystem::path& dir) const;
  int replay(const std::filesystem::path& dir) const;

  // audit_dir is --dir, else the [audit] dir of the configuration.
  Result<std::filesystem::path> audit_dir(const std::filesystem::path& config_file) const;
  // filter builds the record filter from the options; a usage error is returned as an Error
  // whose code is "usage".
  Result<audit::Filter> filter() const;
  void add_filter_options(CLI::App* command);

  CLI::App* audit_ = nullptr;
  CLI::App* verify_ = nullptr;
  CLI::App* search_ = nullptr;
  CLI::App* show_ = nullptr;
  CLI::App* tail_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* stats_ = nullptr;
  CLI::App* replay_ = nullptr;

  std::string dir_;
  std::string key_;
  bool json_ = false;
  // Filters (search, export, stats).
  std::string user_;
  std::string target_;
  std::vector<std::string> events_;
  std::string outcome_;
  std::string conn_;
  std::string since_;
  std::string until_;
  uint64_t limit_ = 0;
  // show, tail, export.
  std::string id_;
  uint64_t lines_ = 10;
  bool follow_ = false;
  std::string format_;
  // replay.
  double speed_ = 1.0;
  double idle_limit_ = 2.0;
  bool no_wait_ = false;
  bool force_ = false;
};

}  // namespace touchgate::cli
