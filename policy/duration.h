// Durations in the configuration: "30s", "5m", "12h", "7d", "1h30m" (see touchgate.conf(5)).
// parse_duration itself is declared in policy/config.h.
#pragma once

#include <cstdint>
#include <string>

namespace touchgate::policy {

// The longest duration parse_duration accepts (3650 days), so arithmetic on one never overflows.
inline constexpr uint64_t kMaxDurationSeconds = 3650ull * 86400;

// format_duration renders seconds in parse_duration's syntax, largest units first ("1h30m", "0s").
std::string format_duration(uint64_t seconds);

}  // namespace touchgate::policy
