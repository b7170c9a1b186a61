// Host keys: make sure each configured host key exists (generating ed25519 keys on first start).
#pragma once

#include <filesystem>
#include <vector>

#include "ssh/error.h"

namespace touchgate::gateway {

// ensure_host_keys creates missing host keys as ed25519 (private file mode 0600, plus a .pub) and
// checks that existing ones are readable private keys. Code "host_key_invalid".
Result<void> ensure_host_keys(const std::vector<std::filesystem::path>& paths);

}  // namespace touchgate::gateway
