// What commands share: the configuration file they were pointed at, the store it names, and how
// an error is reported.
#pragma once

#include <filesystem>
#include <memory>

#include "ssh/error.h"
#include "store/store.h"

namespace touchgate::cli {

// config_from_environment is $TOUCHGATE_CONFIG when set and not empty, else
// /etc/touchgate/touchgate.toml (what -f overrides).
std::filesystem::path config_from_environment();

// open_store loads the configuration file (errors "config_unreadable", "config_invalid"),
// creates its state_dir with mode 0700 when missing ("state_dir_unusable") and opens the store
// there (store::Store::open codes).
Result<std::unique_ptr<store::Store>> open_store(const std::filesystem::path& config_file);

// report prints "touchgate: MESSAGE (CODE)" on stderr and returns kExitError.
int report(const Error& error);

}  // namespace touchgate::cli
