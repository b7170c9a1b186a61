// Trust boundary: relays bytes between an authenticated client channel and a target socket;
// nothing is parsed.
#include "gateway/direct_tcpip.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "gateway/auditor.h"
#include "gateway/connection.h"
#include "gateway/discard.h"
#include "gateway/log.h"
#include "policy/duration.h"

namespace touchgate::gateway {

namespace {
// Client bytes we hold ourselves when the target socket fills up mid-chunk.
constexpr size_t kPendingMax = 64 * 1024;
// Target reads per readiness event before giving other channels a turn, and their size (libssh
// buffers what it has not sent and never shrinks its buffers: small reads keep them small).
constexpr int kMaxReadsPerEvent = 8;
constexpr size_t kMaxRead = 64 * 1024;
// Bytes from the target during which its segments are acknowledged immediately (TCP_QUICKACK).
constexpr uint64_t kQuickAckBytes = 64 * 1024;
}  // namespace

Forward::Forward(Connection& conn, uint64_t id, policy::Target target, std::string requested)
    : conn_(conn),
      id_(id),
      target_(std::move(target)),
      requested_(std::move(requested)),
      opened_at_(Clock::now()) {}

Forward::~Forward() { abandon(); }

void Forward::attach(ssh_channel channel) {
  channel_ = channel;
  cb_.userdata = this;
  cb_.channel_data_function = &Forward::on_data;
  cb_.channel_eof_function = &Forward::on_eof;
  cb_.channel_close_function = &Forward::on_close;
  ssh_callbacks_init(&cb_);
  ssh_set_channel_callbacks(channel_, &cb_);
}

void Forward::authorized() {
  if (state_ != State::kAuthorizing) return;
  connect_started_ = Clock::now();
  connect_deadline_ =
      connect_started_ + conn_.worker().runtime().snapshot().config->server.connect_timeout;
  SocketAddress addr;
  if (resolve_numeric(target_.host, target_.port, &addr)) {
    candidates_ = {addr};
    connect_next();
    return;
  }
  // DNS name: resolved on a helper thread, continued here (unless cancelled meanwhile).
  state_ = State::kResolving;
  resolve_ = std::make_shared<int>(0);
  resolve_async(conn_.worker(), resolve_, target_.host, target_.port,
                [this](Result<std::vector<SocketAddress>> result) {
                  resolve_.reset();
                  if (!result) {
                    fail(result.error().code,
                         fmt::format("cannot reach target {} ({}): {}", target_.name,
                                     target_.address(), result.error().message));
                    return;
                  }
                  // A name selected by a `hosts` glob: deny rules also judge what it resolves
                  // to (a hosts CIDR, a configured target at that address).
                  if (check_resolved_ && conn_.refuse_resolved(*this, *result)) return;
                  candidates_ = std::move(*result);
                  connect_next();
                });
}

void Forward::connect_next() {
  // Each resolved address in turn (a name may resolve to ::1 and 127.0.0.1, say); the error of
  // the last one is the reason reported.
  std::string last_error = "no address";
  while (!candidates_.empty()) {
    SocketAddress addr = candidates_.front();
    candidates_.erase(candidates_.begin());
    address_ = addr.to_string();
    bool in_progress = false;
    auto fd = start_connect(addr, &in_progress);
    if (!fd) {
      last_error = fd.error().message;
      continue;
    }
    begin_connect(*fd, in_progress);
    return;
  }
  fail("target_connect_failed",
       fmt::format("cannot reach target {} ({}): {}", target_.name, address_, last_error));
}

void Forward::begin_connect(int fd, bool in_progress) {
  fd_ = fd;
  state_ = State::kConnecting;
  interest_ = EPOLLOUT;
  if (!conn_.worker().watch(fd_, interest_, this)) {
    fail("internal_error", "cannot watch the target socket");
    return;
  }
  if (!in_progress) connected();
}

void Forward::connected() {
  state_ = State::kRelaying;
  log_event(Level::kInfo, "channel_open",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"user", conn_.login()},
             {"target", target_.name},
             {"address", address_},
             {"connect_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened_at_).count()}});
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = conn_.audit_record("channel_open");
    r.u64("channel", id_).str("target", target_.name).str("address", address_);
    a->note(std::move(r));
  }
  set_interest(EPOLLIN);
  // Client bytes that arrived while we were connecting (and its EOF, if it came meanwhile).
  drain_channel_buffer();
  read_target();
  maybe_finish();
}

void Forward::fail(const std::string& code, const std::string& message) {
  if (!live()) return;
  close_reason_ = code;
  // Stop relaying at once; the channel itself is closed from pump() (never from inside a libssh
  // callback), or the whole connection is disconnected with the reason.
  state_ = State::kClosing;
  release_socket();
  conn_.forward_failed(this, code, message);
}

void Forward::set_interest(uint32_t events) {
  if (fd_ < 0 || events == interest_) return;
  interest_ = events;
  conn_.worker().rewatch(fd_, interest_, this);
}

// ---- libssh callbacks (inside a poll pass: flags and sends only) ------------------------------

int Forward::on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                     void* self) {
  if (is_stderr) return static_cast<int>(len);  // direct-tcpip has no stderr; drop it
  return static_cast<Forward*>(self)->take_client_data(static_cast<const uint8_t*>(data), len);
}

void Forward::on_eof(ssh_session, ssh_channel, void* self) {
  static_cast<Forward*>(self)->client_eof_ = true;
}

void Forward::on_close(ssh_session, ssh_channel, void* self) {
  auto* f = static_cast<Forward*>(self);
  f->client_closed_ = true;
  f->client_eof_ = true;
}

int Forward::take_client_data(const uint8_t* data, uint32_t len) {
  // libssh passes its whole channel buffer; what we do not take stays there. libssh accepts
  // data beyond the window it advertised: a client that ignores the window (here while the
  // touch is pending or the target is slow) would grow that buffer without bound.
  if (len > kMaxChannelBuffered) {
    channel_buffered_ = len;
    fail("channel_window_exceeded",
         fmt::format("the client sent {} bytes beyond what the channel window allows", len));
    return static_cast<int>(len);
  }
  if (state_ != State::kRelaying || in_drain_ || up_blocked_ || !pending_.empty() || target_shut_) {
    channel_buffered_ = len;
    return 0;
  }
  ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      up_blocked_ = true;
      set_interest(interest_ | EPOLLOUT);
      channel_buffered_ = len;
      return 0;
    }
    channel_buffered_ = len;
    fail("target_write_failed", fmt::format("writing to target {} failed: {}", target_.name, std::strerror(errno)));
    return 0;
  }
  bytes_up_ += static_cast<uint64_t>(n);
  channel_buffered_ = len - static_cast<uint32_t>(n);
  if (channel_buffered_ > 0) {
    up_blocked_ = true;
    set_interest(interest_ | EPOLLOUT);
  }
  return static_cast<int>(n);
}

// ---- target socket ----------------------------------------------------------------------------

void Forward::on_events(uint32_t events) {
  if (fd_ < 0 || !live()) return;
  conn_.note_activity(Clock::now());
  if (state_ == State::kConnecting) {
    int err = connect_result(fd_);
    if (err != 0 || (events & EPOLLERR)) {
      if (!candidates_.empty()) {
        conn_.worker().unwatch(fd_);
        ::close(fd_);
        fd_ = -1;
        connect_next();
        conn_.after_forward_event();
        return;
      }
      fail("target_connect_failed", fmt::format("cannot reach target {} ({}): {}", target_.name,
                                                address_, std::strerror(err != 0 ? err : ECONNREFUSED)));
      return;
    }
    connected();
    conn_.after_forward_event();
    return;
  }
  if (state_ != State::kRelaying) return;
  if (events & EPOLLOUT) {
    up_blocked_ = false;
    if (flush_pending()) drain_channel_buffer();
    if (!up_blocked_) set_interest(interest_ & ~static_cast<uint32_t>(EPOLLOUT));
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_target();
  maybe_finish();
  conn_.after_forward_event();
}

bool Forward::flush_pending() {
  while (!pending_.empty()) {
    ssize_t n = ::send(fd_, pending_.data(), pending_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        up_blocked_ = true;
        set_interest(interest_ | EPOLLOUT);
        return false;
      }
      fail("target_write_failed", fmt::format("writing to target {} failed: {}", target_.name, std::strerror(errno)));
      return false;
    }
    bytes_up_ += static_cast<uint64_t>(n);
    pending_.erase(pending_.begin(), pending_.begin() + n);
  }
  pending_.shrink_to_fit();
  return true;
}

void Forward::drain_channel_buffer() {
  // Move bytes libssh still holds for this channel to the target. ssh_channel_read_nonblocking
  // does not poll the socket while the channel buffer is non-empty, and replenishes the window.
  if (channel_ == nullptr || state_ != State::kRelaying) return;
  in_drain_ = true;
  uint8_t* buf = conn_.worker().scratch();
  while (channel_buffered_ > 0 && !up_blocked_ && pending_.empty()) {
    uint32_t want = std::min<uint32_t>(channel_buffered_, static_cast<uint32_t>(kPendingMax));
    int got = ssh_channel_read_nonblocking(channel_, buf, want, 0);
    if (got <= 0) {
      channel_buffered_ = 0;
      break;
    }
    channel_buffered_ -= std::min<uint32_t>(channel_buffered_, static_cast<uint32_t>(got));
    ssize_t n = ::send(fd_, buf, static_cast<size_t>(got), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        in_drain_ = false;
        fail("target_write_failed", fmt::format("writing to target {} failed: {}", target_.name, std::strerror(errno)));
        return;
      }
      n = 0;
    }
    bytes_up_ += static_cast<uint64_t>(n);
    if (n < got) {
      pending_.assign(buf + n, buf + got);
      up_blocked_ = true;
      set_interest(interest_ | EPOLLOUT);
    }
  }
  in_drain_ = false;
}

bool Forward::flush_down() {
  while (!down_pending_.empty()) {
    if (ssh_channel_window_size(channel_) == 0) return false;
    int w = ssh_channel_write(channel_, down_pending_.data(),
                              static_cast<uint32_t>(down_pending_.size()));
    if (w == SSH_ERROR) {
      fail("client_write_failed", "writing to the client failed");
      return false;
    }
    if (w <= 0) return false;
    bytes_down_ += static_cast<uint64_t>(w);
    down_pending_.erase(down_pending_.begin(), down_pending_.begin() + w);
  }
  down_pending_.shrink_to_fit();
  return true;
}

void Forward::read_target() {
  if (state_ != State::kRelaying || target_eof_ || channel_ == nullptr) return;
  if (!down_pending_.empty() && !flush_down()) {
    down_blocked_ = true;
    set_interest(interest_ & ~static_cast<uint32_t>(EPOLLIN));
    return;
  }
  ssh_session session = conn_.session();
  uint8_t* buf = conn_.worker().scratch();
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    if (ssh_get_status(session) & SSH_WRITE_PENDING) {
      // The client is not keeping up: let libssh's output drain before reading more.
      down_blocked_ = true;
      break;
    }
    uint32_t window = ssh_channel_window_size(channel_);
    if (window == 0) {
      down_blocked_ = true;
      break;
    }
    size_t want = std::min<size_t>(window, kMaxRead);
    ssize_t n = ::recv(fd_, buf, want, MSG_DONTWAIT);
    if (n > 0 && bytes_down_ < kQuickAckBytes) {
      // The target's SSH handshake runs with Nagle on; a delayed ACK from us would stall each of
      // its rounds for up to 40 ms. Acknowledge at once until the handshake is surely over.
      int one = 1;
      setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    if (n > 0) {
      int w = ssh_channel_write(channel_, buf, static_cast<uint32_t>(n));
      if (w == SSH_ERROR) {
        fail("client_write_failed", "writing to the client failed");
        return;
      }
      bytes_down_ += static_cast<uint64_t>(w);
      if (w < n) {
        // libssh holds writes during a key re-exchange: keep the rest, read nothing more.
        down_pending_.assign(buf + w, buf + n);
        down_blocked_ = true;
        break;
      }
      continue;
    }
    if (n == 0) {
      target_eof_ = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      down_blocked_ = false;
      set_interest(EPOLLIN | (interest_ & EPOLLOUT));
      return;
    }
    // Reset by the target: treat like EOF after what was relayed.
    target_eof_ = true;
    break;
  }
  if (target_eof_) {
    set_interest(interest_ & ~static_cast<uint32_t>(EPOLLIN));
  } else if (down_blocked_) {
    set_interest(interest_ & ~static_cast<uint32_t>(EPOLLIN));
  }
}

void Forward::pump() {
  if (channel_ == nullptr) return;
  if (state_ == State::kRelaying) {
    if (!up_blocked_ && pending_.empty() && channel_buffered_ > 0) drain_channel_buffer();
    if (!down_pending_.empty()) flush_down();
    if (down_blocked_ && !target_eof_ && down_pending_.empty() && live()) {
      bool can = ssh_channel_window_size(channel_) > 0 &&
                 !(ssh_get_status(conn_.session()) & SSH_WRITE_PENDING);
      if (can) {
        down_blocked_ = false;
        set_interest(interest_ | EPOLLIN);
        read_target();
      }
    }
  }
  maybe_finish();
}

void Forward::maybe_finish() {
  if (channel_ == nullptr || state_ == State::kDone) return;
  if (state_ == State::kClosing) {
    close(close_reason_);
    return;
  }
  if (client_closed_) {
    close("client_closed");
    return;
  }
  // A client EOF before the target is connected only ends the client's direction (RFC 4254
  // 5.3): what it sent is held and delivered, then the target's side is shut, once connected.
  if (state_ != State::kRelaying) return;
  // Client finished sending and everything reached the target: half-close towards it.
  if (client_eof_ && !target_shut_ && channel_buffered_ == 0 && pending_.empty()) {
    ::shutdown(fd_, SHUT_WR);
    target_shut_ = true;
  }
  if (target_eof_ && !eof_sent_ && down_pending_.empty() &&
      !(ssh_get_status(conn_.session()) & SSH_WRITE_PENDING)) {
    ssh_channel_send_eof(channel_);
    eof_sent_ = true;
  }
  if (eof_sent_ && target_shut_) close("done");
}

void Forward::limit_session(std::chrono::seconds max_session, std::string rule) {
  if (max_session.count() <= 0) return;
  const Clock::time_point deadline = opened_at_ + max_session;
  if (session_deadline_ && *session_deadline_ <= deadline) return;  // the earlier limit stays
  session_deadline_ = deadline;
  limit_rule_ = std::move(rule);
  max_session_ = max_session;
}

void Forward::limit_window(std::chrono::system_clock::time_point closes, std::string rule,
                           std::string window) {
  const auto left = closes - std::chrono::system_clock::now();
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(left);
  if (window_deadline_ && *window_deadline_ <= deadline) return;  // the earlier limit stays
  window_deadline_ = deadline;
  window_rule_ = std::move(rule);
  window_ = std::move(window);
}

void Forward::tick(Clock::time_point now) {
  if (window_deadline_ && now >= *window_deadline_ && state_ != State::kDone &&
      state_ != State::kClosing) {
    window_deadline_.reset();
    fail("policy_window_closed",
         fmt::format("rule {} allows access to {} only during {}; that time is over",
                     window_rule_, target_.name, window_));
    return;
  }
  if (session_deadline_ && now >= *session_deadline_ && state_ != State::kDone &&
      state_ != State::kClosing) {
    session_deadline_.reset();
    fail("session_time_limit",
         fmt::format("rule {} allows sessions to {} of at most {}", limit_rule_, target_.name,
                     policy::format_duration(static_cast<uint64_t>(max_session_.count()))));
    return;
  }
  if ((state_ == State::kConnecting || state_ == State::kResolving) && now >= connect_deadline_) {
    fail("target_connect_failed",
         fmt::format("cannot reach target {} ({}): no answer within {} s", target_.name,
                     target_.address(),
                     std::chrono::duration_cast<std::chrono::seconds>(now - connect_started_)
                         .count()));
  }
}

void Forward::close(const std::string& reason) {
  if (state_ == State::kDone) return;
  if (close_reason_.empty()) close_reason_ = reason;
  release_socket();
  if (channel_ != nullptr) {
    retire_channel(channel_, &cb_, !client_closed_);
    channel_ = nullptr;
  }
  log_event(Level::kInfo, "channel_closed",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"user", conn_.login()},
             {"target", target_.name},
             {"reason", close_reason_},
             {"bytes_up", bytes_up_},
             {"bytes_down", bytes_down_},
             {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened_at_).count()}});
  audit_closed(close_reason_);
  state_ = State::kDone;
}

void Forward::audit_closed(const std::string& reason) {
  Auditor* a = conn_.worker().runtime().auditor;
  if (a == nullptr) return;
  audit::Record r = conn_.audit_record("channel_closed");
  r.u64("channel", id_)
      .str("target", target_.name)
      .str("address", address_)
      .u64("bytes_up", bytes_up_)
      .u64("bytes_down", bytes_down_)
      .u64("duration_ms", static_cast<uint64_t>(
                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                  Clock::now() - opened_at_)
                                  .count()))
      .str("reason", reason);
  a->note(std::move(r));
}

void Forward::abandon() {
  resolve_.reset();  // a lookup still running finds its token expired
  release_socket();
  if (channel_ != nullptr) {
    // Freed with the session by libssh; only make sure no callback reaches us again.
    ssh_remove_channel_callbacks(channel_, &cb_);
    channel_ = nullptr;
    if (state_ != State::kDone) {
      log_event(Level::kInfo, "channel_closed",
                {{"conn", conn_.id()},
                 {"channel", id_},
                 {"user", conn_.login()},
                 {"target", target_.name},
                 {"reason", close_reason_.empty() ? "connection_closed" : close_reason_},
                 {"bytes_up", bytes_up_},
                 {"bytes_down", bytes_down_}});
    }
  }
  if (state_ != State::kDone) {
    audit_closed(close_reason_.empty() ? "connection_closed" : close_reason_);
  }
  state_ = State::kDone;
}

void Forward::release_socket() {
  resolve_.reset();  // a lookup still running finds its token expired
  if (fd_ >= 0) {
    conn_.worker().unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  pending_.clear();
  pending_.shrink_to_fit();
  down_pending_.clear();
  down_pending_.shrink_to_fit();
}

}  // namespace touchgate::gateway
