// Non-blocking TCP connects to targets, with name resolution off the worker thread.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ssh/error.h"

namespace touchgate::gateway {

class Worker;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string to_string() const;
  // host is the numeric address alone, without port or brackets ("10.0.0.5", "::1").
  std::string host() const;
};

// resolve_numeric parses a numeric IPv4/IPv6 host; false if host is a DNS name.
bool resolve_numeric(const std::string& host, uint16_t port, SocketAddress* out);

// resolve_blocking runs getaddrinfo (call it only off the worker threads).
Result<std::vector<SocketAddress>> resolve_blocking(const std::string& host, uint16_t port);

// resolve_async resolves host on a helper thread and runs done(addresses) on `worker`, unless
// `alive` has expired by then (the asker is gone or cancelled). The daemon keeps the workers
// alive at exit while lookups run (Runtime::resolving).
void resolve_async(Worker& worker, std::weak_ptr<int> alive, std::string host, uint16_t port,
                   std::function<void(Result<std::vector<SocketAddress>>)> done);

// start_connect creates a non-blocking TCP socket (close-on-exec, TCP_NODELAY) and starts
// connecting. Returns the fd; *in_progress tells whether completion must be awaited (EPOLLOUT,
// then connect_result). Immediate failures are errors with code "target_connect_failed".
Result<int> start_connect(const SocketAddress& addr, bool* in_progress);

// split_address splits "addr:port" / "[v6]:port" into the address and the port (0 if none).
std::pair<std::string, uint64_t> split_address(const std::string& text);

// local_address is our end of a connected socket ("?" as to_string when it cannot be read).
SocketAddress local_address(int fd);

// connect_result reads SO_ERROR after the socket became writable; 0 when connected.
int connect_result(int fd);

}  // namespace touchgate::gateway
