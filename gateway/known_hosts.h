// The host keys of targets with trust_on_first_use ([terminating] known_hosts): one line
// "<target> <key type> <base64>" per target, written once, when the target is first reached.
// Several workers and several gateway processes may reach a new target at the same moment:
// under a process-wide mutex and an exclusive flock on the file, exactly one key becomes the
// target's, and it is on disk (fsync) before anyone trusts it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "ssh/error.h"

namespace touchgate::gateway {

struct KnownHostKey {
  enum class Outcome {
    kSame,      // the file holds this key for the target
    kOther,     // the file holds another key for the target (known_blob)
    kRecorded,  // the target had no line: this key is now its key
  };
  Outcome outcome = Outcome::kSame;
  std::vector<uint8_t> known_blob;  // kOther: the key on file
};

// check_or_record looks target up in file and, when it has no line, records blob for it.
// Lines that do not parse are skipped (they count for no target). Errors: "known_hosts_io" (the
// file cannot be opened, locked, read, written or synced), "known_hosts_too_large" (over 16 MiB).
Result<KnownHostKey> check_or_record(const std::filesystem::path& file, const std::string& target,
                                     std::span<const uint8_t> blob);

}  // namespace touchgate::gateway
