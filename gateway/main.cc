// touchgated: the touchgate SSH gateway daemon. See touchgated(8).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gateway/daemon.h"

namespace {

constexpr const char* kUsage =
    "usage: touchgated [-t] [-d] [-f FILE]\n"
    "\n"
    "SSH gateway: accepts OpenSSH user certificates from trusted CAs, demands a fresh touch\n"
    "of a hardware key enrolled for the user (FIDO2 or PIV, through the forwarded agent;\n"
    "enroll with `touchgate keys add`), decides by its access policy ([[rule]]s, deny by\n"
    "default; see touchgate-policy(5)) and relays `ssh -J user@gateway target`.\n"
    "`ssh -A user@gateway help|whoami|mfa-test` on the gateway itself.\n"
    "\n"
    "  -f FILE  configuration file (default: $TOUCHGATE_CONFIG or /etc/touchgate/touchgate.toml)\n"
    "  -t       check the configuration and trust files, then exit (0 valid, 1 invalid)\n"
    "  -d       debug logging\n"
    "  -h       this help\n"
    "  -V       version\n"
    "\n"
    "Runs in the foreground and logs one key=value line per event to stderr.\n"
    "SIGTERM/SIGINT: stop accepting, let sessions finish (drain_timeout), exit 0.\n"
    "SIGHUP (or `touchgate reload`): reload the configuration; sessions keep running.\n";

}  // namespace

int main(int argc, char** argv) {
  touchgate::gateway::DaemonOptions options;
  const char* env = std::getenv("TOUCHGATE_CONFIG");
  options.config = env != nullptr && *env != '\0' ? env : "/etc/touchgate/touchgate.toml";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-f" && i + 1 < argc) {
      options.config = argv[++i];
    } else if (arg == "-t") {
      options.check_only = true;
    } else if (arg == "-d") {
      options.debug = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "-V" || arg == "--version") {
      std::puts("touchgated " TOUCHGATE_VERSION);
      return 0;
    } else {
      std::fprintf(stderr, "touchgated: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return 1;
    }
  }
  return touchgate::gateway::run_daemon(options);
}
