// Non-blocking TCP connects to targets, with name resolution off the worker thread.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ssh/error.h"

namespace touchgate::gateway {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string to_string() const;
};

// resolve_numeric parses a numeric IPv4/IPv6 host; false if host is a DNS name.
bool resolve_numeric(const std::string& host, uint16_t port, SocketAddress* out);

// resolve_blocking runs getaddrinfo (call it only off the worker threads).
Result<std::vector<SocketAddress>> resolve_blocking(const std::string& host, uint16_t port);

// start_connect creates a non-blocking TCP socket (close-on-exec, TCP_NODELAY) and starts
// connecting. Returns the fd; *in_progress tells whether completion must be awaited (EPOLLOUT,
// then connect_result). Immediate failures are errors with code "target_connect_failed".
Result<int> start_connect(const SocketAddress& addr, bool* in_progress);

// connect_result reads SO_ERROR after the socket became writable; 0 when connected.
int connect_result(int fd);

}  // namespace touchgate::gateway
