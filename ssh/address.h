// IP addresses and CIDR lists, as used by certificate source-address and by the config.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"

namespace touchgate::ssh {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4: first 4 bytes used

  // parse accepts dotted IPv4 and RFC 4291 IPv6 text (no brackets, no zone). An IPv4-mapped IPv6
  // address (::ffff:a.b.c.d) is normalised to IPv4.
  static Result<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress base;  // host bits are zero
  int prefix = 0;  // 0..32 (v4) or 0..128 (v6)

  // parse accepts "a.b.c.d", "a.b.c.d/n", "v6", "v6/n"; host bits set below the prefix are refused
  // (like OpenSSH's addr_match_cidr_list). Code "cidr_malformed".
  static Result<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& addr) const;
};

// parse_cidr_list parses OpenSSH's comma-separated source-address list (no spaces, not empty,
// at most 256 entries). Code "cidr_malformed".
Result<std::vector<Cidr>> parse_cidr_list(std::string_view text);

// cidr_list_contains is true if any entry contains addr.
bool cidr_list_contains(const std::vector<Cidr>& list, const IpAddress& addr);

}  // namespace touchgate::ssh
