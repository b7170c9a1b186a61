// A ProxyJump channel: one direct-tcpip channel relayed to one TCP connection to a target.
// Trust boundary: bytes from the client channel and from the target socket are relayed, never
// interpreted.
//
// States: kAuthorizing (channel accepted, client data held; the place for the second factor) →
// kResolving/kConnecting (non-blocking, with a deadline) → kRelaying → kClosing → kDone.
// Flow control, each way one bounded step:
//   client→target: bytes are sent straight from libssh's channel buffer; what the target socket
//     does not take stays there, so the SSH window is not replenished and the client slows down.
//     At most kPendingMax bytes are held by us.
//   target→client: we read the target only while the channel window is open and libssh has no
//     unsent output, and never more than the window. What libssh does not take (it writes nothing
//     while a key re-exchange runs) is kept, at most one read, and sent before reading again.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/pollable.h"
#include "gateway/upstream.h"
#include "policy/config.h"

namespace touchgate::gateway {

class Connection;

class Forward : public Pollable {
 public:
  // Most client bytes libssh may hold for one channel: above its advertised window (1.28 MB),
  // so only a client that ignores the window reaches it.
  static constexpr uint32_t kMaxChannelBuffered = 4u << 20;

  using Clock = std::chrono::steady_clock;
  enum class State { kAuthorizing, kResolving, kConnecting, kRelaying, kClosing, kDone };

  Forward(Connection& conn, uint64_t id, policy::Target target, std::string requested);
  ~Forward() override;
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;

  // attach takes ownership of the accepted channel and installs the callbacks.
  void attach(ssh_channel channel);
  // authorized moves on to resolving/connecting, once the second factor has passed.
  void authorized();
  // refuse ends a channel whose second factor failed, with the reason.
  void refuse(const std::string& code, const std::string& message) { fail(code, message); }
  // connect_next starts a TCP connect to the next resolved address (begin_connect watches it).
  void connect_next();
  void begin_connect(int fd, bool in_progress);

  void on_events(uint32_t events) override;
  // pump runs after every poll pass of the connection: resumes blocked directions, propagates
  // EOF and close.
  void pump();
  void tick(Clock::time_point now);
  // close ends the channel (sending EOF/CLOSE if still open) and the target socket.
  void close(const std::string& reason);
  // abandon detaches from libssh without sending anything (connection teardown).
  void abandon();
  // closing_because names why the whole connection ends (the disconnect's code), for the
  // channel's own close record, unless the channel already has a reason of its own.
  void closing_because(const std::string& code) {
    if (close_reason_.empty()) close_reason_ = code;
  }

  bool done() const { return state_ == State::kDone; }
  bool live() const { return state_ != State::kDone && state_ != State::kClosing; }
  State state() const { return state_; }
  uint64_t id() const { return id_; }
  const policy::Target& target() const { return target_; }
  // refuse_by_policy ends the channel (any state) because the policy no longer allows it.
  void refuse_by_policy(const std::string& code, const std::string& message) { fail(code, message); }
  // The request as the policy saw it (for re-checks after a reload), and what its touch proved.
  void set_request(std::string host, uint16_t port) {
    request_host_ = std::move(host);
    request_port_ = port;
  }
  const std::string& request_host() const { return request_host_; }
  uint16_t request_port() const { return request_port_; }
  // The rule that allowed the channel (for `touchgate sessions list`).
  void set_rule(std::string rule) { rule_ = std::move(rule); }
  const std::string& rule() const { return rule_; }
  void set_touch_factors(uint8_t factors) { touch_factors_ = factors; }
  // check_resolved_addresses: the destination is a name the policy selected by a `hosts` glob;
  // once resolved, deny rules are asked again about each address (Connection::refuse_resolved).
  void check_resolved_addresses() { check_resolved_ = true; }
  uint8_t touch_factors() const { return touch_factors_; }
  // limit_session closes the channel max_session after it opened (0: no limit), naming the rule.
  void limit_session(std::chrono::seconds max_session, std::string rule);
  // limit_window closes the channel when its rule's time window closes (at `closes`).
  void limit_window(std::chrono::system_clock::time_point closes, std::string rule,
                    std::string window);
  // For `touchgate sessions list`: the address connected to ("" until connected), when the
  // channel was opened, and the bytes relayed each way so far.
  const std::string& address() const { return address_; }
  Clock::time_point opened_at() const { return opened_at_; }
  uint64_t bytes_up() const { return bytes_up_; }
  uint64_t bytes_down() const { return bytes_down_; }

 private:
  static int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static void on_eof(ssh_session, ssh_channel, void* self);
  static void on_close(ssh_session, ssh_channel, void* self);

  int take_client_data(const uint8_t* data, uint32_t len);
  void connected();
  void fail(const std::string& code, const std::string& message);
  bool flush_pending();
  void drain_channel_buffer();
  void read_target();
  // flush_down retries target bytes libssh refused earlier; true once none are left.
  bool flush_down();
  void maybe_finish();
  void set_interest(uint32_t events);
  void release_socket();
  // audit_closed writes the channel_closed record.
  void audit_closed(const std::string& reason);

  Connection& conn_;
  uint64_t id_;
  policy::Target target_;
  std::optional<Clock::time_point> session_deadline_;
  std::string limit_rule_;
  std::chrono::seconds max_session_{0};
  std::optional<Clock::time_point> window_deadline_;
  std::string window_rule_, window_;
  std::string requested_;  // what the client asked for ("host:port")
  std::string request_host_;
  uint16_t request_port_ = 0;
  uint8_t touch_factors_ = 0;  // policy::Factor bits of the touch that authorized it
  bool check_resolved_ = false;
  std::string rule_;           // the rule that allowed it
  State state_ = State::kAuthorizing;
  ssh_channel channel_ = nullptr;
  ssh_channel_callbacks_struct cb_{};
  int fd_ = -1;
  uint32_t interest_ = 0;
  std::string address_;                 // the address connected to
  std::vector<SocketAddress> candidates_;  // resolved addresses not yet tried
  std::shared_ptr<int> resolve_;  // a running name lookup's token (reset: cancelled)
  Clock::time_point opened_at_;
  Clock::time_point connect_started_{};  // the touch passed: name lookup and connect begin
  Clock::time_point connect_deadline_{};

  std::vector<uint8_t> pending_;        // client bytes taken from libssh but not yet sent
  std::vector<uint8_t> down_pending_;   // target bytes libssh did not take (e.g. during a rekey)
  uint32_t channel_buffered_ = 0;       // client bytes left in libssh's channel buffer
  bool up_blocked_ = false;             // target socket is full
  bool down_blocked_ = false;           // window closed or libssh output pending
  bool client_eof_ = false;             // client sent EOF
  bool client_closed_ = false;          // client sent CLOSE
  bool target_eof_ = false;             // target closed its sending side
  bool target_shut_ = false;            // we shut down the target's receiving side
  bool eof_sent_ = false;               // we sent EOF to the client
  bool in_drain_ = false;
  uint64_t bytes_up_ = 0, bytes_down_ = 0;
  std::string close_reason_;
};

}  // namespace touchgate::gateway
