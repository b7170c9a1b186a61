// Trust boundary: a remote, unauthenticated SSH client. All its input reaches us through libssh
// callbacks; the certificate bytes are judged by ssh::validate_certificate alone.
#include "gateway/connection.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "gateway/auditor.h"
#include "gateway/direct_tcpip.h"
#include "gateway/log.h"
#include "gateway/session_channel.h"
#include "gateway/terminating.h"
#include "gateway/store_service.h"
#include "ssh/certificate.h"
#include "ssh/digest.h"

namespace touchgate::gateway {

namespace {

constexpr int kMaxPollPasses = 64;
constexpr int kQuickAckEvents = 32;

bool is_certificate_type(enum ssh_keytypes_e t) {
  switch (t) {
    case SSH_KEYTYPE_RSA_CERT01:
    case SSH_KEYTYPE_ECDSA_P256_CERT01:
    case SSH_KEYTYPE_ECDSA_P384_CERT01:
    case SSH_KEYTYPE_ECDSA_P521_CERT01:
    case SSH_KEYTYPE_ED25519_CERT01:
    case SSH_KEYTYPE_SK_ECDSA_CERT01:
    case SSH_KEYTYPE_SK_ED25519_CERT01:
      return true;
    default:
      return false;
  }
}

// key_blob returns the wire blob of a key libssh parsed (for certificates: the whole
// certificate, byte-identical to what the client sent).
std::optional<std::vector<uint8_t>> key_blob(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || b64 == nullptr) return std::nullopt;
  auto blob = ssh::base64_decode(b64);
  ssh_string_free_char(b64);
  return blob;
}

uint64_t unix_now() {
  return static_cast<uint64_t>(std::time(nullptr));
}

Auditor* auditor_of(Worker& w) { return w.runtime().auditor; }

}  // namespace

std::string disconnect_text(const std::string& code, const std::string& message) {
  return fmt::format("touchgate: {} ({})", message, code);
}

Connection::Connection(Worker& worker, const Accepted& accepted)
    : worker_(worker),
      session_(accepted.session),
      id_(accepted.id),
      peer_(accepted.peer),
      peer_ip_(accepted.peer_ip),
      accepted_at_(accepted.accepted_at),
      snap_(worker.runtime().snapshot()) {
  audit_id_ = fmt::format("{}-{}", worker.runtime().instance, id_);
  grace_deadline_ = accepted_at_ + snap_.config->server.login_grace_time;
  last_activity_ = accepted_at_;
  worker_.runtime().connections.fetch_add(1);
}

audit::Record Connection::audit_record(std::string_view event) const {
  audit::Record r(event);
  r.str("conn", audit_id_).str("user", login_);
  return r;
}

Connection::~Connection() {
  if (state_ != State::kClosed) teardown("destroyed");
  worker_.runtime().connections.fetch_sub(1);
}

bool Connection::start() {
  // The loop watches its own duplicate of the socket: libssh closes its descriptor when a poll
  // (possibly one nested inside a channel write) meets the client's EOF or an error, and a closed
  // descriptor would silently leave the epoll set (and its number could be reused by another
  // socket). The duplicate keeps reporting the closed socket until teardown.
  fd_ = ::fcntl(ssh_get_fd(session_), F_DUPFD_CLOEXEC, 0);
  if (fd_ < 0) {
    log_event(Level::kError, "event_setup_failed", {{"conn", id_}, {"error", std::strerror(errno)}});
    teardown("internal_error");
    return false;
  }
  ssh_set_blocking(session_, 0);
  if (Auditor* a = auditor_of(worker_)) {
    auto [client, client_port] = split_address(peer_);
    audit::Record r("connection_accepted");
    r.str("conn", audit_id_).str("client", client).u64("client_port", client_port);
    r.str("local", local_address(fd_).to_string());
    a->note(std::move(r));
    audit_accepted_ = true;
  }

  // Authentication and channel opens go through the message callback, which lets us leave a
  // request unanswered before disconnecting with a reason.
  server_cb_.userdata = this;
  ssh_callbacks_init(&server_cb_);
  ssh_set_server_callbacks(session_, &server_cb_);
  ssh_set_message_callback(session_, &Connection::on_message, this);
  ssh_set_auth_methods(session_, SSH_AUTH_METHOD_PUBLICKEY);

  int rc = ssh_handle_key_exchange(session_);
  if (rc == SSH_ERROR) {
    log_event(Level::kInfo, "handshake_failed",
              {{"conn", id_}, {"peer", peer_}, {"error", ssh_get_error(session_)}});
    teardown("handshake_failed");
    return false;
  }
  event_ = ssh_event_new();
  if (event_ == nullptr || ssh_event_add_session(event_, session_) != SSH_OK) {
    log_event(Level::kError, "event_setup_failed", {{"conn", id_}});
    teardown("internal_error");
    return false;
  }
  interest_ = EPOLLIN | EPOLLOUT;
  if (!worker_.watch(fd_, interest_, this)) {
    teardown("internal_error");
    return false;
  }
  log_event(Level::kInfo, "connection_accepted",
            {{"conn", id_}, {"peer", peer_}, {"worker", worker_.index()}});
  return true;
}

void Connection::on_events(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (events & EPOLLIN) last_activity_ = Clock::now();
  for (int pass = 0; pass < kMaxPollPasses; ++pass) {
    int rc = ssh_event_dopoll(event_, 0);
    if (rc != SSH_OK) break;
    if (pending_disconnect_) break;
  }
  if ((quickack_events_ < kQuickAckEvents || mfa_ != nullptr) && fd_ >= 0) {
    // The client's handshake runs with Nagle on: acknowledge at once so that no round of key
    // exchange, authentication, channel setup or the agent dialog of the touch waits for a
    // delayed ACK (the client's data for the target is held meanwhile and not answered). The
    // events of the touch do not use up the budget meant for the target's handshake after it.
    if (mfa_ == nullptr) ++quickack_events_;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  }
  after_poll();
}

void Connection::after_poll() {
  if (state_ == State::kClosed) return;
  if (pending_disconnect_) {
    settle();
    return;
  }
  if (close_if_gone()) return;
  // The agent dialog first: opening its channel may itself run a poll pass.
  if (mfa_) mfa_->step();
  pump_mfa();
  // A refusal that disconnects must reach the client before any channel close.
  if (!pending_disconnect_) {
    // By index: a write inside a pump may poll and accept a new channel (the vectors grow).
    for (size_t i = 0; i < forwards_.size(); ++i) forwards_[i]->pump();
    for (size_t i = 0; i < sessions_.size(); ++i) sessions_[i]->pump();
    for (size_t i = 0; i < terms_.size(); ++i) terms_[i]->pump();
    if (mfa_ && mfa_->has_news() && !pending_disconnect_) {
      // Agent bytes a nested poll took in during the pumps.
      mfa_->step();
      pump_mfa();
    }
  }
  settle();
}

bool Connection::close_if_gone() {
  if (state_ == State::kClosed) return true;
  int status = ssh_get_status(session_);
  if (!(status & (SSH_CLOSED | SSH_CLOSED_ERROR))) return false;
  // libssh reports a client's ordinary close (DISCONNECT or EOF) as an error too; tell them
  // apart by what libssh says.
  const char* err = ssh_get_error(session_);
  std::string why = err != nullptr ? err : "";
  bool ordinary = why.empty() || why.find("disconnect") != std::string::npos ||
                  why.find("closed") != std::string::npos || why.find("EOF") != std::string::npos;
  if (ordinary) {
    teardown("client_closed");
  } else {
    log_event(Level::kInfo, "connection_error", {{"conn", id_}, {"error", why}});
    teardown("connection_error");
  }
  return true;
}

void Connection::after_forward_event() {
  if (state_ == State::kClosed) return;
  settle();
}

void Connection::settle() {
  if (state_ == State::kClosed) return;
  if (pending_disconnect_) {
    auto [code, message] = *pending_disconnect_;
    pending_disconnect_.reset();
    disconnect_now(code, message);
    return;
  }
  // A poll nested in a channel write or open (target events, ticks) may have met the client's
  // close: nothing else would report it.
  if (close_if_gone()) return;
  if (worker_.draining() && idle_for_drain()) {
    disconnect_now("shutting_down", "the gateway is shutting down");
    return;
  }
  update_interest();
  if (std::any_of(forwards_.begin(), forwards_.end(), [](auto& f) { return f->done(); }) ||
      std::any_of(sessions_.begin(), sessions_.end(), [](auto& c) { return c->done(); }) ||
      std::any_of(terms_.begin(), terms_.end(), [](auto& t) { return t->done(); })) {
    worker_.mark_dirty(this);
  }
}

void Connection::update_interest() {
  if (state_ == State::kClosed || fd_ < 0) return;
  uint32_t want = EPOLLIN;
  if (ssh_get_status(session_) & SSH_WRITE_PENDING) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    worker_.rewatch(fd_, interest_, this);
  }
}

void Connection::tick(Clock::time_point now) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kHandshake && now >= grace_deadline_) {
    disconnect_now("login_grace_time",
                   fmt::format("not authenticated within the login grace time of {} s",
                               snap_.config->server.login_grace_time.count()));
    return;
  }
  const auto idle = snap_.config->server.idle_timeout;
  if (state_ == State::kAuthenticated && idle.count() > 0 && now - last_activity_ >= idle) {
    disconnect_now("idle_timeout", fmt::format("no traffic for {} s", idle.count()));
    return;
  }
  if (mfa_) {
    mfa_->step();
    mfa_->tick(now);
  }
  pump_mfa();
  if (!pending_disconnect_) {
    for (size_t i = 0; i < forwards_.size(); ++i) forwards_[i]->tick(now);
    for (size_t i = 0; i < sessions_.size(); ++i) sessions_[i]->pump();
    for (size_t i = 0; i < terms_.size(); ++i) terms_[i]->tick(now);
  }
  settle();
}

void Connection::begin_drain() {
  // Connections still authenticating, and authenticated ones with nothing running (an idle
  // ControlMaster, say), have no session to finish: they close at once. The others close when
  // their last channel does, or at the drain deadline.
  if (state_ == State::kHandshake || idle_for_drain()) {
    disconnect_now("shutting_down", "the gateway is shutting down");
  }
}

bool Connection::idle_for_drain() const {
  return state_ == State::kAuthenticated && !pending_disconnect_ && mfa_ == nullptr &&
         live_channels() == 0;
}

void Connection::shutdown_now() {
  if (state_ == State::kClosed) return;
  // At the drain deadline many connections may close at once: do not wait on slow clients.
  disconnect_now("shutting_down", "the gateway is shutting down", 0);
}

void Connection::reap() {
  forwards_.erase(std::remove_if(forwards_.begin(), forwards_.end(),
                                 [](const std::unique_ptr<Forward>& f) { return f->done(); }),
                  forwards_.end());
  sessions_.erase(
      std::remove_if(sessions_.begin(), sessions_.end(),
                     [](const std::unique_ptr<SessionChannel>& c) { return c->done(); }),
      sessions_.end());
  terms_.erase(std::remove_if(terms_.begin(), terms_.end(),
                              [](const std::unique_ptr<TerminatingSession>& t) { return t->done(); }),
               terms_.end());
}

size_t Connection::live_channels() const {
  return static_cast<size_t>(
      std::count_if(forwards_.begin(), forwards_.end(), [](auto& f) { return f->live(); }) +
      std::count_if(sessions_.begin(), sessions_.end(), [](auto& c) { return c->live(); }) +
      std::count_if(terms_.begin(), terms_.end(), [](auto& t) { return t->live(); }));
}

// ---- authentication ---------------------------------------------------------------------------

int Connection::auth_request(ssh_message msg) {
  if (state_ != State::kHandshake) return 1;
  if (pending_disconnect_) return 0;  // a disconnect with the reason is on its way
  const int max_tries = snap_.config->server.max_auth_tries;
  if (const int method = ssh_message_subtype(msg); method != SSH_AUTH_METHOD_PUBLICKEY) {
    // "publickey" only. Any other method except "none" (the client's question which methods
    // exist) counts as a failed attempt, like a plain key does.
    if (method != SSH_AUTH_METHOD_NONE && ++auth_failures_ >= max_tries) {
      schedule_disconnect("auth_too_many_tries",
                          fmt::format("too many authentication failures ({})", auth_failures_));
      return 0;
    }
    return 1;
  }
  const char* user = ssh_message_auth_user(msg);
  std::string login = user != nullptr ? user : "";
  // libssh 0.10 marks these message accessors deprecated in favour of the auth callback, but
  // only the message form lets us withhold the reply to a refused certificate.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ssh_key key = ssh_message_auth_pubkey(msg);
  const int sig_state = ssh_message_auth_publickey_state(msg);
#pragma GCC diagnostic pop
  if (key == nullptr) return 1;
  auto type = ssh_key_type(key);

  if (!is_certificate_type(type)) {
    ++auth_failures_;
    const char* type_name = ssh_key_type_to_char(type);
    log_event(Level::kInfo, "auth_refused",
              {{"conn", id_},
               {"peer", peer_},
               {"user", login},
               {"code", "auth_not_certificate"},
               {"key_type", type_name != nullptr ? type_name : "?"}});
    audit_auth_refused(login, "auth_not_certificate",
                       fmt::format("a plain {} key, not a certificate",
                                   type_name != nullptr ? type_name : "?"),
                       nullptr);
    if (!banner_sent_) {
      // Shown by the OpenSSH client at its default log level, before "Permission denied".
      std::string text =
          "touchgate: only OpenSSH user certificates from the SSO CA are accepted here; "
          "plain public keys and passwords are refused (auth_not_certificate)\n";
      ssh_string banner = ssh_string_from_char(text.c_str());
      if (banner != nullptr) {
        ssh_send_issue_banner(session_, banner);
        ssh_string_free(banner);
      }
      banner_sent_ = true;
    }
    if (auth_failures_ >= max_tries) {
      schedule_disconnect("auth_too_many_tries",
                          fmt::format("too many authentication failures ({})", auth_failures_));
      return 0;
    }
    return 1;
  }

  if (sig_state == SSH_PUBLICKEY_STATE_NONE) {
    // Ask the client to prove possession first; the certificate is judged once it has signed,
    // so that only its holder learns why it is refused.
    ssh_message_auth_reply_pk_ok_simple(msg);
    return 0;
  }
  if (sig_state != SSH_PUBLICKEY_STATE_VALID) {
    log_event(Level::kInfo, "auth_refused",
              {{"conn", id_}, {"peer", peer_}, {"user", login}, {"code", "auth_bad_signature"}});
    audit_auth_refused(login, "auth_bad_signature",
                       "the signature over the authentication request is invalid", nullptr);
    schedule_disconnect("auth_bad_signature",
                        "the signature over the authentication request is invalid");
    return 0;
  }

  auto blob = key_blob(key);
  if (!blob) {
    audit_auth_refused(login, "cert_malformed", "the certificate could not be read", nullptr);
    schedule_disconnect("cert_malformed", "the certificate could not be read");
    return 0;
  }
  // "alice+db1" (terminating mode, for tools that cannot pass a command): the certificate
  // principal is the part before the first '+', the rest names the target.
  std::string principal = login;
  std::string login_target;
  if (const size_t plus = login.find('+'); plus != std::string::npos) {
    principal = login.substr(0, plus);
    login_target = login.substr(plus + 1);
    const bool ok = !principal.empty() && !login_target.empty() && login_target.size() <= 64 &&
                    std::all_of(login_target.begin(), login_target.end(), [](char c) {
                      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                    });
    if (!ok) {
      const std::string why = fmt::format(
          "the login \"{}\" is not PRINCIPAL+TARGET (a target name is 1-64 of A-Z a-z 0-9 . _ -)",
          login.size() > 80 ? login.substr(0, 80) + "..." : login);
      audit_auth_refused(login, "login_bad_target", why, &*blob);
      schedule_disconnect("login_bad_target", why);
      return 0;
    }
  }
  ssh::ValidationContext ctx{principal, peer_ip_, unix_now()};
  auto verified = ssh::validate_certificate(*blob, *snap_.trust, ctx);
  if (!verified) {
    ++auth_failures_;
    log_event(Level::kInfo, "auth_refused",
              {{"conn", id_},
               {"peer", peer_},
               {"user", login},
               {"code", verified.error().code},
               {"reason", verified.error().message},
               {"cert_fp", ssh::fingerprint_sha256(*blob)}});
    audit_auth_refused(login, verified.error().code, verified.error().message, &*blob);
    schedule_disconnect(verified.error().code, verified.error().message);
    return 0;
  }
  Auditor* auditor = auditor_of(worker_);
  if (auditor != nullptr && auditor->refusing()) {
    const Error e = Auditor::refusal();
    log_event(Level::kWarn, "auth_refused",
              {{"conn", id_}, {"peer", peer_}, {"user", login}, {"code", e.code}});
    audit_auth_refused(login, e.code, e.message, &*blob);
    schedule_disconnect(e.code, e.message);
    return 0;
  }
  cert_ = std::move(*verified);
  cert_blob_ = std::move(*blob);
  login_ = principal;
  login_target_ = login_target;
  state_ = State::kAuthenticated;
  if (counted_unauthenticated_) {
    worker_.runtime().unauthenticated.fetch_sub(1);
    counted_unauthenticated_ = false;
  }
  log_event(Level::kInfo, "auth_accepted",
            {{"conn", id_},
             {"peer", peer_},
             {"user", login_},
             {"ca", cert_->ca_name()},
             {"key_id", cert_->key_id()},
             {"serial", cert_->serial()},
             {"key_fp", cert_->key_fingerprint()},
             {"valid_before", ssh::format_utc(cert_->valid_before())}});
  // Authentication alone reaches nothing: the grant is a channel's policy_decision, which waits
  // until it is durable, and the log is written in order, so this record is durable by then.
  if (auditor != nullptr) {
    audit::Record r = audit_record("auth_accepted");
    std::string principals;
    for (const auto& p : cert_->principals()) {
      if (!principals.empty()) principals.push_back(',');
      principals.append(p);
    }
    r.str("outcome", "allow")
        .str("ca", cert_->ca_name())
        .str("key_id", cert_->key_id())
        .u64("serial", cert_->serial())
        .str("principals", principals)
        .str("valid_after", ssh::format_utc(cert_->valid_after()))
        .str("valid_before", ssh::format_utc(cert_->valid_before()))
        .str("key_fp", cert_->key_fingerprint())
        .str("cert_fp", ssh::fingerprint_sha256(cert_blob_))
        .boolean("verify_required", cert_->verify_required());
    auditor->note(std::move(r));
  }
  ssh_message_auth_reply_success(msg, 0);
  return 0;
}

void Connection::audit_auth_refused(const std::string& login, const std::string& code,
                                    const std::string& message,
                                    const std::vector<uint8_t>* blob) {
  Auditor* auditor = auditor_of(worker_);
  if (auditor == nullptr) return;
  audit::Record r("auth_refused");
  r.str("conn", audit_id_).str("user", login).str("outcome", "deny").str("reason", code);
  r.str("message", message);
  if (blob != nullptr) {
    // What the certificate claims (its signature may be the reason it was refused).
    if (auto c = ssh::parse_certificate(*blob)) {
      std::string principals;
      for (const auto& p : c->principals) {
        if (!principals.empty()) principals.push_back(',');
        principals.append(p);
      }
      r.str("key_id", c->key_id).u64("serial", c->serial).str("principals", principals);
      r.str("valid_after", ssh::format_utc(c->valid_after));
      r.str("valid_before", ssh::format_utc(c->valid_before));
      r.str("ca_fp", ssh::fingerprint_sha256(c->signature_key));
      // The CA's configured name when it is one of the trusted CAs ("" when it is not).
      std::string ca_name;
      for (const auto& ca : snap_.trust->cas) {
        if (ca.key.blob == c->signature_key) {
          ca_name = ca.name;
          break;
        }
      }
      r.str("ca", ca_name);
    }
    r.str("cert_fp", ssh::fingerprint_sha256(*blob));
  }
  auditor->note(std::move(r));
}

// ---- channel opens and other requests ----------------------------------------------------------

int Connection::on_message(ssh_session, ssh_message msg, void* self) {
  return static_cast<Connection*>(self)->message(msg);
}

int Connection::message(ssh_message msg) {
  const int type = ssh_message_type(msg);
  const int subtype = ssh_message_subtype(msg);
  if (type == SSH_REQUEST_AUTH) return auth_request(msg);
  if (type == SSH_REQUEST_CHANNEL_OPEN) {
    if (state_ != State::kAuthenticated || pending_disconnect_) return 1;
    if (subtype == SSH_CHANNEL_DIRECT_TCPIP) return open_direct_tcpip(msg);
    if (subtype == SSH_CHANNEL_SESSION) return open_session(msg);
    return refuse_open("channel_type_refused", "this channel type is not offered by the gateway");
  }
  if (type == SSH_REQUEST_CHANNEL) return channel_request(msg);
  if (type == SSH_REQUEST_GLOBAL) {
    log_event(Level::kDebug, "global_request_refused", {{"conn", id_}, {"subtype", subtype}});
  }
  // Everything else (other auth methods, global requests, channel requests) gets libssh's
  // default refusal.
  return 1;
}

int Connection::refuse_open(const std::string& code, const std::string& message,
                            const std::string& target, bool audited) {
  log_event(Level::kInfo, "channel_refused",
            {{"conn", id_}, {"user", login_}, {"code", code}, {"reason", message}});
  if (Auditor* a = auditor_of(worker_); a != nullptr && !audited) {
    audit::Record r = audit_record("channel_refused");
    r.str("outcome", "deny").str("target", target).str("reason", code).str("message", message);
    a->note(std::move(r));
  }
  if (live_channels() == 0) {
    // Nothing else runs on this connection: a disconnect is the one way the client prints why.
    schedule_disconnect(code, message);
    return 0;
  }
  return 1;
}

int Connection::open_direct_tcpip(ssh_message msg) {
  const auto& server = snap_.config->server;
  const char* host_c = ssh_message_channel_request_open_destination(msg);
  int port_i = ssh_message_channel_request_open_destination_port(msg);
  std::string host = host_c != nullptr ? host_c : "";
  uint16_t port = (port_i > 0 && port_i <= 65535) ? static_cast<uint16_t>(port_i) : 0;
  std::string requested = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port_i)
                                                              : fmt::format("{}:{}", host, port_i);
  if (worker_.draining()) {
    return refuse_open("shutting_down", "the gateway is shutting down", requested);
  }
  if (Auditor* a = auditor_of(worker_); a != nullptr && a->refusing()) {
    return refuse_open(Auditor::refusal().code, Auditor::refusal().message, requested);
  }
  if (!cert_->permit_port_forwarding()) {
    return refuse_open("port_forwarding_not_permitted",
                       "the certificate does not permit port forwarding (permit-port-forwarding)",
                       requested);
  }
  if (live_channels() >= static_cast<size_t>(server.max_channels_per_connection)) {
    return refuse_open("too_many_channels",
                       fmt::format("at most {} channels per connection",
                                   server.max_channels_per_connection),
                       requested);
  }
  if (port == 0) {
    return refuse_open("target_unknown", fmt::format("{} is not a valid destination", requested),
                       requested);
  }
  if (!certificate_still_valid()) return 0;
  // The policy decides (deny by default); the decision names the target and what the second
  // factor must prove.
  const policy::Decision d = decide(host, port);
  log_event(Level::kInfo, "policy_decision",
            {{"conn", id_},
             {"user", login_},
             {"target", d.target_name},
             {"requested", requested},
             {"effect", d.allowed() ? "allow" : "deny"},
             {"rule", d.rule_id},
             {"code", d.code},
             {"factor", d.allowed() ? policy::factor_names(d.factors) : std::string()}});
  if (!d.allowed()) {
    audit_denied(0, d.target_name.empty() ? requested : d.target_name, d, d.code, "none");
    return refuse_open(d.code, d.explanation, requested, true);
  }
  policy::Target target;
  if (d.target != nullptr) {
    target = *d.target;
  } else {
    target.name = d.target_name;
    target.host = d.host;
    target.port = d.port;
  }
  ssh_channel channel = ssh_message_channel_request_open_reply_accept(msg);
  if (channel == nullptr) {
    log_event(Level::kWarn, "channel_accept_failed", {{"conn", id_}});
    return 0;
  }
  const std::string what = fmt::format("{} {}", target.name, target.address());
  auto fwd = std::make_unique<Forward>(*this, next_channel_id_++, std::move(target), requested);
  Forward* raw = fwd.get();
  forwards_.push_back(std::move(fwd));
  ++channels_opened_;
  raw->attach(channel);
  raw->limit_session(d.max_session, d.rule_id);
  if (d.window_closes) raw->limit_window(*d.window_closes, d.rule_id, d.window);
  raw->set_request(host, port);
  if (d.target == nullptr && !ssh::IpAddress::parse(d.host)) raw->check_resolved_addresses();
  // The second factor: until it passes, the channel stays in kAuthorizing and no byte moves,
  // and no connection to the target is made. The challenge starts after this callback returns.
  request_touch(raw->id(), what, true, TouchNeed{d.factors, d.max_age, d.rule_id, {}});
  return 0;
}

int Connection::open_session(ssh_message msg) {
  const auto& server = snap_.config->server;
  if (worker_.draining()) return refuse_open("shutting_down", "the gateway is shutting down");
  if (!certificate_still_valid()) return 0;
  if (live_channels() >= static_cast<size_t>(server.max_channels_per_connection)) {
    return refuse_open("too_many_channels", fmt::format("at most {} channels per connection",
                                                        server.max_channels_per_connection));
  }
  ssh_channel channel = ssh_message_channel_request_open_reply_accept(msg);
  if (channel == nullptr) {
    log_event(Level::kWarn, "channel_accept_failed", {{"conn", id_}});
    return 0;
  }
  sessions_.push_back(std::make_unique<SessionChannel>(*this, next_channel_id_++, channel));
  ++channels_opened_;
  return 0;
}

void Connection::start_terminating(uint64_t channel_id, ssh_channel channel,
                                   TerminatingRequest req) {
  auto t = std::make_unique<TerminatingSession>(*this, channel_id, channel, std::move(req));
  TerminatingSession* raw = t.get();
  terms_.push_back(std::move(t));
  raw->begin();
}

bool Connection::is_target(std::string_view name) const {
  for (const auto& t : snap_.config->targets) {
    if (t.name == name) return true;
  }
  return false;
}

int Connection::channel_request(ssh_message msg) {
  if (state_ != State::kAuthenticated) return 1;
  ssh_channel channel = ssh_message_channel_request_channel(msg);
  for (auto& c : sessions_) {
    if (c->channel() == channel && channel != nullptr) return c->request(msg);
  }
  for (auto& t : terms_) {
    if (t->channel() == channel && channel != nullptr) return t->request(msg);
  }
  return 1;  // requests on direct-tcpip channels (none are defined) get the default refusal
}

// ---- the second factor -------------------------------------------------------------------------

policy::Decision Connection::decide(const std::string& host, uint16_t port,
                                    policy::Action action) {
  policy::Request req;
  req.host = host;
  req.port = port;
  req.action = action;
  req.at = std::chrono::system_clock::now();
  return snap_.policy->decide(identity(), req);
}

bool Connection::certificate_still_valid() {
  // The certificate is judged again under the current trust (a reloaded revocation list or CA
  // set) and clock: a connection must not outlive its certificate's validity or revocation.
  ssh::ValidationContext ctx{login_, peer_ip_, unix_now()};
  auto again = ssh::validate_certificate(cert_blob_, *snap_.trust, ctx);
  if (again) return true;
  log_event(Level::kInfo, "certificate_no_longer_valid",
            {{"conn", id_},
             {"user", login_},
             {"code", again.error().code},
             {"reason", again.error().message}});
  schedule_disconnect(again.error().code, again.error().message);
  return false;
}

std::vector<Connection::Reachable> Connection::reachable() {
  std::vector<Reachable> out;
  for (const auto& t : snap_.config->targets) {
    Reachable r;
    r.name = t.name;
    for (auto action : {policy::Action::kJump, policy::Action::kShell, policy::Action::kExec,
                        policy::Action::kSftp}) {
      const policy::Decision d = decide(t.name, t.port, action);
      if (!d.allowed()) continue;
      if (r.actions == 0) r.factors = d.factors;
      r.actions |= static_cast<uint8_t>(action);
    }
    if (r.actions != 0) out.push_back(std::move(r));
  }
  return out;
}

const policy::ResolvedIdentity& Connection::identity() {
  if (!who_ || who_policy_ != snap_.policy) {
    policy::Identity id;
    id.principal = login_;
    id.key_id = cert_->key_id();
    id.serial = cert_->serial();
    id.ca_name = cert_->ca_name();
    id.source = peer_ip_;
    id.extensions = policy::extension_values(cert_->extensions());
    who_ = snap_.policy->resolve(std::move(id));
    who_policy_ = snap_.policy;
  }
  return *who_;
}

void Connection::request_touch(uint64_t channel_id, std::string target, bool reuse,
                               TouchNeed need) {
  // Channels that closed while waiting leave the queue now (the front one, whose challenge may
  // be running, is settled by pump_mfa): the queue never outgrows the channel limit.
  if (touch_queue_.size() > 1) {
    touch_queue_.erase(
        std::remove_if(touch_queue_.begin() + 1, touch_queue_.end(),
                       [this](const TouchWait& w) { return !waiting_for_touch(w.channel_id); }),
        touch_queue_.end());
  }
  touch_queue_.push_back(TouchWait{channel_id, std::move(target), reuse, std::move(need)});
  // Started from pump_mfa after the current callback (never inside one).
}

bool Connection::waiting_for_touch(uint64_t channel_id) const {
  for (const auto& f : forwards_) {
    if (f->id() == channel_id) return f->state() == Forward::State::kAuthorizing;
  }
  // A session channel handed over to terminating mode keeps its id (its SessionChannel is done).
  for (const auto& t : terms_) {
    if (t->id() == channel_id) return t->waiting_for_touch();
  }
  for (const auto& c : sessions_) {
    if (c->id() == channel_id) return c->live();
  }
  return false;
}

void Connection::deliver_touch(uint64_t channel_id, const Result<TouchProof>& result) {
  for (auto& f : forwards_) {
    if (f->id() != channel_id) continue;
    if (result) {
      // Decided again now: a reload or the clock (a time window) may have changed the answer
      // while the user touched the key, and the touch must prove what the rule wants now.
      const policy::Decision d = decide(f->request_host(), f->request_port());
      const uint8_t wanted = d.factors != 0 ? d.factors : policy::kAllFactors;
      const std::string used(
          policy::strongest_factor(proven_factor(result->touch, result->kind)));
      if (!d.allowed()) {
        audit_denied(f->id(), f->target().name, d, d.code, used);
        f->refuse(d.code, d.explanation);
      } else if ((result->factors & wanted) == 0) {
        audit_denied(f->id(), f->target().name, d, "factor_too_weak", used);
        f->refuse("factor_too_weak", fmt::format("rule {} requires {}; the touch proved only {}",
                                                 d.rule_id, policy::factor_names(wanted), used));
      } else {
        f->limit_session(d.max_session, d.rule_id);
        if (d.window_closes) f->limit_window(*d.window_closes, d.rule_id, d.window);
        f->set_touch_factors(result->factors);
        f->set_rule(d.rule_id);
        grant_forward(*f, d, used);
      }
    } else {
      f->refuse(result.error().code, result.error().message);
    }
    return;
  }
  for (size_t i = 0; i < terms_.size(); ++i) {
    if (terms_[i]->id() == channel_id) {
      terms_[i]->touch_result(result);
      return;
    }
  }
  for (size_t i = 0; i < sessions_.size(); ++i) {
    if (sessions_[i]->id() == channel_id) {
      sessions_[i]->touch_result(result);
      return;
    }
  }
}

bool Connection::refuse_resolved(Forward& f, const std::vector<SocketAddress>& addresses) {
  for (const auto& a : addresses) {
    const std::string ip = a.host();
    if (ip.empty()) continue;
    // Both as the address of a configured target (its deny rules) and as a plain address (deny
    // rules whose `hosts` CIDRs cover it).
    policy::Decision d = decide(ip, f.request_port());
    if (d.code != "policy_denied") {
      policy::Request req;
      req.host = ip;
      req.port = f.request_port();
      req.as_host = true;
      d = snap_.policy->decide(identity(), req);
    }
    if (d.code != "policy_denied") continue;  // only a deny rule refuses here
    const std::string why =
        fmt::format("{} resolves to {}, and {}", f.target().name, ip, d.explanation);
    log_event(Level::kInfo, "policy_decision",
              {{"conn", id_},
               {"channel", f.id()},
               {"user", login_},
               {"target", f.target().name},
               {"address", ip},
               {"effect", "deny"},
               {"rule", d.rule_id},
               {"code", d.code}});
    if (Auditor* au = auditor_of(worker_)) {
      audit::Record r = audit_record("policy_decision");
      r.str("outcome", "deny")
          .u64("channel", f.id())
          .str("target", f.target().name)
          .str("address", ip)
          .str("action", "jump")
          .str("rule", d.rule_id)
          .str("reason", d.code)
          .str("factors_required", "")
          .str("factor_used", "")
          .str("from", peer_ip_.to_string());
      au->note(std::move(r));
    }
    f.refuse_by_policy(d.code, why);
    return true;
  }
  return false;
}

void Connection::audit_denied(uint64_t channel, const std::string& target,
                              const policy::Decision& d, const std::string& code,
                              const std::string& factor_used) {
  Auditor* a = auditor_of(worker_);
  if (a == nullptr) return;
  audit::Record r = audit_record("policy_decision");
  r.str("outcome", "deny");
  if (channel != 0) r.u64("channel", channel);
  r.str("target", target)
      .str("action", "jump")
      .str("rule", d.rule_id)
      .str("reason", code)
      .str("factors_required", d.allowed() ? policy::factor_names(d.factors) : "")
      .str("factor_used", factor_used)
      .str("from", peer_ip_.to_string());
  a->note(std::move(r));
}

void Connection::grant_forward(Forward& f, const policy::Decision& d,
                               const std::string& factor_used) {
  const uint8_t wanted = d.factors != 0 ? d.factors : policy::kAllFactors;
  log_event(Level::kInfo, "access_granted",
            {{"conn", id_},
             {"channel", f.id()},
             {"user", login_},
             {"target", f.target().name},
             {"rule", d.rule_id},
             {"factor", factor_used}});
  Auditor* a = auditor_of(worker_);
  if (a == nullptr) {
    f.authorized();
    return;
  }
  audit::Record r = audit_record("policy_decision");
  r.str("outcome", "allow")
      .u64("channel", f.id())
      .str("target", f.target().name)
      .str("action", "jump")
      .str("rule", d.rule_id)
      .str("reason", d.code)
      .str("factors_required", policy::factor_names(wanted))
      .str("factor_used", factor_used)
      .str("from", peer_ip_.to_string());
  // The target is connected only once this record is durable (the channel stays in
  // kAuthorizing, holding the client's bytes, meanwhile).
  a->grant(worker_, alive_, std::move(r), [this, channel = f.id()](Result<void> recorded) {
    for (auto& fwd : forwards_) {
      if (fwd->id() != channel) continue;
      if (fwd->state() != Forward::State::kAuthorizing) break;
      if (recorded) {
        fwd->authorized();
      } else {
        const Error e = Auditor::refusal_for(recorded.error());
        fwd->refuse(e.code, e.message);
      }
      break;
    }
    after_mfa_event();
  });
}

void Connection::check_reuse(uint64_t channel_id, std::string target, std::string rule) {
  reuse_check_ = true;
  const std::string fp = last_touch_->touch.fingerprint();
  ask_store<store::EnrolledKey>(
      worker_, alive_, [fp](store::Store& st) { return st.find_key(fp); },
      [this, channel_id, target = std::move(target), rule = std::move(rule), fp](
          Result<store::EnrolledKey> key, int64_t) {
        reuse_check_ = false;
        const bool active = key && key->status == store::KeyStatus::kActive;
        if (!active) {
          // No reuse: the next pass asks for a new touch, which judges the key again.
          log_event(Level::kInfo, "mfa_reuse_refused",
                    {{"conn", id_},
                     {"user", login_},
                     {"key_fp", fp},
                     {"reason", key ? std::string(store::status_name(key->status))
                                    : key.error().code}});
          last_touch_.reset();
        } else if (!touch_queue_.empty() && touch_queue_.front().channel_id == channel_id &&
                   waiting_for_touch(channel_id) && last_touch_) {
          log_event(Level::kInfo, "mfa_reused",
                    {{"conn", id_},
                     {"user", login_},
                     {"target", target},
                     {"rule", rule},
                     {"key_fp", fp}});
          if (Auditor* a = auditor_of(worker_)) {
            audit::Record r = audit_record("mfa_reused");
            r.str("outcome", "allow").u64("channel", channel_id).str("target", target);
            r.str("key_fp", fp).u64("age_ms", static_cast<uint64_t>(
                                                 std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     Clock::now() - last_touch_->at)
                                                     .count()));
            a->note(std::move(r));
          }
          touch_queue_.pop_front();
          deliver_touch(channel_id, *last_touch_);
        }
        after_mfa_event();
      });
}

void Connection::pump_mfa() {
  if (state_ != State::kAuthenticated || pending_disconnect_) return;
  if (reuse_check_) return;  // the store's answer resumes the queue
  if (mfa_) {
    if (!mfa_->finished()) {
      if (!touch_queue_.empty() && waiting_for_touch(touch_queue_.front().channel_id)) return;
      mfa_->cancel("mfa_cancelled", "the channel closed before the touch");
    }
    Result<TouchProof> result = mfa_->result();
    mfa_.reset();
    if (!touch_queue_.empty()) {
      uint64_t channel_id = touch_queue_.front().channel_id;
      const bool reusable = touch_queue_.front().reuse;
      touch_queue_.pop_front();
      // Only a touch for a target may be reused for later targets (not an mfa-test one).
      if (result && reusable) last_touch_ = *result;
      deliver_touch(channel_id, result);
    }
  }
  while (!touch_queue_.empty() && !pending_disconnect_) {
    TouchWait& w = touch_queue_.front();
    if (!waiting_for_touch(w.channel_id)) {
      touch_queue_.pop_front();
      continue;
    }
    const uint8_t wanted = w.need.factors != 0 ? w.need.factors : policy::kAllFactors;
    const policy::Reuse reuse =
        !w.reuse || !last_touch_
            ? policy::Reuse::kFresh
            : policy::reuse_touch(last_touch_->factors, Clock::now() - last_touch_->at, wanted,
                                  w.need.max_age);
    if (reuse != policy::Reuse::kFresh) {
      if (reuse == policy::Reuse::kReuse) {
        // The key may have been revoked or suspended since it was touched: ask the store first
        // (the queue waits for the answer).
        check_reuse(w.channel_id, w.target, w.need.rule);
        return;
      }
      // A touch within max_age, but too weak for this rule: ask for a stronger one.
      log_event(Level::kInfo, "mfa_step_up",
                {{"conn", id_},
                 {"user", login_},
                 {"target", w.target},
                 {"rule", w.need.rule},
                 {"required", policy::factor_names(wanted)}});
    }
    ChallengeContext ctx;
    ctx.gateway = snap_.config->server.name;
    ctx.ns = snap_.config->mfa_namespace();
    ctx.connection = fmt::format("{}-{}", worker_.runtime().instance, id_);
    ctx.client = peer_;
    ctx.principal = login_;
    ctx.cert = &*cert_;
    ctx.target = w.target;
    ctx.factors = w.need.factors;
    ctx.rule = w.need.rule;
    ctx.no_agent_hint = w.need.no_agent_hint;
    ctx.channel = w.channel_id;
    mfa_ = std::make_unique<MfaDialog>(*this, std::move(ctx));
    mfa_->start();
    break;  // a challenge refused at once is delivered just below
  }
  if (mfa_ && mfa_->finished()) pump_mfa();
}

void Connection::list_keys(uint64_t channel_id) {
  std::string principal = login_;
  ask_store<std::vector<store::EnrolledKey>>(
      worker_, alive_, [principal](store::Store& st) { return st.list_keys(principal); },
      [this, channel_id](Result<std::vector<store::EnrolledKey>> keys, int64_t) {
        for (size_t i = 0; i < sessions_.size(); ++i) {
          if (sessions_[i]->id() == channel_id) {
            sessions_[i]->keys_result(std::move(keys));
            break;
          }
        }
        after_mfa_event();
      });
}

void Connection::after_mfa_event() {
  if (state_ == State::kClosed) return;
  pump_mfa();
  if (!pending_disconnect_) {
    for (size_t i = 0; i < forwards_.size(); ++i) forwards_[i]->pump();
    for (size_t i = 0; i < sessions_.size(); ++i) sessions_[i]->pump();
    for (size_t i = 0; i < terms_.size(); ++i) terms_[i]->pump();
  }
  settle();
}

void Connection::forward_failed(Forward* f, const std::string& code, const std::string& message) {
  log_event(Level::kInfo, "channel_failed",
            {{"conn", id_},
             {"channel", f->id()},
             {"user", login_},
             {"target", f->target().name},
             {"code", code},
             {"reason", message}});
  size_t others = 0;
  for (auto& o : forwards_) {
    if (o.get() != f && o->live()) ++others;
  }
  for (auto& c : sessions_) {
    if (c->live()) ++others;
  }
  for (auto& t : terms_) {
    if (t->live()) ++others;
  }
  // The failed channel closes itself on its next pump; when it was the only one, the client
  // learns the reason from the disconnect instead.
  if (others == 0) schedule_disconnect(code, message);
}

// ---- reload ------------------------------------------------------------------------------------

void Connection::reevaluate() {
  if (state_ != State::kAuthenticated || pending_disconnect_) return;
  if (!certificate_still_valid()) {
    after_mfa_event();
    return;
  }
  size_t revoked = 0;
  for (size_t i = 0; i < forwards_.size(); ++i) {
    Forward& f = *forwards_[i];
    if (!f.live()) continue;
    const policy::Decision d = decide(f.request_host(), f.request_port());
    std::string why;
    if (!d.allowed()) {
      why = d.explanation;
    } else if (f.touch_factors() != 0 &&
               (f.touch_factors() & (d.factors != 0 ? d.factors : policy::kAllFactors)) == 0) {
      why = fmt::format("rule {} now requires {}", d.rule_id, policy::factor_names(d.factors));
    }
    if (why.empty()) {
      // Still allowed: the new rule's limits apply too (the earlier deadline wins).
      f.limit_session(d.max_session, d.rule_id);
      if (d.window_closes) f.limit_window(*d.window_closes, d.rule_id, d.window);
      continue;
    }
    ++revoked;
    if (Auditor* a = auditor_of(worker_)) {
      audit::Record r = audit_record("policy_decision");
      r.str("outcome", "deny")
          .u64("channel", f.id())
          .str("target", f.target().name)
          .str("action", "jump")
          .str("rule", d.rule_id)
          .str("reason", "policy_revoked")
          .str("factors_required", d.allowed() ? policy::factor_names(d.factors) : "")
          .str("factor_used", "none")
          .str("from", peer_ip_.to_string())
          .str("message", why);
      a->note(std::move(r));
    }
    log_event(Level::kInfo, "channel_revoked",
              {{"conn", id_},
               {"channel", f.id()},
               {"user", login_},
               {"target", f.target().name},
               {"rule", d.rule_id},
               {"code", d.code},
               {"reason", why}});
    f.refuse_by_policy("policy_revoked",
                       fmt::format("the reloaded policy no longer allows this channel: {}", why));
  }
  for (size_t i = 0; i < terms_.size(); ++i) {
    TerminatingSession& t = *terms_[i];
    if (!t.live() || t.waiting_for_touch()) continue;  // still to be decided after its touch
    const auto& req = t.request_info();
    uint16_t port = 22;
    for (const auto& c : snap_.config->targets) {
      if (c.name == req.target) port = c.port;
    }
    // As for ProxyJump channels: denied now, or the touch no longer proves what the rule wants.
    const policy::Decision d = decide(req.target, port, req.action);
    const uint8_t wanted = d.factors != 0 ? d.factors : policy::kAllFactors;
    std::string why;
    if (!d.allowed()) {
      why = d.explanation;
    } else if (t.touch_factors() != 0 && (t.touch_factors() & wanted) == 0) {
      why = fmt::format("rule {} now requires {}", d.rule_id, policy::factor_names(wanted));
    }
    if (why.empty()) {
      // Still allowed: the new rule's limits apply too (the earlier deadline wins).
      t.limit_session(d.max_session, d.rule_id);
      if (d.window_closes) t.limit_window(*d.window_closes, d.rule_id, d.window);
      continue;
    }
    ++revoked;
    if (Auditor* a = auditor_of(worker_)) {
      audit::Record r = audit_record("policy_decision");
      r.str("outcome", "deny")
          .u64("channel", t.id())
          .str("target", req.target)
          .str("action", policy::action_name(req.action))
          .str("rule", d.rule_id)
          .str("reason", "policy_revoked")
          .str("factors_required", d.allowed() ? policy::factor_names(wanted) : "")
          .str("factor_used", "none")
          .str("from", peer_ip_.to_string())
          .str("message", why);
      a->note(std::move(r));
    }
    log_event(Level::kInfo, "channel_revoked",
              {{"conn", id_},
               {"channel", t.id()},
               {"user", login_},
               {"target", req.target},
               {"action", policy::action_name(req.action)},
               {"rule", d.rule_id},
               {"code", d.code},
               {"reason", why}});
    t.close_by_policy("policy_revoked",
                      fmt::format("the reloaded policy no longer allows this session: {}", why));
  }
  if (revoked > 0) after_mfa_event();
}

// ---- closing ----------------------------------------------------------------------------------

void Connection::schedule_disconnect(std::string code, std::string message) {
  if (!pending_disconnect_) pending_disconnect_.emplace(std::move(code), std::move(message));
}

void Connection::disconnect_now(const std::string& code, const std::string& message, int flush_ms) {
  if (state_ == State::kClosed) return;
  // From here on nothing new is accepted: the polls below may still deliver requests.
  state_ = State::kClosing;
  log_event(
      Level::kInfo, "disconnect",
      {{"conn", id_}, {"peer", peer_}, {"user", login_}, {"code", code}, {"reason", message}});
  std::string text = disconnect_text(code, message);
  ssh_session_set_disconnect_message(session_, text.c_str());
  // Keep the socket past libssh's close so the client reads the DISCONNECT, not a reset.
  int keep = fd_ >= 0 ? ::dup(fd_) : -1;
  if (fd_ >= 0) worker_.unwatch(fd_);
  for (auto& f : forwards_) f->closing_because(code);
  for (auto& t : terms_) t->closing_because(code);
  if (mfa_) mfa_->abandon();
  for (auto& f : forwards_) f->abandon();
  for (auto& c : sessions_) c->abandon();
  for (auto& t : terms_) t->abandon();
  // libssh writes the DISCONNECT at once only if a poll saw the socket writable since its last
  // write; otherwise it queues it and closes the socket with it unsent. So write something (an
  // IGNORE packet re-arms libssh's writability check), flush, and poll once: the DISCONNECT then
  // leaves before the socket closes.
  ssh_send_ignore(session_, "");
  ssh_blocking_flush(session_, flush_ms);
  if (event_ != nullptr) ssh_event_dopoll(event_, 0);
  for (auto& f : forwards_) f->abandon();
  for (auto& c : sessions_) c->abandon();
  for (auto& t : terms_) t->abandon();
  ssh_disconnect(session_);
  teardown(code);
  if (keep >= 0) worker_.linger(keep);
}

void Connection::teardown(const std::string& reason) {
  if (state_ == State::kClosed) return;
  alive_.reset();
  if (mfa_) mfa_->abandon();
  for (auto& f : forwards_) f->abandon();
  for (auto& c : sessions_) c->abandon();
  for (auto& t : terms_) t->abandon();
  if (fd_ >= 0) {
    worker_.unwatch(fd_);
    ::close(fd_);
  }
  fd_ = -1;
  if (event_ != nullptr) {
    ssh_event_remove_session(event_, session_);
    ssh_event_free(event_);
    event_ = nullptr;
  }
  if (session_ != nullptr) {
    ssh_disconnect(session_);
    ssh_free(session_);
    session_ = nullptr;
  }
  if (counted_unauthenticated_) {
    worker_.runtime().unauthenticated.fetch_sub(1);
    counted_unauthenticated_ = false;
  }
  auto lifetime =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - accepted_at_);
  log_event(Level::kInfo, "connection_closed",
            {{"conn", id_},
             {"peer", peer_},
             {"user", login_},
             {"reason", reason},
             {"duration_ms", lifetime.count()}});
  if (Auditor* a = auditor_of(worker_); a != nullptr && audit_accepted_) {
    audit::Record r("connection_closed");
    r.str("conn", audit_id_);
    if (!login_.empty()) r.str("user", login_);
    r.str("client", split_address(peer_).first)
        .u64("duration_ms", static_cast<uint64_t>(lifetime.count()))
        .u64("channels", channels_opened_)
        .str("reason", reason);
    a->note(std::move(r));
  }
  state_ = State::kClosed;
  worker_.mark_dirty(this);
}

}  // namespace touchgate::gateway
