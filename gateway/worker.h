// A worker thread: one epoll loop owning its connections. Connections never move between
// workers; nothing on a worker blocks. Other threads talk to a worker only through post().
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gateway/pollable.h"
#include "gateway/runtime.h"
#include "ssh/address.h"

namespace touchgate::gateway {

class Connection;

// What the acceptor knows about a freshly accepted client.
struct Accepted {
  ssh_session session = nullptr;  // owned; not yet polled by anyone
  uint64_t id = 0;
  std::string peer;               // "addr:port" for logs
  ssh::IpAddress peer_ip;
  std::chrono::steady_clock::time_point accepted_at;
};

class Worker {
 public:
  using Clock = std::chrono::steady_clock;

  Worker(int index, Runtime& runtime);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void join();

  // post runs fn on the worker thread (thread-safe).
  void post(std::function<void()> fn);
  // adopt hands an accepted session to this worker (thread-safe).
  void adopt(Accepted accepted);
  // drain: disconnect unauthenticated clients now, refuse new channels, and close everything
  // still open at deadline; the thread exits once no connection is left (thread-safe).
  void drain(Clock::time_point deadline);

  // For objects living on this worker (worker thread only).
  bool watch(int fd, uint32_t events, Pollable* p);
  bool rewatch(int fd, uint32_t events, Pollable* p);
  void unwatch(int fd);
  void mark_dirty(Connection* c);
  // linger keeps a closed connection's socket (fd, owned) open to drain input until EOF or a
  // short timeout, so that the client reads our last packets instead of a reset.
  void linger(int fd);
  Runtime& runtime() { return runtime_; }
  // scratch is a per-worker relay buffer (worker thread only).
  uint8_t* scratch() { return scratch_.data(); }
  size_t scratch_size() const { return scratch_.size(); }
  bool draining() const { return draining_; }
  int index() const { return index_; }
  size_t connection_count() const { return connections_.size(); }
  // for_each_connection calls fn on every connection of this worker (worker thread only; fn may
  // close a connection: it is reaped after the current batch).
  void for_each_connection(const std::function<void(Connection&)>& fn);

 private:
  class Wakeup;
  class Linger;
  void run();
  void run_posted();
  void tick(Clock::time_point now);
  void reap();

  int index_;
  Runtime& runtime_;
  int epfd_ = -1;
  int eventfd_ = -1;
  std::unique_ptr<Wakeup> wakeup_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> inbox_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> dirty_;
  std::vector<std::unique_ptr<Linger>> lingering_;
  std::vector<uint8_t> scratch_;
  bool draining_ = false;
  Clock::time_point drain_deadline_{};
  bool stop_ = false;
};

}  // namespace touchgate::gateway
