#include "cli/context.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "cli/app.h"
#include "policy/config.h"

namespace touchgate::cli {

std::filesystem::path config_from_environment() {
  const char* env = std::getenv("TOUCHGATE_CONFIG");
  return env != nullptr && *env != '\0' ? env : "/etc/touchgate/touchgate.toml";
}

Result<std::unique_ptr<store::Store>> open_store(const std::filesystem::path& config_file) {
  auto config = policy::load_config(config_file);
  if (!config) return tl::unexpected(config.error());
  const std::filesystem::path& dir = config->server.state_dir;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    if (!dir.parent_path().empty()) std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec || (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
      const std::string why = ec ? ec.message() : std::strerror(errno);
      return fail("state_dir_unusable",
                  fmt::format("{}: cannot create the state directory: {}", dir.string(), why));
    }
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return fail("state_dir_unusable", fmt::format("{}: not a directory", dir.string()));
  }
  return store::Store::open(store::default_database_path(dir.string()));
}

int report(const Error& error) {
  std::fprintf(stderr, "touchgate: %s (%s)\n", error.message.c_str(), error.code.c_str());
  return kExitError;
}

}  // namespace touchgate::cli
