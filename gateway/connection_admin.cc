// What an administrator does to a running connection: a reloaded configuration, the description
// `touchgate sessions list` shows, and `touchgate sessions kill`. Runs on the connection's worker.
#include <chrono>

#include <fmt/format.h>

#include "gateway/connection.h"
#include "gateway/terminating.h"
#include "gateway/direct_tcpip.h"
#include "gateway/log.h"
#include "policy/factor.h"

namespace touchgate::gateway {

namespace {

// unix_seconds converts a steady-clock instant of the past to wall-clock unix seconds.
int64_t unix_seconds(std::chrono::steady_clock::time_point at) {
  const auto ago = std::chrono::steady_clock::now() - at;
  const auto then = std::chrono::system_clock::now() -
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(ago);
  return std::chrono::duration_cast<std::chrono::seconds>(then.time_since_epoch()).count();
}

}  // namespace

void Connection::refresh_snapshot() {
  snap_ = worker_.runtime().snapshot();
}

SessionInfo Connection::session_info() const {
  SessionInfo info;
  info.id = id_;
  info.user = login_;
  info.source = peer_;
  info.since = unix_seconds(accepted_at_);
  info.factor = "none";
  for (const auto& f : forwards_) {
    if (f->done()) continue;
    ChannelInfo c;
    c.channel = f->id();
    c.target = f->target().name;
    c.address = f->address().empty() ? f->target().address() : f->address();
    c.rule = f->rule();
    c.since = unix_seconds(f->opened_at());
    c.bytes_up = f->bytes_up();
    c.bytes_down = f->bytes_down();
    info.channels.push_back(std::move(c));
  }
  for (const auto& t : terms_) {
    if (t->done()) continue;
    ChannelInfo c;
    c.channel = t->id();
    c.target = t->request_info().target;
    c.address = t->address();
    c.rule = t->rule();
    c.since = unix_seconds(t->opened_at());
    c.bytes_up = t->bytes_up();
    c.bytes_down = t->bytes_down();
    info.channels.push_back(std::move(c));
  }
  if (last_touch_) {
    info.factor = std::string(policy::strongest_factor(proven_factor(last_touch_->touch,
                                                                     last_touch_->kind)));
    info.key_fp = last_touch_->touch.fingerprint();
  }
  return info;
}

void Connection::kill_by_admin(uint32_t uid) {
  log_event(Level::kInfo, "session_killed",
            {{"conn", id_}, {"peer", peer_}, {"user", login_}, {"by_uid", uid}});
  // Many connections may be ended by one request: write what fits now rather than wait on each
  // client (the socket lingers, so what is written still arrives).
  disconnect_now("session_killed", fmt::format("ended by an administrator (uid {})", uid), 5);
}

bool Connection::kill_channel_by_admin(uint64_t channel, uint32_t uid) {
  const std::string message = fmt::format("ended by an administrator (uid {})", uid);
  bool killed = false;
  const auto noted = [&] {
    log_event(Level::kInfo, "channel_killed",
              {{"conn", id_}, {"channel", channel}, {"user", login_}, {"by_uid", uid}});
    killed = true;
  };
  for (auto& f : forwards_) {
    if (f->id() != channel || !f->live()) continue;
    noted();
    f->refuse_by_policy("channel_killed", message);
  }
  for (auto& t : terms_) {
    if (t->id() != channel || !t->live()) continue;
    noted();
    t->close_by_policy("channel_killed", message);
  }
  // The channel closes on the connection's next pump (a sole ProxyJump channel: the
  // connection ends with the reason).
  if (killed) after_mfa_event();
  return killed;
}

}  // namespace touchgate::gateway
