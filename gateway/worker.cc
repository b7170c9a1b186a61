#include "gateway/worker.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "gateway/connection.h"
#include "gateway/log.h"

namespace touchgate::gateway {

namespace {
constexpr size_t kScratchSize = 64 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr auto kTick = std::chrono::milliseconds(250);
}  // namespace

class Worker::Wakeup : public Pollable {
 public:
  explicit Wakeup(Worker& w) : w_(w) {}
  void on_events(uint32_t) override {
    uint64_t v = 0;
    while (::read(w_.eventfd_, &v, sizeof v) == sizeof v) {
    }
    w_.run_posted();
  }

 private:
  Worker& w_;
};

class Worker::Linger : public Pollable {
 public:
  Linger(Worker& w, int fd) : w_(w), fd_(fd), deadline_(Clock::now() + kLingerTime) {}
  ~Linger() override {
    if (fd_ >= 0) {
      w_.unwatch(fd_);
      ::close(fd_);
    }
  }
  void on_events(uint32_t events) override {
    char buf[4096];
    for (int i = 0; i < 16; ++i) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      done_ = true;  // EOF or error
      break;
    }
    if (events & (EPOLLHUP | EPOLLERR)) done_ = true;
  }
  bool expired(Clock::time_point now) const { return done_ || now >= deadline_; }

 private:
  Worker& w_;
  int fd_;
  Clock::time_point deadline_;
  bool done_ = false;
};

Worker::Worker(int index, Runtime& runtime)
    : index_(index), runtime_(runtime), scratch_(kScratchSize) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  eventfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wakeup_ = std::make_unique<Wakeup>(*this);
  watch(eventfd_, EPOLLIN, wakeup_.get());
}

Worker::~Worker() {
  connections_.clear();
  lingering_.clear();
  if (eventfd_ >= 0) ::close(eventfd_);
  if (epfd_ >= 0) ::close(epfd_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(eventfd_, &one, sizeof one);
}

void Worker::adopt(Accepted accepted) {
  // The session is moved through a shared holder so that a dropped closure still frees it.
  auto holder = std::make_shared<Accepted>(std::move(accepted));
  post([this, holder] {
    Accepted a = *holder;
    holder->session = nullptr;
    auto conn = std::make_unique<Connection>(*this, a);
    Connection* raw = conn.get();
    connections_.emplace(raw, std::move(conn));
    if (!raw->start()) mark_dirty(raw);
  });
}

void Worker::drain(Clock::time_point deadline) {
  post([this, deadline] {
    draining_ = true;
    drain_deadline_ = deadline;
    for (auto& [raw, conn] : connections_) raw->begin_drain();
  });
}

bool Worker::watch(int fd, uint32_t events, Pollable* p) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = p;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool Worker::rewatch(int fd, uint32_t events, Pollable* p) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = p;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void Worker::unwatch(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void Worker::mark_dirty(Connection* c) { dirty_.push_back(c); }

void Worker::for_each_connection(const std::function<void(Connection&)>& fn) {
  for (auto& [raw, conn] : connections_) fn(*raw);
}

void Worker::linger(int fd) {
  ::shutdown(fd, SHUT_WR);
  auto l = std::make_unique<Linger>(*this, fd);
  if (!watch(fd, EPOLLIN | EPOLLRDHUP, l.get())) return;  // ~Linger closes fd
  lingering_.push_back(std::move(l));
}

void Worker::run_posted() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(mu_);
    work.swap(inbox_);
  }
  for (auto& fn : work) fn();
}

void Worker::tick(Clock::time_point now) {
  for (auto& [raw, conn] : connections_) {
    raw->tick(now);
    if (draining_ && now >= drain_deadline_) raw->shutdown_now();
  }
  lingering_.erase(std::remove_if(lingering_.begin(), lingering_.end(),
                                  [now](const std::unique_ptr<Linger>& l) {
                                    return l->expired(now);
                                  }),
                   lingering_.end());
}

void Worker::reap() {
  if (dirty_.empty()) return;
  std::vector<Connection*> dirty;
  dirty.swap(dirty_);
  std::sort(dirty.begin(), dirty.end());
  dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
  for (Connection* c : dirty) {
    auto it = connections_.find(c);
    if (it == connections_.end()) continue;
    c->reap();
    if (c->finished()) connections_.erase(it);
  }
}

void Worker::run() {
  std::vector<epoll_event> events(256);
  auto next_tick = Clock::now() + kTick;
  while (!stop_) {
    auto now = Clock::now();
    int timeout_ms = static_cast<int>(
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now).count()));
    int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      log_event(Level::kError, "worker_epoll_failed", {{"worker", index_}, {"errno", errno}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      static_cast<Pollable*>(events[static_cast<size_t>(i)].data.ptr)
          ->on_events(events[static_cast<size_t>(i)].events);
    }
    reap();
    now = Clock::now();
    if (now >= next_tick) {
      tick(now);
      reap();
      next_tick = now + kTick;
    }
    if (draining_ && connections_.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (inbox_.empty()) stop_ = true;
    }
  }
  connections_.clear();
  lingering_.clear();
}

}  // namespace touchgate::gateway
