// Trust boundary: parses address lists from certificates (CA-signed, but treated as untrusted).
#include "ssh/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>

namespace touchgate::ssh {
namespace {

constexpr size_t kMaxCidrEntries = 256;
constexpr size_t kMaxCidrText = INET6_ADDRSTRLEN + 4;  // address, '/', up to 3 digits
constexpr std::string_view kCidrChars = "0123456789abcdefABCDEF.:/";
constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// parse_raw parses without normalising v4-mapped IPv6 addresses.
bool parse_raw(std::string_view text, IpAddress* out) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  if (text.find('\0') != std::string_view::npos) return false;  // inet_pton would stop there
  char buf[INET6_ADDRSTRLEN] = {};
  std::copy(text.begin(), text.end(), buf);
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes.data()) != 1) return false;
    a.v6 = false;
  } else {
    if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return false;
    a.v6 = true;
  }
  *out = a;
  return true;
}

bool is_v4_mapped(const IpAddress& a) {
  return a.v6 && std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), a.bytes.begin());
}

IpAddress unmap(const IpAddress& a) {
  IpAddress v4;
  std::copy(a.bytes.begin() + 12, a.bytes.end(), v4.bytes.begin());
  return v4;
}

bool prefix_match(const IpAddress& a, const IpAddress& b, int prefix) {
  const int full = prefix / 8;
  for (int i = 0; i < full; ++i) {
    if (a.bytes[static_cast<size_t>(i)] != b.bytes[static_cast<size_t>(i)]) return false;
  }
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[static_cast<size_t>(full)] & mask) == (b.bytes[static_cast<size_t>(full)] & mask);
}

bool host_bits_zero(const IpAddress& a, int prefix) {
  const int width = a.v6 ? 128 : 32;
  for (int bit = prefix; bit < width; ++bit) {
    if (a.bytes[static_cast<size_t>(bit / 8)] & (0x80 >> (bit % 8))) return false;
  }
  return true;
}

}  // namespace

Result<IpAddress> IpAddress::parse(std::string_view text) {
  IpAddress a;
  if (!parse_raw(text, &a)) return fail("address_malformed", "invalid IP address");
  if (is_v4_mapped(a)) return unmap(a);
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf) == nullptr) return {};
  return buf;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  auto malformed = [] { return fail("cidr_malformed", "invalid address or CIDR block"); };
  if (text.empty() || text.size() > kMaxCidrText ||
      text.find_first_not_of(kCidrChars) != std::string_view::npos) {
    return malformed();
  }
  std::string_view addr_text = text;
  std::string_view prefix_text;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr_text = text.substr(0, slash);
    prefix_text = text.substr(slash + 1);
    if (prefix_text.empty() || prefix_text.size() > 3 ||
        prefix_text.find_first_not_of("0123456789") != std::string_view::npos) {
      return malformed();
    }
  }
  Cidr c;
  if (!parse_raw(addr_text, &c.base)) return malformed();
  const int width = c.base.v6 ? 128 : 32;
  c.prefix = width;
  if (!prefix_text.empty()) {
    c.prefix = 0;
    for (char ch : prefix_text) c.prefix = c.prefix * 10 + (ch - '0');
    if (c.prefix > width) return malformed();
  }
  if (!host_bits_zero(c.base, c.prefix)) return malformed();
  // A v4-mapped block is the IPv4 block it maps (addresses are normalised the same way).
  if (is_v4_mapped(c.base) && c.prefix >= 96) {
    c.base = unmap(c.base);
    c.prefix -= 96;
  }
  return c;
}

bool Cidr::contains(const IpAddress& addr) const {
  if (addr.v6 != base.v6) return false;
  return prefix_match(addr, base, prefix);
}

Result<std::vector<Cidr>> parse_cidr_list(std::string_view text) {
  std::vector<Cidr> out;
  if (text.empty()) return fail("cidr_malformed", "empty address list");
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view entry = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (out.size() >= kMaxCidrEntries) return fail("cidr_malformed", "address list is too long");
    auto c = Cidr::parse(entry);
    if (!c) {
      return fail("cidr_malformed",
                  "entry " + std::to_string(out.size() + 1) + " of the address list is invalid");
    }
    out.push_back(*c);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool cidr_list_contains(const std::vector<Cidr>& list, const IpAddress& addr) {
  return std::any_of(list.begin(), list.end(), [&](const Cidr& c) { return c.contains(addr); });
}

}  // namespace touchgate::ssh
