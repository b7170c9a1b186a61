#include "gateway/upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "gateway/worker.h"

namespace touchgate::gateway {

std::string SocketAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return fmt::format("{}:{}", buf, ntohs(sin->sin_port));
  }
  if (storage.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    return fmt::format("[{}]:{}", buf, ntohs(sin6->sin6_port));
  }
  return "?";
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
  } else if (storage.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf,
              sizeof buf);
  }
  return buf;
}

std::pair<std::string, uint64_t> split_address(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return {text, 0};
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, std::strtoull(text.c_str() + colon + 1, nullptr, 10)};
}

namespace {

// Name lookups run on a small pool of threads (getaddrinfo blocks, up to its resolver's
// timeouts), never one thread per request: at most kLookupThreads at once, at most kLookupQueue
// waiting; beyond that a lookup fails at once ("target_resolve_busy"). The pool is never torn
// down: its threads may still block in getaddrinfo when the process exits.
constexpr size_t kLookupThreads = 4;
constexpr size_t kLookupQueue = 256;

class LookupPool {
 public:
  static LookupPool& instance() {
    static LookupPool* pool = new LookupPool();  // intentionally never destroyed
    return *pool;
  }
  bool submit(std::function<void()> job) {
    std::lock_guard lk(mu_);
    if (queue_.size() >= kLookupQueue) return false;
    queue_.push_back(std::move(job));
    if (idle_ == 0 && threads_ < kLookupThreads) {
      ++threads_;
      std::thread([this] { run(); }).detach();
    } else {
      cv_.notify_one();
    }
    return true;
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lk, [this] { return !queue_.empty(); });
      --idle_;
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      job();
      lk.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  size_t threads_ = 0;
  size_t idle_ = 0;
};

}  // namespace

void resolve_async(Worker& worker, std::weak_ptr<int> alive, std::string host, uint16_t port,
                   std::function<void(Result<std::vector<SocketAddress>>)> done) {
  Worker* w = &worker;
  w->runtime().resolving.fetch_add(1);
  auto shared_done =
      std::make_shared<std::function<void(Result<std::vector<SocketAddress>>)>>(std::move(done));
  const bool queued = LookupPool::instance().submit([w, alive, host, port, shared_done] {
    auto result = resolve_blocking(host, port);
    w->post([alive, shared_done, result = std::move(result)]() mutable {
      if (!alive.expired()) (*shared_done)(std::move(result));
    });
    w->runtime().resolving.fetch_sub(1);
  });
  if (!queued) {
    w->runtime().resolving.fetch_sub(1);
    w->post([alive = std::move(alive), shared_done, host] {
      if (!alive.expired())
        (*shared_done)(tl::unexpected(Error{
            "target_resolve_busy",
            fmt::format("too many name lookups are waiting; {} was not looked up", host)}));
    });
  }
}

SocketAddress local_address(int fd) {
  SocketAddress a;
  a.length = sizeof a.storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) {
    a.storage.ss_family = AF_UNSPEC;
  }
  return a;
}

bool resolve_numeric(const std::string& host, uint16_t port, SocketAddress* out) {
  *out = SocketAddress{};
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto* sin = reinterpret_cast<sockaddr_in*>(&out->storage);
  if (inet_pton(AF_INET, h.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    out->length = sizeof(sockaddr_in);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET6, h.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    out->length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

Result<std::vector<SocketAddress>> resolve_blocking(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    return fail("target_connect_failed",
                fmt::format("cannot resolve {}: {}", host, gai_strerror(rc)));
  }
  std::vector<SocketAddress> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SocketAddress a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = static_cast<socklen_t>(ai->ai_addrlen);
    out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) return fail("target_connect_failed", fmt::format("{} has no address", host));
  return out;
}

Result<int> start_connect(const SocketAddress& addr, bool* in_progress) {
  *in_progress = false;
  int fd = ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail("target_connect_failed", fmt::format("socket: {}", std::strerror(errno)));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) == 0) {
    return fd;
  }
  if (errno == EINPROGRESS) {
    *in_progress = true;
    return fd;
  }
  int err = errno;
  ::close(fd);
  return fail("target_connect_failed", std::strerror(err));
}

int connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace touchgate::gateway
