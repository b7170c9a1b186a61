// Host and port text forms used by the configuration (see touchgate.conf(5)).
#pragma once

#include <cstdint>
#include <string_view>

#include "policy/config.h"
#include "ssh/error.h"

namespace touchgate::policy {

// iequals compares ASCII text without regard to case.
bool iequals(std::string_view a, std::string_view b);

// parse_port accepts decimal 1..65535 (digits only, no sign).
bool parse_port(std::string_view text, uint16_t* out);

// parse_listen_address accepts "a.b.c.d:port" and "[v6]:port" with numeric hosts only (no zone
// ids); the host is returned in canonical form ("[0::1]:22" gives "::1"). Code "config_invalid",
// message "invalid listen address "...": why".
Result<ListenAddress> parse_listen_address(std::string_view text);

// parse_target_address accepts "host[:port]" with host a DNS name (RFC 1123 labels, '_' allowed)
// or dotted-quad IPv4, and "[v6][:port]"; the port defaults to 22. Only host and port of the
// result are set; the host is kept as written (without brackets). Names whose last label is all
// digits must be valid IPv4 ("10.1" is refused). Code "config_invalid".
Result<Target> parse_target_address(std::string_view text);


}  // namespace touchgate::policy
