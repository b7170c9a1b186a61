// touchgated's top level: load and check the configuration, open listeners, run the workers,
// accept connections, and drain on SIGTERM.
#pragma once

#include <filesystem>

namespace touchgate::gateway {

struct DaemonOptions {
  std::filesystem::path config;
  bool check_only = false;  // -t
  bool debug = false;       // -d
};

// run_daemon returns the process exit status: 0 after a clean drain, 1 on configuration or
// startup errors (a message on stderr).
int run_daemon(const DaemonOptions& options);

}  // namespace touchgate::gateway
