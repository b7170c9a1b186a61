// Trust boundary: client bytes and requests on an authenticated session channel, and the
// target's answers; relayed and recorded, never interpreted.
#include "gateway/terminating.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/server.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "audit/record.h"
#include "gateway/auditor.h"
#include "gateway/connection.h"
#include "gateway/direct_tcpip.h"
#include "gateway/discard.h"
#include "gateway/known_hosts.h"
#include "gateway/log.h"
#include "gateway/offload.h"
#include "gateway/upstream_cert.h"
#include "gateway/worker.h"
#include "policy/duration.h"
#include "ssh/digest.h"
#include "ssh/key.h"

namespace touchgate::gateway {

namespace {

std::string action_word(policy::Action a) { return std::string(policy::action_name(a)); }

// printable_word: a word the user typed, for messages and records: at most 64 characters,
// control characters as '?'.
std::string printable_word(std::string_view word) {
  std::string out(word.substr(0, 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (word.size() > 64) out += "...";
  return out;
}

}  // namespace

TerminatingSession::TerminatingSession(Connection& conn, uint64_t id, ssh_channel channel,
                                       TerminatingRequest req)
    : conn_(conn), id_(id), channel_(channel), req_(std::move(req)), opened_at_(Clock::now()) {
  cb_.userdata = this;
  cb_.channel_data_function = &TerminatingSession::on_data;
  cb_.channel_eof_function = &TerminatingSession::on_eof;
  cb_.channel_close_function = &TerminatingSession::on_close;
  cb_.channel_signal_function = &TerminatingSession::on_signal;
  ssh_callbacks_init(&cb_);
  ssh_set_channel_callbacks(channel_, &cb_);
}

TerminatingSession::~TerminatingSession() { abandon(); }

// ---- the client channel ------------------------------------------------------------------------

int TerminatingSession::on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                                void* self) {
  if (is_stderr) return static_cast<int>(len);  // a client has no stderr to send
  return static_cast<TerminatingSession*>(self)->take_client_data(
      static_cast<const uint8_t*>(data), len);
}

void TerminatingSession::on_eof(ssh_session, ssh_channel, void* self) {
  static_cast<TerminatingSession*>(self)->client_eof_ = true;
}

void TerminatingSession::on_close(ssh_session, ssh_channel, void* self) {
  auto* t = static_cast<TerminatingSession*>(self);
  t->client_closed_ = true;
  t->client_eof_ = true;
}

void TerminatingSession::on_signal(ssh_session, ssh_channel, const char* signal, void* self) {
  auto* t = static_cast<TerminatingSession*>(self);
  if (signal == nullptr || t->state_ != State::kRelaying || !t->upstream_) return;
  // The signal names of RFC 4254 6.10 are relayed; anything else is dropped.
  static constexpr std::array<std::string_view, 13> kSignals = {
      "ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1",
      "USR2"};
  const std::string_view name(signal);
  if (std::find(kSignals.begin(), kSignals.end(), name) == kSignals.end()) {
    log_event(Level::kInfo, "signal_dropped",
              {{"conn", t->conn_.id()},
               {"channel", t->id_},
               {"reason", "not a signal of RFC 4254"}});
    return;
  }
  t->upstream_->send_signal(std::string(name));
}

int TerminatingSession::take_client_data(const uint8_t* data, uint32_t len) {
  if (len > Forward::kMaxChannelBuffered) {
    channel_buffered_ = len;
    fail("channel_window_exceeded",
         fmt::format("the client sent {} bytes beyond what the channel window allows", len));
    return static_cast<int>(len);
  }
  channel_buffered_ = len;
  if (state_ != State::kRelaying || !upstream_) return 0;
  flush_pending();
  size_t took = 0;
  if (pending_size() == 0) {
    took = upstream_->write({data, len});
    if (took > 0) client_taken({data, took});
  }
  // What the target cannot take now waits in our buffer when it fits whole; else it stays in
  // libssh's, where it keeps the client's window shut (see drain_client).
  const size_t rest = len - took;
  if (rest > 0 && pending_size() + rest <= kPendingCap) {
    pending_.insert(pending_.end(), data + took, data + len);
    took = len;
  }
  channel_buffered_ = len - static_cast<uint32_t>(took);
  return static_cast<int>(took);
}

size_t TerminatingSession::pending_size() const { return pending_.size() - pending_off_; }

void TerminatingSession::flush_pending() {
  if (pending_size() == 0 || !upstream_) return;
  const size_t took = upstream_->write({pending_.data() + pending_off_, pending_size()});
  if (took > 0) client_taken({pending_.data() + pending_off_, took});
  pending_off_ += took;
  if (pending_off_ == pending_.size()) {
    pending_.clear();
    pending_off_ = 0;
  } else if (pending_off_ > kPendingCap / 2) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pending_off_));
    pending_off_ = 0;
  }
}

void TerminatingSession::drain_client() {
  if (channel_ == nullptr || state_ != State::kRelaying || !upstream_) return;
  flush_pending();
  // libssh's read reopens the client's window in full whatever it still buffers: read only when
  // all it holds fits in our buffer, and take all of it, so the window it opens is empty.
  if (channel_buffered_ == 0 || pending_size() + channel_buffered_ > kPendingCap) return;
  uint8_t* buf = conn_.worker().scratch();
  const size_t chunk = conn_.worker().scratch_size();
  while (channel_buffered_ > 0) {
    const uint32_t want = std::min<uint32_t>(channel_buffered_, static_cast<uint32_t>(chunk));
    const int got = ssh_channel_read_nonblocking(channel_, buf, want, 0);
    if (got <= 0) {
      channel_buffered_ = 0;
      break;
    }
    channel_buffered_ -= std::min<uint32_t>(channel_buffered_, static_cast<uint32_t>(got));
    pending_.insert(pending_.end(), buf, buf + got);
  }
  flush_pending();
}

void TerminatingSession::client_taken(std::span<const uint8_t> data) {
  bytes_up_ += data.size();
  if (recording_ && record_input_) recording_checked(recording_->input(elapsed(), data));
  // In the order the bytes cross the relay (replies are matched to requests by id).
  if (sftp_) sftp_->client_bytes(data);
}

void TerminatingSession::audit_sftp_ops() {
  if (!sftp_) return;
  Auditor* a = conn_.worker().runtime().auditor;
  for (auto& op : sftp_->take()) {
    if (a == nullptr) continue;
    audit::Record r = conn_.audit_record("sftp_op");
    r.u64("channel", id_).str("target", target_.name).str("op", op.op).str("path", op.path);
    if (!op.path2.empty()) r.str("path2", op.path2);
    if (!op.mode.empty()) r.str("mode", op.mode);
    if (!op.attrs.empty()) r.str("attrs", op.attrs);
    if (op.op == "open") r.u64("bytes_read", op.bytes_read).u64("bytes_written", op.bytes_written);
    r.boolean("ok", op.ok).str("status", op.status);
    if (!op.message.empty()) r.str("message", op.message);
    if (op.truncated) r.boolean("truncated", true);
    a->note(std::move(r));
  }
}

int TerminatingSession::request(ssh_message msg) {
  if (ssh_message_subtype(msg) == SSH_CHANNEL_REQUEST_WINDOW_CHANGE) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const int cols = ssh_message_channel_request_pty_width(msg);
    const int rows = ssh_message_channel_request_pty_height(msg);
#pragma GCC diagnostic pop
    if (cols > 0 && rows > 0 && cols <= 10000 && rows <= 10000) {
      if (req_.pty) {
        req_.pty->cols = static_cast<uint32_t>(cols);
        req_.pty->rows = static_cast<uint32_t>(rows);
      }
      if (upstream_ && state_ == State::kRelaying) {
        upstream_->window_change(static_cast<uint32_t>(cols), static_cast<uint32_t>(rows));
      }
      if (recording_) {
        recording_checked(recording_->resize(elapsed(), static_cast<uint32_t>(cols),
                                             static_cast<uint32_t>(rows)));
      }
    }
    return 0;  // window-change wants no reply
  }
  // A second shell/exec/subsystem, X11, agent forwarding, more env: refused.
  return 1;
}

// ---- authorization -------------------------------------------------------------------------------

void TerminatingSession::begin() {
  const auto& config = conn_.config();
  const policy::Target* t = nullptr;
  for (const auto& c : config.targets) {
    if (c.name == req_.target) t = &c;
  }
  if (t == nullptr) {
    refuse_unknown_target();
    return;
  }
  target_ = *t;
  const policy::Decision d = conn_.decide(target_.name, target_.port, req_.action);
  log_event(Level::kInfo, "policy_decision",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"user", conn_.login()},
             {"target", target_.name},
             {"action", action_word(req_.action)},
             {"effect", d.allowed() ? "allow" : "deny"},
             {"rule", d.rule_id},
             {"code", d.code}});
  if (!d.allowed()) {
    audit_denied(target_.name, d.rule_id, d.code);
    fail(d.code, d.explanation);
    return;
  }
  if (!conn_.config().ca.configured()) {
    fail("terminating_unavailable",
         "this gateway does not log in to targets itself (no [ca] key); use ssh -J " +
             conn_.config().server.name + " " + target_.name);
    return;
  }
  if (conn_.worker().runtime().ca == nullptr) {
    fail("ca_unavailable",
         "the gateway's CA key could not be opened (see the gateway's log); logging in to " +
             target_.name + " is not possible now, ssh -J still works");
    return;
  }
  const std::string what = fmt::format("{} {}", target_.name, target_.address());
  Connection::TouchNeed need{d.factors, d.max_age, d.rule_id, {}};
  if (req_.action == policy::Action::kSftp) {
    const std::string login = fmt::format("{}+{}", conn_.login(), target_.name);
    need.no_agent_hint = fmt::format(
        "sftp and scp never forward one, whatever ssh_config says: first open a connection "
        "that does and stays, 'ssh -fNM -S ~/.ssh/tg-%C {0}@GATEWAY', then run "
        "'sftp -o ControlPath=~/.ssh/tg-%C {0}@GATEWAY' through it (GATEWAY: your name for "
        "this gateway)",
        login);
  }
  conn_.request_touch(id_, what, true, std::move(need));
}

void TerminatingSession::refuse_unknown_target() {
  const std::string name = printable_word(req_.target);
  log_event(Level::kInfo, "policy_decision",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"user", conn_.login()},
             {"target", name},
             {"action", action_word(req_.action)},
             {"effect", "deny"},
             {"rule", ""},
             {"code", "target_unknown"}});
  audit_denied(name, "", "target_unknown");
  // Terminating mode logs in only to configured targets (their host keys are known); a host
  // that a rule's `hosts` selects may still be reached through the gateway.
  const std::string& gw = conn_.config().server.name;
  const std::string next =
      conn_.decide(req_.target, 22, policy::Action::kJump).allowed()
          ? fmt::format("the gateway logs in only to configured targets; 'ssh -J {} {}' "
                        "reaches it",
                        gw, name)
          : fmt::format("'ssh {}' lists the targets open to you", gw);
  if (!conn_.login_target().empty()) {
    fail("target_unknown", fmt::format("the login {}+{} names no target of this gateway; {}",
                                       conn_.login(), name, next));
  } else {
    fail("target_unknown",
         fmt::format("\"{}\" is neither a target of this gateway nor one of its commands "
                     "(whoami, mfa-test, help); {}",
                     name, next));
  }
}

void TerminatingSession::audit_denied(const std::string& target, const std::string& rule,
                                      const std::string& code) {
  Auditor* a = conn_.worker().runtime().auditor;
  if (a == nullptr) return;
  audit::Record r = conn_.audit_record("policy_decision");
  r.str("outcome", "deny")
      .u64("channel", id_)
      .str("target", target)
      .str("action", action_word(req_.action))
      .str("rule", rule)
      .str("reason", code)
      .str("factors_required", "")
      .str("factor_used", "none")
      .str("from", conn_.peer_ip());
  a->note(std::move(r));
}

void TerminatingSession::touch_result(const Result<TouchProof>& result) {
  if (state_ != State::kAuthorizing) return;
  if (!result) {
    fail(result.error().code, result.error().message);
    return;
  }
  // Decided again now: a reload or the clock may have changed the answer during the touch.
  const policy::Decision d = conn_.decide(target_.name, target_.port, req_.action);
  const uint8_t wanted = d.factors != 0 ? d.factors : policy::kAllFactors;
  const std::string used(policy::strongest_factor(proven_factor(result->touch, result->kind)));
  Auditor* a = conn_.worker().runtime().auditor;
  audit::Record r = conn_.audit_record("policy_decision");
  r.str("outcome", d.allowed() && (result->factors & wanted) != 0 ? "allow" : "deny")
      .u64("channel", id_)
      .str("target", target_.name)
      .str("action", action_word(req_.action))
      .str("rule", d.rule_id)
      .str("reason", !d.allowed() ? d.code
                                  : (result->factors & wanted) == 0 ? "factor_too_weak"
                                                                     : d.code)
      .str("factors_required", d.allowed() ? policy::factor_names(wanted) : "")
      .str("factor_used", used)
      .str("from", conn_.peer_ip());
  if (!d.allowed()) {
    if (a != nullptr) a->note(std::move(r));
    fail(d.code, d.explanation);
    return;
  }
  if ((result->factors & wanted) == 0) {
    if (a != nullptr) a->note(std::move(r));
    fail("factor_too_weak", fmt::format("rule {} requires {}; the touch proved only {}",
                                        d.rule_id, policy::factor_names(wanted), used));
    return;
  }
  remote_user_ = d.remote_user;
  record_input_ = d.record_input;
  limit_session(d.max_session, d.rule_id);
  if (d.window_closes) limit_window(*d.window_closes, d.rule_id, d.window);
  rule_ = d.rule_id;
  touch_factors_ = result->factors;
  touch_key_fp_ = result->touch.fingerprint();
  r.str("remote_user", remote_user_);
  state_ = State::kRecording;
  if (a == nullptr) {
    granted();
    return;
  }
  // Nothing towards the target until this record is durable.
  a->grant(conn_.worker(), alive_, std::move(r), [this](Result<void> recorded) {
    if (state_ != State::kRecording) return;
    if (!recorded) {
      const Error e = Auditor::refusal_for(recorded.error());
      fail(e.code, e.message);
    } else {
      granted();
    }
    conn_.after_forward_event();
  });
}

void TerminatingSession::limit_session(std::chrono::seconds max_session, std::string rule) {
  if (max_session.count() <= 0) return;
  const Clock::time_point deadline = opened_at_ + max_session;
  if (session_deadline_ && *session_deadline_ <= deadline) return;  // the earlier limit stays
  session_deadline_ = deadline;
  max_session_ = max_session;
  session_rule_ = std::move(rule);
}

void TerminatingSession::limit_window(std::chrono::system_clock::time_point closes,
                                      std::string rule, std::string window) {
  const Clock::time_point deadline =
      Clock::now() +
      std::chrono::duration_cast<Clock::duration>(closes - std::chrono::system_clock::now());
  if (window_deadline_ && *window_deadline_ <= deadline) return;  // the earlier limit stays
  window_deadline_ = deadline;
  window_rule_ = std::move(rule);
  window_ = std::move(window);
}

void TerminatingSession::granted() {
  // The recording exists, its header on disk, before the target is contacted: a session that
  // cannot be recorded is refused before the target sees anything of it.
  if (!start_recording()) return;
  state_ = State::kConnecting;
  SocketAddress addr;
  if (!resolve_numeric(target_.host, target_.port, &addr)) {
    // Names are resolved off the worker; the answer comes back here.
    resolve_async(conn_.worker(), alive_, target_.host, target_.port,
                  [this](Result<std::vector<SocketAddress>> r) {
                    if (!r || r->empty()) {
                      fail("target_resolve_failed",
                           fmt::format("cannot resolve target {} ({}): {}", target_.name,
                                       target_.host, r ? "no address" : r.error().message));
                    } else {
                      candidates_ = std::move(*r);
                      connect_next();
                    }
                    conn_.after_forward_event();
                  });
    return;
  }
  candidates_ = {addr};
  connect_next();
}

void TerminatingSession::connect_next() {
  if (state_ != State::kConnecting) return;
  while (!candidates_.empty()) {
    SocketAddress addr = candidates_.front();
    candidates_.erase(candidates_.begin());
    bool in_progress = false;
    auto fd = start_connect(addr, &in_progress);
    if (!fd) continue;
    fd_ = *fd;
    address_ = addr.to_string();
    connect_deadline_ = Clock::now() + conn_.config().server.connect_timeout;
    if (!conn_.worker().watch(fd_, EPOLLOUT, this)) {
      ::close(fd_);
      fd_ = -1;
      fail("internal_error", "cannot watch the target socket");
      return;
    }
    interest_ = EPOLLOUT;
    if (!in_progress) connected();
    return;
  }
  fail("target_connect_failed",
       fmt::format("cannot reach target {} ({})", target_.name, target_.address()));
}

void TerminatingSession::connected() {
  // The certificate is minted now: its source-address is this socket's own address.
  state_ = State::kMinting;
  conn_.worker().unwatch(fd_);
  interest_ = 0;
  MintRequest m;
  m.connection = conn_.audit_id();
  m.principal = conn_.login();
  m.remote_user = remote_user_;
  m.source_ip = split_address(local_address(fd_).to_string()).first;
  m.pty = req_.pty.has_value();
  m.lifetime = conn_.config().ca.cert_lifetime;
  Runtime& rt = conn_.worker().runtime();
  ssh::Signer* ca = rt.ca;
  Worker* worker = &conn_.worker();
  auto alive = std::weak_ptr<int>(alive_);
  auto job = [ca, m, worker, alive, this] {
    auto creds = mint_upstream_credentials(*ca, m);
    auto shared = std::make_shared<Result<UpstreamCredentials>>(std::move(creds));
    worker->post([alive, shared, this] {
      if (alive.expired()) return;
      minted(std::move(*shared));
      conn_.after_forward_event();
    });
  };
  if (rt.offload != nullptr) {
    rt.offload->submit(std::move(job));
  } else {
    job();
  }
}

void TerminatingSession::minted(Result<UpstreamCredentials> creds) {
  if (state_ != State::kMinting) return;
  if (!creds) {
    log_event(Level::kError, "ca_sign_failed",
              {{"conn", conn_.id()}, {"code", creds.error().code}, {"reason", creds.error().message}});
    fail(creds.error().code,
         fmt::format("the gateway could not sign its login to {}: {}", target_.name,
                     creds.error().message));
    return;
  }
  cert_serial_ = creds->serial;
  cert_key_id_ = creds->key_id;
  UpstreamSshOptions o;
  o.target = target_.name;
  o.user = remote_user_;
  o.key = std::move(creds->key);
  o.certificate = std::move(creds->cert);
  if (!target_.host_key.empty()) {
    o.host_key.pinned_blob = target_.host_key;
  } else {
    o.host_key.judge = [this](const PresentedHostKey& k) { return judge_host_key(k); };
  }
  o.handshake_timeout = conn_.config().server.connect_timeout + std::chrono::seconds(5);
  state_ = State::kUpstream;
  upstream_ = std::make_unique<UpstreamSsh>(*this, *this, std::move(o));
  const int fd = fd_;
  fd_ = -1;  // UpstreamSsh owns it now, in every case
  if (auto r = upstream_->start(fd); !r) {
    fail(r.error().code, r.error().message);
    return;
  }
  upstream_->pump();
}

HostKeyVerdict TerminatingSession::judge_host_key(const PresentedHostKey& key) {
  HostKeyVerdict v;
  if (!target_.trust_on_first_use) {
    v.expected = fmt::format("a host_key for target {} in the gateway's configuration (or "
                             "trust_on_first_use = true)",
                             target_.name);
    return v;
  }
  // The gateway's known-hosts file ([terminating] known_hosts): the first key wins, once.
  const auto& file = conn_.config().terminating.known_hosts;
  auto known = check_or_record(file, target_.name, key.blob);
  if (!known) {
    log_event(Level::kError, "known_hosts_failed",
              {{"target", target_.name}, {"code", known.error().code},
               {"reason", known.error().message}});
    v.expected = fmt::format("a record in {} (it cannot be read or written: {})", file.string(),
                             known.error().message);
    return v;
  }
  if (known->outcome == KnownHostKey::Outcome::kSame) {
    v.accepted = true;
    return v;
  }
  if (known->outcome == KnownHostKey::Outcome::kOther) {
    v.expected = ssh::fingerprint_sha256(known->known_blob);
    return v;
  }
  // First use: recorded (and synced), then trusted.
  log_event(Level::kWarn, "host_key_first_use",
            {{"target", target_.name}, {"key_fp", key.fingerprint}});
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = conn_.audit_record("host_key_first_use");
    r.str("target", target_.name).str("address", address_).str("key_fp", key.fingerprint);
    a->note(std::move(r));
  }
  v.accepted = true;
  return v;
}

// ---- Watcher / Pollable --------------------------------------------------------------------------

bool TerminatingSession::watch(int fd, uint32_t events, Pollable* p) {
  upstream_pollable_ = p;
  return conn_.worker().watch(fd, events, this);
}

bool TerminatingSession::rewatch(int fd, uint32_t events, Pollable* p) {
  upstream_pollable_ = p;
  return conn_.worker().rewatch(fd, events, this);
}

void TerminatingSession::unwatch(int fd) {
  upstream_pollable_ = nullptr;
  conn_.worker().unwatch(fd);
}

void TerminatingSession::on_events(uint32_t events) {
  if (state_ == State::kConnecting && fd_ >= 0) {
    const int err = connect_result(fd_);
    if (err != 0) {
      conn_.worker().unwatch(fd_);
      ::close(fd_);
      fd_ = -1;
      connect_next();
    } else {
      connected();
    }
    conn_.after_forward_event();
    return;
  }
  if (upstream_pollable_ != nullptr) upstream_pollable_->on_events(events);
  pump();
  conn_.after_forward_event();
}

// ---- the upstream session ---------------------------------------------------------------------

void TerminatingSession::upstream_ready() {
  if (!upstream_->open_session()) fail("internal_error", "the upstream session cannot open");
}

void TerminatingSession::upstream_failed(const Error& error) {
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = conn_.audit_record("upstream_refused");
    r.str("outcome", "deny")
        .u64("channel", id_)
        .str("target", target_.name)
        .str("address", address_)
        .str("reason", error.code)
        .str("message", error.message);
    a->note(std::move(r));
  }
  if (state_ == State::kRelaying) {
    close_reason_ = error.code;
    close_message_ = error.message;
    upstream_closed_ = true;
    finish();
    return;
  }
  fail(error.code, error.message);
}

void TerminatingSession::upstream_channel_open() {
  requests_sent_ = true;
  if (req_.pty) upstream_->request_pty(req_.pty->term, req_.pty->cols, req_.pty->rows);
  for (const auto& [name, value] : req_.env) upstream_->request_env(name, value);
  switch (req_.action) {
    case policy::Action::kShell:
      upstream_->request_shell();
      break;
    case policy::Action::kExec:
      upstream_->request_exec(req_.command);
      break;
    default:
      upstream_->request_subsystem(req_.subsystem.empty() ? "sftp" : req_.subsystem);
      break;
  }
  state_ = State::kRelaying;
  if (req_.action == policy::Action::kSftp) sftp_ = std::make_unique<ssh::SftpLog>();
  log_event(Level::kInfo, "channel_open",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"user", conn_.login()},
             {"target", target_.name},
             {"address", address_},
             {"action", action_word(req_.action)},
             {"remote_user", remote_user_},
             {"cert_serial", cert_serial_}});
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = conn_.audit_record("channel_open");
    r.u64("channel", id_)
        .str("target", target_.name)
        .str("address", address_)
        .str("action", action_word(req_.action))
        .str("remote_user", remote_user_)
        .str("upstream_key_id", cert_key_id_)
        .u64("upstream_serial", cert_serial_);
    if (req_.action == policy::Action::kExec) r.str("command", req_.command);
    if (!recording_path_.empty()) r.str("recording", recording_path_);
    a->note(std::move(r));
  }
  drain_client();
}

void TerminatingSession::upstream_request_done(const std::string& request, bool accepted) {
  if (accepted) return;
  if (request == "shell" || request == "exec" || request == "subsystem") {
    upstream_->close_channel();
    error_text_ = fmt::format("touchgate: target {} refused the {} request\r\n", target_.name,
                              request);
  }
  // A refused pty-req or env: the session goes on (as with OpenSSH's client).
}

bool TerminatingSession::start_recording() {
  if (req_.action == policy::Action::kSftp) return true;  // sftp: an operation log instead
  const auto& rc = conn_.config().recording;
  std::error_code ec;
  std::filesystem::create_directories(rc.dir, ec);
  ::chmod(rc.dir.c_str(), 0700);
  const auto now = std::time(nullptr);
  recording_path_ = (rc.dir / fmt::format("{}-{}-{}-{}.cast", conn_.audit_id(), id_, target_.name,
                                          static_cast<int64_t>(now)))
                        .string();
  audit::Recording::Header h;
  if (req_.pty) {
    h.width = static_cast<int>(std::max<uint32_t>(1, req_.pty->cols));
    h.height = static_cast<int>(std::max<uint32_t>(1, req_.pty->rows));
    h.term = req_.pty->term;
  }
  h.timestamp = static_cast<int64_t>(now);
  h.title = fmt::format("{}@{} {}", remote_user_, target_.name,
                        req_.action == policy::Action::kExec ? req_.command : "(shell)");
  h.target = target_.name;
  h.user = conn_.login();
  h.key_id = conn_.certificate().key_id();
  h.serial = conn_.certificate().serial();
  h.connection = conn_.audit_id();
  h.touch_key_fp = touch_key_fp_;
  audit::Recording::Executor executor;
  if (Offload* recorder = conn_.worker().runtime().recorder; recorder != nullptr) {
    executor = [recorder](std::function<void()> job) { recorder->submit(std::move(job)); };
  }
  auto rec = audit::Recording::create(recording_path_, h, rc.max_size, std::move(executor));
  if (!rec) {
    log_event(Level::kError, "recording_failed",
              {{"conn", conn_.id()},
               {"channel", id_},
               {"code", rec.error().code},
               {"reason", rec.error().message}});
    // Deny by default: a session that should be recorded does not run unrecorded.
    recording_path_.clear();
    fail("recording_unavailable",
         fmt::format("the session cannot be recorded ({}); it is not started", rec.error().message));
    return false;
  }
  recording_ = std::move(*rec);
  record_start_ = Clock::now();
  // Output waits in libssh (and the target's window closes) while the disk is behind; the
  // recorder's thread says when to go on.
  recording_->set_drain_callback(
      [&worker = conn_.worker(), alive = std::weak_ptr<int>(alive_), this]() {
        worker.post([alive, this]() {
          if (alive.lock()) pump();
        });
      });
  return true;
}

void TerminatingSession::discard_recording() {
  log_event(Level::kDebug, "recording_discarded",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"file", recording_path_},
             {"reason", "no request reached the target"}});
  recording_.reset();  // nothing but the header (and resizes) was written: no fsync needed
  if (::unlink(recording_path_.c_str()) != 0 && errno != ENOENT) {
    log_event(Level::kWarn, "recording_discard_failed",
              {{"conn", conn_.id()}, {"file", recording_path_}, {"reason", std::strerror(errno)}});
  }
  recording_path_.clear();
}

void TerminatingSession::record_output(std::span<const uint8_t> data) {
  if (!recording_) return;
  auto st = recording_->output(elapsed(), data);
  recording_checked(st);
}

void TerminatingSession::recording_checked(const Result<audit::Recording::Status>& st) {
  if (!st) {
    // Fail closed: a session that is recorded does not go on unrecorded.
    if (!recording_failed_) {
      recording_failed_ = true;
      log_event(Level::kError, "recording_failed",
                {{"conn", conn_.id()}, {"code", st.error().code}, {"reason", st.error().message}});
      fail("recording_failed",
           fmt::format("the session's recording cannot be written ({}); the session is ended",
                       st.error().message));
    }
    return;
  }
  if (*st == audit::Recording::Status::kCapReached &&
      conn_.config().recording.end_session_on_cap && state_ == State::kRelaying) {
    close_reason_ = "recording_cap";
    error_text_ = fmt::format(
        "\r\ntouchgate: the session reached the recording size limit of {} bytes and is ended "
        "(recording_cap)\r\n",
        conn_.config().recording.max_size);
    upstream_->close_channel();
  }
}

size_t TerminatingSession::upstream_room(bool) {
  if (channel_ == nullptr || client_closed_) return UpstreamSsh::kMaxWrite;  // dropped
  if (ssh_get_status(conn_.session()) & SSH_WRITE_PENDING) return 0;
  if (recording_ && recording_->backlogged()) return 0;  // the drain callback pumps again
  return std::min<size_t>(ssh_channel_window_size(channel_), UpstreamSsh::kMaxWrite);
}

void TerminatingSession::upstream_data(std::span<const uint8_t> data, bool is_stderr) {
  if (channel_ == nullptr || client_closed_ || data.empty()) return;
  bytes_down_ += data.size();
  conn_.note_activity(Clock::now());  // output is activity for the idle timeout
  record_output(data);
  if (sftp_ && !is_stderr) sftp_->server_bytes(data);
  const int n = is_stderr ? ssh_channel_write_stderr(channel_, data.data(),
                                                     static_cast<uint32_t>(data.size()))
                          : ssh_channel_write(channel_, data.data(),
                                              static_cast<uint32_t>(data.size()));
  if (n == SSH_ERROR) fail("client_write_failed", "writing to the client failed");
}

void TerminatingSession::upstream_writable() { drain_client(); }

void TerminatingSession::upstream_exit_status(int status) {
  if (channel_ == nullptr || exit_sent_) return;
  ssh_channel_request_send_exit_status(channel_, status);
  exit_sent_ = true;
}

void TerminatingSession::upstream_exit_signal(const std::string& signal, bool core_dumped,
                                              const std::string& message) {
  if (channel_ == nullptr || exit_sent_) return;
  ssh_channel_request_send_exit_signal(channel_, signal.c_str(), core_dumped ? 1 : 0,
                                       message.c_str(), "");
  exit_sent_ = true;
}

void TerminatingSession::upstream_eof() { upstream_eof_ = true; }

void TerminatingSession::upstream_channel_closed() {
  upstream_closed_ = true;
  upstream_eof_ = true;
  if (close_reason_.empty()) close_reason_ = "target_closed";
  finish();
}

// ---- flow --------------------------------------------------------------------------------------

void TerminatingSession::pump() {
  if (state_ == State::kDone) return;
  if (state_ == State::kClosing) {
    finish();
    return;
  }
  if (upstream_) upstream_->pump();
  audit_sftp_ops();
  if (state_ == State::kRelaying) {
    drain_client();
    if (client_eof_ && channel_buffered_ == 0 && pending_size() == 0 && upstream_) {
      upstream_->send_eof();
    }
    if (client_closed_ && upstream_) {
      close_reason_ = "client_closed";
      upstream_->close_channel();
    }
    if (upstream_eof_ && !eof_sent_ && channel_ != nullptr && !client_closed_ &&
        !(ssh_get_status(conn_.session()) & SSH_WRITE_PENDING)) {
      ssh_channel_send_eof(channel_);
      eof_sent_ = true;
    }
  } else if (client_closed_ && state_ != State::kClosing) {
    close_reason_ = "client_closed";
    fail("client_closed", "the client closed the channel");
  }
}

void TerminatingSession::tick(Clock::time_point now) {
  if (window_deadline_ && now >= *window_deadline_ && live()) {
    window_deadline_.reset();
    fail("policy_window_closed",
         fmt::format("rule {} allows access to {} only during {}; that time is over",
                     window_rule_, target_.name, window_));
  }
  if (session_deadline_ && now >= *session_deadline_ && live()) {
    session_deadline_.reset();
    fail("session_time_limit",
         fmt::format("rule {} allows sessions to {} of at most {}", session_rule_, target_.name,
                     policy::format_duration(static_cast<uint64_t>(max_session_.count()))));
  }
  if (state_ == State::kConnecting && fd_ >= 0 && now >= connect_deadline_) {
    conn_.worker().unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
    if (candidates_.empty()) {
      fail("target_connect_failed",
           fmt::format("cannot reach target {} ({}): no answer within {} s", target_.name,
                       target_.address(), conn_.config().server.connect_timeout.count()));
    } else {
      connect_next();
    }
  }
  // Events reach the file within about a second, however little the session prints.
  if (recording_ && recording_->buffered() > 0 && now >= next_recording_flush_) {
    next_recording_flush_ = now + std::chrono::seconds(1);
    auto flushed = recording_->flush();
    if (!flushed) recording_checked(tl::unexpected(flushed.error()));
  }
  if (upstream_) upstream_->tick(now);
  pump();
}

void TerminatingSession::fail(const std::string& code, const std::string& message) {
  if (state_ == State::kDone || state_ == State::kClosing) return;
  log_event(Level::kInfo, "channel_failed",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"user", conn_.login()},
             {"target", req_.target},
             {"code", code},
             {"reason", message}});
  close_reason_ = code;
  close_message_ = message;
  error_text_ = fmt::format("{}touchgate: {} ({})\r\n", state_ == State::kRelaying ? "\r\n" : "",
                            message, code);
  state_ = State::kClosing;
  if (upstream_) upstream_->disconnect(code);
  if (fd_ >= 0) {
    conn_.worker().unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

void TerminatingSession::finish() {
  if (state_ == State::kDone) return;
  if (channel_ != nullptr && !client_closed_) {
    if (!error_text_.empty()) {
      ssh_channel_write_stderr(channel_, error_text_.data(),
                               static_cast<uint32_t>(error_text_.size()));
    }
    if (!exit_sent_) {
      ssh_channel_request_send_exit_status(channel_, 255);
      exit_sent_ = true;
    }
    if (!eof_sent_) ssh_channel_send_eof(channel_);
    eof_sent_ = true;
  }
  if (channel_ != nullptr) {
    retire_channel(channel_, &cb_, !client_closed_);
    channel_ = nullptr;
  }
  if (upstream_) {
    upstream_->disconnect(close_reason_.empty() ? "closed" : close_reason_);
  }
  audit_closed();
  state_ = State::kDone;
}

void TerminatingSession::audit_closed() {
  Auditor* a = conn_.worker().runtime().auditor;
  std::string sftp_summary;
  if (sftp_) {
    sftp_->end();
    audit_sftp_ops();
    const auto& st = sftp_->stats();
    for (const auto& [name, n] : st.requests) {
      sftp_summary += fmt::format("{}{}={}", sftp_summary.empty() ? "" : " ", name, n);
    }
    if (sftp_->desynced()) sftp_summary.append(" desynced: ").append(sftp_->desync_reason());
    sftp_.reset();
  }
  log_event(Level::kInfo, "channel_closed",
            {{"conn", conn_.id()},
             {"channel", id_},
             {"user", conn_.login()},
             {"target", req_.target},
             {"reason", close_reason_},
             {"bytes_up", bytes_up_},
             {"bytes_down", bytes_down_}});
  std::optional<audit::Record> channel_record;
  if (a != nullptr) {
    audit::Record r = conn_.audit_record("channel_closed");
    r.u64("channel", id_)
        .str("target", req_.target)
        .str("address", address_)
        .str("action", action_word(req_.action))
        .u64("bytes_up", bytes_up_)
        .u64("bytes_down", bytes_down_)
        .u64("duration_ms", static_cast<uint64_t>(
                                std::chrono::duration_cast<std::chrono::milliseconds>(
                                    Clock::now() - opened_at_)
                                    .count()))
        .str("reason", close_reason_.empty() ? "closed" : close_reason_);
    if (!close_message_.empty()) r.str("message", close_message_);
    if (!sftp_summary.empty()) r.str("sftp_requests", sftp_summary);
    channel_record = std::move(r);
  }
  if (recording_ && !requests_sent_) discard_recording();
  if (!recording_) {
    if (a != nullptr && channel_record) a->note(std::move(*channel_record));
    return;
  }
  // The recording is closed (flushed, fsynced, hashed) on the recorder's thread; its record and
  // then channel_closed are written from there, in that order.
  // Prepared here (they name the connection), completed there: recording_closed, or
  // recording_failed when the file could not be written whole.
  std::optional<audit::Record> recording_record, failed_record;
  if (a != nullptr) {
    audit::Record r = conn_.audit_record("recording_closed");
    r.u64("channel", id_).str("target", target_.name).str("file", recording_path_);
    recording_record = std::move(r);
    audit::Record f = conn_.audit_record("recording_failed");
    f.u64("channel", id_).str("target", target_.name).str("file", recording_path_);
    failed_record = std::move(f);
  }
  const bool capped = recording_->cap_reached();
  recording_->close_async(
      [a, recording_record = std::move(recording_record), failed_record = std::move(failed_record),
       channel_record = std::move(channel_record), capped, record_input = record_input_,
       conn = conn_.id()](Result<audit::Recording::Summary> summary) mutable {
        if (!summary) {
          log_event(Level::kError, "recording_failed",
                    {{"conn", conn},
                     {"code", summary.error().code},
                     {"reason", summary.error().message}});
          if (a != nullptr && failed_record) {
            failed_record->str("reason", summary.error().code)
                .str("message", summary.error().message);
            a->note(std::move(*failed_record));
          }
        } else if (a != nullptr && recording_record) {
          recording_record->str("sha256", summary->sha256)
              .u64("size", summary->size)
              .boolean("input", record_input)
              .boolean("capped", capped);
          a->note(std::move(*recording_record));
        }
        if (a != nullptr && channel_record) a->note(std::move(*channel_record));
      });
  recording_.reset();
}

void TerminatingSession::abandon() {
  alive_.reset();
  if (fd_ >= 0) {
    conn_.worker().unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  if (upstream_) {
    upstream_->disconnect("connection_closed");
    upstream_.reset();
  }
  if (channel_ != nullptr) {
    ssh_remove_channel_callbacks(channel_, &cb_);
    channel_ = nullptr;
  }
  if (state_ != State::kDone) {
    if (close_reason_.empty()) close_reason_ = "connection_closed";
    audit_closed();
  }
  state_ = State::kDone;
}

std::chrono::microseconds TerminatingSession::elapsed() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - record_start_);
}

}  // namespace touchgate::gateway
