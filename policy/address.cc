// Host and port text forms of the configuration: listen addresses, target addresses, and the
// matching of a client's forwarding request against targets (trust boundary: the requested host
// and port come from an authenticated client).
#include "policy/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace touchgate::policy {
namespace {

constexpr const char* kCode = "config_invalid";

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// canonical_ip returns the canonical text of a numeric address of family af, or "" if s is not one.
std::string canonical_ip(int af, std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return {};
  char in[INET6_ADDRSTRLEN] = {};
  std::memcpy(in, s.data(), s.size());
  unsigned char bin[sizeof(struct in6_addr)];
  if (::inet_pton(af, in, bin) != 1) return {};
  char out[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(af, bin, out, sizeof out) == nullptr) return {};
  return out;
}

// valid_dns_name: RFC 1123 labels (letters, digits, '-', and '_' which real zones use), 1..63
// each, at most 253 in all. A name whose last label is all digits must be a dotted-quad IPv4
// address (resolvers would read "10.1" as 10.0.0.1); the caller checks that first.
bool valid_dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  std::string_view last;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_';
      if (!ok) return false;
    }
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return !all_digits(last);
}

std::string bracket_if_v6(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

// parse_port: decimal 1..65535, digits only.
bool parse_port(std::string_view s, uint16_t* out) {
  if (!all_digits(s) || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
  if (v < 1 || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

// parse_listen_address: "a.b.c.d:port" or "[v6]:port"; the host is stored in canonical form.
Result<ListenAddress> parse_listen_address(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return fail(kCode, fmt::format("invalid listen address \"{}\": {}", s, why));
  };
  ListenAddress out;
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (rest.empty()) return bad("missing port (write \"[::1]:2222\")");
    if (rest.front() != ':') return bad("expected ':' after ']'");
    port = rest.substr(1);
    out.host = canonical_ip(AF_INET6, host);
    if (out.host.empty()) return bad("not a numeric IPv6 address inside [...]");
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port (write \"127.0.0.1:2222\")");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad("IPv6 addresses must be written in brackets, e.g. \"[::1]:2222\"");
    }
    out.host = canonical_ip(AF_INET, host);
    if (out.host.empty()) return bad("the host must be a numeric IPv4 address or [IPv6] address");
  }
  if (!parse_port(port, &out.port)) return bad("the port must be a number from 1 to 65535");
  return out;
}

// parse_target_address: "host[:port]" with host a DNS name or IPv4, or "[v6][:port]".
Result<Target> parse_target_address(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return fail(kCode, fmt::format("invalid target address \"{}\": {}", s, why));
  };
  Target out;
  std::string_view port;
  bool has_port = false;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    std::string_view host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':' after ']'");
      port = rest.substr(1);
      has_port = true;
    }
    if (canonical_ip(AF_INET6, host).empty()) return bad("not a numeric IPv6 address inside [...]");
    out.host = std::string(host);
  } else {
    size_t colons = static_cast<size_t>(std::count(s.begin(), s.end(), ':'));
    if (colons > 1)
      return bad("IPv6 addresses must be written in brackets, e.g. \"[2001:db8::1]:22\"");
    std::string_view host = s;
    if (colons == 1) {
      size_t colon = s.find(':');
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return bad("missing host");
    if (canonical_ip(AF_INET, host).empty() && !valid_dns_name(host)) {
      return bad("the host must be a DNS name, an IPv4 address or an [IPv6] address");
    }
    out.host = std::string(host);
  }
  if (has_port && !parse_port(port, &out.port))
    return bad("the port must be a number from 1 to 65535");
  return out;
}

std::string ListenAddress::to_string() const {
  return fmt::format("{}:{}", bracket_if_v6(host), port);
}

std::string Target::address() const {
  return fmt::format("{}:{}", bracket_if_v6(host), port);
}


}  // namespace touchgate::policy
