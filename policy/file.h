// Reading whole admin-supplied files (config, CA keys, revocation lists) with a size cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ssh/error.h"

namespace touchgate::policy {

// read_file returns the whole content of a regular file of at most max_size bytes. A missing,
// unreadable, non-regular or oversized file is an Error with `code` and the message
// "PATH: <why>" (e.g. "/etc/x.pub: cannot open: No such file or directory").
Result<std::vector<uint8_t>> read_file(const std::filesystem::path& file, size_t max_size,
                                       const std::string& code);

}  // namespace touchgate::policy
