// The touchgate command line: global options, the command tree and dispatch (see touchgate(8)).
#pragma once

namespace touchgate::cli {

// Process exit statuses of touchgate.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the command failed: "touchgate: MESSAGE (CODE)" on stderr
inline constexpr int kExitUsage = 2;  // the command line is wrong

// run parses argv, runs the chosen command and returns the process exit status.
int run(int argc, char** argv);

}  // namespace touchgate::cli
