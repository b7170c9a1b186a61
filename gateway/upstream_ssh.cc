// Trust boundary: the target's host key, answers, channel data and exit status are untrusted;
// data is relayed, never interpreted. The host key is checked before authentication starts.
//
// libssh 0.10 as a non-blocking client (verified against OpenSSH 9.2's sshd, see
// docs/architecture.md "Upstream SSH client"):
// - ssh_connect works on a socket given with SSH_OPTIONS_FD: it skips the connect, returns
//   SSH_AGAIN until the key exchange is done and SSH_OK once the session is ready for
//   authentication; nothing of the authentication has been sent then, so the host key is judged
//   first. From that first call on, libssh owns the socket (ssh_free closes it).
// - ssh_event_add_session fails before the first ssh_connect (no poll handle yet), as on the
//   server side.
// - ssh_userauth_publickey, ssh_channel_open_session and every channel request that wants a reply
//   return SSH_AGAIN / SSH_AUTH_AGAIN and are called again, with the same arguments, until they
//   finish. libssh keeps one pending request per channel: a second request call while one is
//   pending does not send anything and returns the first one's state, so requests are queued here
//   and sent one at a time (window-change and signal want no reply and finish at once).
// - A target's CHANNEL_OPEN with no callback for it is queued in the session's message list
//   forever (memory) unless a message callback answers it: ours refuses every message.
#include "gateway/upstream_ssh.h"

#include <libssh/server.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "gateway/discard.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "ssh/certificate.h"
#include "ssh/digest.h"
#include "ssh/reader.h"

namespace touchgate::gateway {

namespace {

// Poll passes per readiness event, and pump rounds per call (each round may open new work).
constexpr int kMaxPollPasses = 16;
constexpr int kMaxPumpRounds = 32;
// Target output handed to the owner per read (shared by the sessions of one worker thread).
constexpr size_t kReadChunk = 64 * 1024;

struct CharDeleter {
  void operator()(char* p) const { ssh_string_free_char(p); }
};

// key_blob returns the public key blob of key (plain key or certificate).
std::optional<std::vector<uint8_t>> key_blob(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || b64 == nullptr) return std::nullopt;
  std::unique_ptr<char, CharDeleter> owned(b64);
  return ssh::base64_decode(b64);
}

// blob_type_name reads the type name an SSH key or certificate blob starts with.
std::optional<std::string> blob_type_name(std::span<const uint8_t> blob) {
  ssh::Reader r(blob);
  std::string name;
  if (!r.text_copy(&name, 64)) return std::nullopt;
  return name;
}

// host_key_algorithms lists what the key exchange offers for a pinned key of type name: its
// algorithms first, so that a target that has such a key presents it, then the others the
// gateway accepts (kHostKeyAlgorithms), so that a target without one presents the key it has and
// is refused as a mismatch naming both types (rather than failing the key exchange with no
// common algorithm).
std::string host_key_algorithms(const std::string& name) {
  std::string out = name == "ssh-rsa" ? "rsa-sha2-512,rsa-sha2-256" : name;
  const std::string_view all(kHostKeyAlgorithms);
  for (size_t pos = 0; pos <= all.size();) {
    const size_t comma = std::min(all.find(',', pos), all.size());
    const std::string_view alg = all.substr(pos, comma - pos);
    if (("," + out + ",").find(fmt::format(",{},", alg)) == std::string::npos) {
      out.append(",").append(alg);
    }
    pos = comma + 1;
  }
  return out;
}

const char* op_name(int kind) {
  static constexpr std::array<const char*, 9> kNames = {
      "pty-req", "env", "shell", "exec", "subsystem", "window-change", "signal", "eof", "close"};
  return kNames[static_cast<size_t>(kind)];
}

}  // namespace

UpstreamSsh::UpstreamSsh(Watcher& watcher, UpstreamSshListener& listener,
                         UpstreamSshOptions options)
    : watcher_(watcher), listener_(listener), options_(std::move(options)) {}

UpstreamSsh::~UpstreamSsh() {
  release();
}

Result<void> UpstreamSsh::start(int fd) {
  if (state_ != State::kIdle || fd < 0) {
    if (fd >= 0) ::close(fd);
    return touchgate::fail("internal_error", "upstream session started twice");
  }
  auto refuse = [&](std::string code, std::string message) -> Result<void> {
    if (session_ != nullptr) {
      ssh_free(session_);
      session_ = nullptr;
    }
    ::close(fd);
    state_ = State::kClosed;
    return touchgate::fail(std::move(code), std::move(message));
  };
  if (!options_.key) return refuse("internal_error", "no private key for the target");

  // The certificate goes onto the private key; libssh checks that both are the same key.
  auto type = blob_type_name(options_.certificate);
  if (!type) return refuse("upstream_certificate_invalid", "the certificate blob is malformed");
  ssh_key cert_raw = nullptr;
  std::string cert_b64 = ssh::base64_encode(options_.certificate);
  if (ssh_pki_import_cert_base64(cert_b64.c_str(), ssh_key_type_from_name(type->c_str()),
                                 &cert_raw) != SSH_OK) {
    return refuse("upstream_certificate_invalid",
                  fmt::format("libssh cannot read the certificate (type {})", *type));
  }
  SshKeyPtr cert(cert_raw);
  // libssh 0.10 attaches any certificate to any key: the match is checked here.
  auto parsed = ssh::parse_certificate(options_.certificate);
  ssh_key pub_raw = nullptr;
  if (ssh_pki_export_privkey_to_pubkey(options_.key.get(), &pub_raw) != SSH_OK) {
    return refuse("upstream_certificate_invalid", "cannot read the public half of the key");
  }
  SshKeyPtr pub(pub_raw);
  auto pub_blob = key_blob(pub.get());
  if (!parsed || !pub_blob || parsed->key.blob != *pub_blob) {
    return refuse("upstream_certificate_invalid", "the certificate is not for the private key");
  }
  if (ssh_pki_copy_cert_to_privkey(cert.get(), options_.key.get()) != SSH_OK) {
    return refuse("upstream_certificate_invalid", "the certificate is not for the private key");
  }

  session_ = ssh_new();
  if (session_ == nullptr) return refuse("internal_error", "ssh_new failed");
  // Nothing of the gateway's account is read: no ssh_config, no known_hosts (we pin the host
  // key ourselves), no identity files or agent (the key is given), no $HOME lookups (the ssh
  // directory is set, so "~" is never expanded).
  bool no = false;
  socket_t sock = fd;
  int verbosity = SSH_LOG_NOLOG;
  if (ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_SSH_DIR, "/dev/null") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_IDENTITY_AGENT, "/dev/null") != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_USER, options_.user.c_str()) != SSH_OK ||
      // The same algorithms as the gateway accepts from clients (no SHA-1, no CBC), the
      // cipher cheapest on this CPU first: the gateway decrypts every byte it relays.
      ssh_options_set(session_, SSH_OPTIONS_KEY_EXCHANGE, kKexAlgorithms) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_CIPHERS_C_S, upstream_ciphers()) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_CIPHERS_S_C, upstream_ciphers()) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_HMAC_C_S, kMacs) != SSH_OK ||
      ssh_options_set(session_, SSH_OPTIONS_HMAC_S_C, kMacs) != SSH_OK) {
    return refuse("internal_error",
                  fmt::format("libssh refused a client option: {}", ssh_get_error(session_)));
  }
  if (!options_.host_key.pinned_blob.empty()) {
    auto pinned_type = blob_type_name(options_.host_key.pinned_blob);
    if (!pinned_type) return refuse("internal_error", "the pinned host key blob is malformed");
    std::string algs = host_key_algorithms(*pinned_type);
    if (ssh_options_set(session_, SSH_OPTIONS_HOSTKEYS, algs.c_str()) != SSH_OK) {
      return refuse("internal_error",
                    fmt::format("libssh does not support host keys of type {}", *pinned_type));
    }
  } else if (!options_.host_key.judge) {
    return refuse("internal_error", "no host key check for the target");
  }

  ssh_set_blocking(session_, 0);
  session_cb_.userdata = this;
  session_cb_.channel_open_request_x11_function = &UpstreamSsh::on_x11_open;
  session_cb_.channel_open_request_auth_agent_function = &UpstreamSsh::on_agent_open;
  ssh_callbacks_init(&session_cb_);
  ssh_set_callbacks(session_, &session_cb_);
  ssh_set_message_callback(session_, &UpstreamSsh::on_message, this);

  // Last, so that no refusal above frees a session holding the socket.
  if (ssh_options_set(session_, SSH_OPTIONS_FD, &sock) != SSH_OK) {
    return refuse("internal_error", "libssh refused the socket");
  }
  // From here on libssh owns the socket.
  state_ = State::kHandshake;
  deadline_ = Clock::now() + options_.handshake_timeout;
  fd_ = fd;
  owned_fd_ = fd;
  if (ssh_connect(session_) == SSH_ERROR) {
    std::string why = ssh_get_error(session_);
    fd_ = -1;
    ssh_free(session_);
    session_ = nullptr;
    state_ = State::kClosed;
    return touchgate::fail(
        "upstream_handshake_failed",
        fmt::format("cannot start SSH with target {}: {}", options_.target, why));
  }
  event_ = ssh_event_new();
  interest_ = EPOLLIN | EPOLLOUT;
  if (event_ == nullptr || ssh_event_add_session(event_, session_) != SSH_OK ||
      !watcher_.watch(fd_, interest_, this)) {
    interest_ = 0;
    release();
    state_ = State::kClosed;
    return touchgate::fail("internal_error", "cannot poll the target socket");
  }
  return {};
}

// ---- the loop ----------------------------------------------------------------------------------

void UpstreamSsh::on_events(uint32_t) {
  if (event_ == nullptr) return;
  for (int pass = 0; pass < kMaxPollPasses; ++pass) {
    // SSH_ERROR also on a mere socket EOF: the session's status says what happened.
    if (ssh_event_dopoll(event_, 0) != SSH_OK) break;
  }
  pump();
}

void UpstreamSsh::tick(Clock::time_point now) {
  if (state_ == State::kOpen && reply_deadline_ && now >= *reply_deadline_ && !ops_.empty()) {
    reply_deadline_.reset();
    set_failed("upstream_timeout",
               fmt::format("target {} did not answer the {} request within {} ms", options_.target,
                           op_name(static_cast<int>(ops_.front().kind)),
                           options_.handshake_timeout.count()));
    pump();
    return;
  }
  if (now < deadline_) return;
  switch (state_) {
    case State::kHandshake:
    case State::kAuthenticating:
      set_failed("upstream_timeout",
                 fmt::format("target {} did not complete {} within {} ms", options_.target,
                             state_ == State::kHandshake ? "the key exchange" : "authentication",
                             options_.handshake_timeout.count()));
      break;
    case State::kOpening:
      set_failed("upstream_timeout",
                 fmt::format("target {} did not open a session channel within {} ms",
                             options_.target, options_.handshake_timeout.count()));
      break;
    default:
      return;
  }
  pump();
}

void UpstreamSsh::pump() {
  if (in_pump_) return;
  in_pump_ = true;
  for (int round = 0; round < kMaxPumpRounds; ++round) {
    bool changed = advance();
    if (session_lost()) lost("the session");
    changed = deliver() || changed;
    if (!changed || state_ == State::kClosed) break;
  }
  in_pump_ = false;
  if (state_ == State::kFailed && failure_delivered_) release();
  update_interest();
}

bool UpstreamSsh::advance() {
  switch (state_) {
    case State::kHandshake: {
      int rc = ssh_connect(session_);
      if (rc == SSH_AGAIN) return false;
      if (rc != SSH_OK) {
        set_failed("upstream_handshake_failed",
                   fmt::format("key exchange with target {} failed: {}", options_.target,
                               ssh_get_error(session_)));
        return true;
      }
      if (!check_host_key()) return true;
      state_ = State::kAuthenticating;
      return true;
    }
    case State::kAuthenticating: {
      int rc = ssh_userauth_publickey(session_, options_.user.c_str(), options_.key.get());
      if (rc == SSH_AUTH_AGAIN) return false;
      if (rc == SSH_AUTH_SUCCESS) {
        state_ = State::kReady;
        ready_news_ = true;
        return true;
      }
      if (rc == SSH_AUTH_ERROR && session_lost()) {
        lost("authentication");
        return true;
      }
      set_failed(
          "upstream_auth_failed",
          fmt::format("target {} refused the gateway's certificate for user {}{}", options_.target,
                      options_.user,
                      rc == SSH_AUTH_PARTIAL ? " (it asks for further authentication)" : ""));
      return true;
    }
    case State::kOpening: {
      int rc = ssh_channel_open_session(channel_);
      if (rc == SSH_AGAIN) return false;
      if (rc != SSH_OK) {
        if (session_lost()) {
          lost("the channel open");
        } else {
          set_failed("upstream_channel_refused",
                     fmt::format("target {} refused a session channel: {}", options_.target,
                                 ssh_get_error(session_)));
        }
        return true;
      }
      state_ = State::kOpen;
      open_news_ = true;
      advance_ops();
      return true;
    }
    case State::kOpen:
      return advance_ops();
    default:
      return false;
  }
}

bool UpstreamSsh::check_host_key() {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(session_, &raw) != SSH_OK || raw == nullptr) {
    set_failed("upstream_handshake_failed",
               fmt::format("target {} presented no host key", options_.target));
    return false;
  }
  SshKeyPtr key(raw);
  auto blob = key_blob(key.get());
  if (!blob) {
    set_failed("upstream_handshake_failed",
               fmt::format("cannot read the host key of target {}", options_.target));
    return false;
  }
  PresentedHostKey presented{ssh::fingerprint_sha256(*blob), std::move(*blob)};
  HostKeyVerdict verdict;
  if (!options_.host_key.pinned_blob.empty()) {
    verdict.accepted = presented.blob == options_.host_key.pinned_blob;
    verdict.expected = ssh::fingerprint_sha256(options_.host_key.pinned_blob);
    const auto pinned_type = blob_type_name(options_.host_key.pinned_blob);
    const auto presented_type = blob_type_name(presented.blob);
    if (!verdict.accepted && pinned_type && presented_type && *pinned_type != *presented_type) {
      // The pinned type was offered first: the target has no host key of that type.
      set_failed("upstream_host_key_mismatch",
                 fmt::format("target {} has no {} host key (the pinned one is {} {}); it "
                             "presented {} {}",
                             options_.target, *pinned_type, *pinned_type, verdict.expected,
                             *presented_type, presented.fingerprint));
      return false;
    }
  } else {
    verdict = options_.host_key.judge(presented);
  }
  if (verdict.accepted) return true;
  set_failed(
      "upstream_host_key_mismatch",
      fmt::format("target {} presented host key {}, expected {}", options_.target,
                  presented.fingerprint, verdict.expected.empty() ? "another" : verdict.expected));
  return false;
}

bool UpstreamSsh::advance_ops() {
  bool changed = false;
  while (state_ == State::kOpen && !ops_.empty()) {
    if (remote_closed_) {
      // Nothing more reaches a closed channel; requests still queued are refused.
      for (const Op& op : ops_) {
        if (op.kind <= Op::Kind::kSubsystem)
          request_news_.emplace_back(op_name(static_cast<int>(op.kind)), false);
      }
      ops_.clear();
      return true;
    }
    Op& op = ops_.front();
    int rc = SSH_OK;
    bool wants_reply = op.kind <= Op::Kind::kSubsystem;
    switch (op.kind) {
      case Op::Kind::kPty:
        // libssh 0.10 sends an empty terminal-modes string (there is no API for modes).
        rc = ssh_channel_request_pty_size(channel_, op.a.c_str(), static_cast<int>(op.cols),
                                          static_cast<int>(op.rows));
        break;
      case Op::Kind::kEnv:
        rc = ssh_channel_request_env(channel_, op.a.c_str(), op.b.c_str());
        break;
      case Op::Kind::kShell:
        rc = ssh_channel_request_shell(channel_);
        break;
      case Op::Kind::kExec:
        rc = ssh_channel_request_exec(channel_, op.a.c_str());
        break;
      case Op::Kind::kSubsystem:
        rc = ssh_channel_request_subsystem(channel_, op.a.c_str());
        break;
      case Op::Kind::kWindowChange:
        rc = ssh_channel_change_pty_size(channel_, static_cast<int>(op.cols),
                                         static_cast<int>(op.rows));
        break;
      case Op::Kind::kSignal:
        rc = ssh_channel_request_send_signal(channel_, op.a.c_str());
        break;
      case Op::Kind::kEof:
        rc = eof_sent_ ? SSH_OK : ssh_channel_send_eof(channel_);
        if (rc == SSH_OK) eof_sent_ = true;
        break;
      case Op::Kind::kClose:
        // May return before CLOSE is written: call until SSH_OK.
        rc = close_sent_ ? SSH_OK : ssh_channel_close(channel_);
        if (rc == SSH_OK) eof_sent_ = close_sent_ = true;
        break;
    }
    if (rc == SSH_AGAIN) {  // sent; the answer comes with a later pass (or the deadline)
      if (wants_reply && !reply_deadline_) {
        reply_deadline_ = Clock::now() + options_.handshake_timeout;
      }
      return changed;
    }
    reply_deadline_.reset();
    if (rc == SSH_ERROR && session_lost()) {
      lost(op_name(static_cast<int>(op.kind)));
      return true;
    }
    if (wants_reply) request_news_.emplace_back(op_name(static_cast<int>(op.kind)), rc == SSH_OK);
    ops_.pop_front();
    changed = true;
  }
  return changed;
}

bool UpstreamSsh::deliver() {
  if (state_ == State::kClosed) return false;
  if (error_) {
    if (failure_delivered_) return false;
    failure_delivered_ = true;
    listener_.upstream_failed(*error_);
    return true;
  }
  bool changed = false;
  if (ready_news_) {
    ready_news_ = false;
    changed = true;
    listener_.upstream_ready();
    if (state_ == State::kClosed || error_) return true;
  }
  if (open_news_) {
    open_news_ = false;
    changed = true;
    listener_.upstream_channel_open();
    if (state_ == State::kClosed || error_) return true;
  }
  while (!request_news_.empty()) {
    auto news = std::move(request_news_.front());
    request_news_.erase(request_news_.begin());
    changed = true;
    listener_.upstream_request_done(news.first, news.second);
    if (state_ == State::kClosed || error_) return true;
  }
  if (channel_ == nullptr) return changed;

  // Output, each stream as far as the owner has room; the rest stays in libssh's buffer.
  thread_local std::vector<uint8_t> chunk(kReadChunk);
  for (bool is_stderr : {false, true}) {
    size_t& avail = is_stderr ? stderr_avail_ : stdout_avail_;
    while (avail > 0 && channel_ != nullptr) {
      size_t room = std::min({listener_.upstream_room(is_stderr), avail, chunk.size()});
      if (room == 0) break;
      // The buffer is not empty, so this reads without polling.
      int n = ssh_channel_read_nonblocking(channel_, chunk.data(), static_cast<uint32_t>(room),
                                           is_stderr ? 1 : 0);
      if (n <= 0) {
        avail = 0;
        break;
      }
      avail -= std::min(avail, static_cast<size_t>(n));
      changed = true;
      listener_.upstream_data({chunk.data(), static_cast<size_t>(n)}, is_stderr);
      if (state_ == State::kClosed || error_ || channel_ == nullptr) return true;
    }
  }
  if (write_blocked_ && state_ == State::kOpen && ops_.empty() && !eof_sent_ &&
      ssh_channel_window_size(channel_) > 0 && !(ssh_get_status(session_) & SSH_WRITE_PENDING)) {
    write_blocked_ = false;
    changed = true;
    listener_.upstream_writable();
    if (state_ == State::kClosed || error_ || channel_ == nullptr) return true;
  }
  if (stdout_avail_ > 0 || stderr_avail_ > 0) return changed;
  if (exit_status_) {
    int status = *exit_status_;
    exit_status_.reset();
    changed = true;
    listener_.upstream_exit_status(status);
    if (state_ == State::kClosed || error_ || channel_ == nullptr) return true;
  }
  if (exit_signal_) {
    auto [signal, core, message] = std::move(*exit_signal_);
    exit_signal_.reset();
    changed = true;
    listener_.upstream_exit_signal(signal, core, message);
    if (state_ == State::kClosed || error_ || channel_ == nullptr) return true;
  }
  if (remote_eof_ && !eof_delivered_) {
    eof_delivered_ = true;
    changed = true;
    listener_.upstream_eof();
    if (state_ == State::kClosed || error_ || channel_ == nullptr) return true;
  }
  if (remote_closed_ && ops_.empty()) {
    if (!close_sent_) {
      int rc = ssh_channel_close(channel_);
      if (rc == SSH_AGAIN) return changed;
      close_sent_ = true;
    }
    release_channel();
    state_ = State::kReady;
    listener_.upstream_channel_closed();
    return true;
  }
  return changed;
}

// ---- requests and data -------------------------------------------------------------------------

bool UpstreamSsh::open_session() {
  if (state_ != State::kReady || channel_ != nullptr) return false;
  channel_ = ssh_channel_new(session_);
  if (channel_ == nullptr) {
    set_failed("internal_error", "cannot create a channel");
    return false;
  }
  channel_cb_ = {};
  channel_cb_.userdata = this;
  channel_cb_.channel_data_function = &UpstreamSsh::on_data;
  channel_cb_.channel_eof_function = &UpstreamSsh::on_eof;
  channel_cb_.channel_close_function = &UpstreamSsh::on_close;
  channel_cb_.channel_exit_status_function = &UpstreamSsh::on_exit_status;
  channel_cb_.channel_exit_signal_function = &UpstreamSsh::on_exit_signal;
  ssh_callbacks_init(&channel_cb_);
  ssh_set_channel_callbacks(channel_, &channel_cb_);
  state_ = State::kOpening;
  deadline_ = Clock::now() + options_.handshake_timeout;
  advance();
  return true;
}

void UpstreamSsh::enqueue(Op op) {
  if (state_ != State::kOpening && state_ != State::kOpen) return;
  ops_.push_back(std::move(op));
  if (state_ == State::kOpen) advance_ops();
}

void UpstreamSsh::request_pty(const std::string& term, uint32_t cols, uint32_t rows) {
  enqueue({Op::Kind::kPty, term, {}, cols, rows});
}
void UpstreamSsh::request_env(const std::string& name, const std::string& value) {
  enqueue({Op::Kind::kEnv, name, value});
}
void UpstreamSsh::request_shell() {
  enqueue({Op::Kind::kShell, {}, {}});
}
void UpstreamSsh::request_exec(const std::string& command) {
  enqueue({Op::Kind::kExec, command, {}});
}
void UpstreamSsh::request_subsystem(const std::string& name) {
  enqueue({Op::Kind::kSubsystem, name, {}});
}
void UpstreamSsh::window_change(uint32_t cols, uint32_t rows) {
  enqueue({Op::Kind::kWindowChange, {}, {}, cols, rows});
}
void UpstreamSsh::send_signal(const std::string& name) {
  enqueue({Op::Kind::kSignal, name, {}});
}
void UpstreamSsh::send_eof() {
  enqueue({Op::Kind::kEof, {}, {}});
}
void UpstreamSsh::close_channel() {
  enqueue({Op::Kind::kClose, {}, {}});
}

size_t UpstreamSsh::write(std::span<const uint8_t> data) {
  if (data.empty()) return 0;
  if (state_ != State::kOpen || !ops_.empty() || eof_sent_ || remote_closed_ ||
      (ssh_get_status(session_) & SSH_WRITE_PENDING)) {
    write_blocked_ = state_ == State::kOpening || state_ == State::kOpen;
    return 0;
  }
  size_t n = std::min<size_t>({data.size(), ssh_channel_window_size(channel_), kMaxWrite});
  if (n == 0) {
    write_blocked_ = true;
    return 0;
  }
  int rc = ssh_channel_write(channel_, data.data(), static_cast<uint32_t>(n));
  if (rc < 0) {
    if (session_lost()) lost("a write");
    write_blocked_ = true;
    return 0;
  }
  size_t taken = static_cast<size_t>(rc);
  if (taken < data.size()) write_blocked_ = true;
  return taken;
}

void UpstreamSsh::disconnect(const std::string& reason) {
  if (state_ == State::kClosed) return;
  if (session_ != nullptr) {
    log_event(Level::kInfo, "upstream_disconnect",
              {{"target", options_.target}, {"user", options_.user}, {"reason", reason}});
  }
  release();
  state_ = State::kClosed;
}

// ---- libssh callbacks (inside a poll pass: flags only) -----------------------------------------

int UpstreamSsh::on_data(ssh_session, ssh_channel, void*, uint32_t len, int is_stderr, void* self) {
  // libssh passes its whole buffer for the stream; we take nothing here and read it from
  // deliver() as the owner has room. Held data counts against the window we advertise.
  auto* u = static_cast<UpstreamSsh*>(self);
  (is_stderr ? u->stderr_avail_ : u->stdout_avail_) = len;
  return 0;
}

void UpstreamSsh::on_eof(ssh_session, ssh_channel, void* self) {
  static_cast<UpstreamSsh*>(self)->remote_eof_ = true;
}

void UpstreamSsh::on_close(ssh_session, ssh_channel, void* self) {
  auto* u = static_cast<UpstreamSsh*>(self);
  u->remote_closed_ = true;
  u->remote_eof_ = true;
}

void UpstreamSsh::on_exit_status(ssh_session, ssh_channel, int status, void* self) {
  static_cast<UpstreamSsh*>(self)->exit_status_ = status;
}

void UpstreamSsh::on_exit_signal(ssh_session, ssh_channel, const char* signal, int core,
                                 const char* errmsg, const char*, void* self) {
  static_cast<UpstreamSsh*>(self)->exit_signal_.emplace(signal != nullptr ? signal : "", core != 0,
                                                        errmsg != nullptr ? errmsg : "");
}

ssh_channel UpstreamSsh::on_x11_open(ssh_session, const char*, int, void* self) {
  auto* u = static_cast<UpstreamSsh*>(self);
  log_event(Level::kWarn, "upstream_channel_refused",
            {{"target", u->options_.target}, {"type", "x11"}});
  return nullptr;  // libssh answers OPEN_FAILURE
}

ssh_channel UpstreamSsh::on_agent_open(ssh_session, void* self) {
  auto* u = static_cast<UpstreamSsh*>(self);
  log_event(Level::kWarn, "upstream_channel_refused",
            {{"target", u->options_.target}, {"type", "auth-agent@openssh.com"}});
  return nullptr;
}

int UpstreamSsh::on_message(ssh_session, ssh_message msg, void* self) {
  // Every message that reaches us here is something the target asks of the gateway: channel
  // opens (forwarded-tcpip, ...), global requests. All are refused (1: libssh's default reply,
  // OPEN_FAILURE "administratively prohibited" or REQUEST_FAILURE).
  if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN) {
    auto* u = static_cast<UpstreamSsh*>(self);
    const char* type = "other";
    switch (ssh_message_subtype(msg)) {
      case SSH_CHANNEL_SESSION:
        type = "session";
        break;
      case SSH_CHANNEL_DIRECT_TCPIP:
        type = "direct-tcpip";
        break;
      case SSH_CHANNEL_FORWARDED_TCPIP:
        type = "forwarded-tcpip";
        break;
      case SSH_CHANNEL_X11:
        type = "x11";
        break;
      case SSH_CHANNEL_AUTH_AGENT:
        type = "auth-agent@openssh.com";
        break;
      default:
        break;
    }
    log_event(Level::kWarn, "upstream_channel_refused",
              {{"target", u->options_.target}, {"type", type}});
  }
  return 1;
}

// ---- failure and teardown ----------------------------------------------------------------------

void UpstreamSsh::set_failed(std::string code, std::string message) {
  if (error_ || state_ == State::kClosed) return;
  log_event(
      Level::kInfo, "upstream_failed",
      {{"target", options_.target}, {"user", options_.user}, {"code", code}, {"error", message}});
  error_ = Error{std::move(code), std::move(message)};
  state_ = State::kFailed;
}

bool UpstreamSsh::session_lost() {
  if (session_ == nullptr || state_ == State::kFailed || state_ == State::kClosed) return false;
  if (state_ == State::kHandshake) return false;  // ssh_connect reports it
  return (ssh_get_status(session_) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
         !ssh_is_connected(session_);
}

void UpstreamSsh::lost(const char* during) {
  if (!session_lost()) return;
  const char* err = ssh_get_error(session_);
  set_failed(
      "upstream_connection_lost",
      fmt::format("the connection to target {} was lost during {}{}{}", options_.target, during,
                  err != nullptr && *err != '\0' ? ": " : "", err != nullptr ? err : ""));
}

void UpstreamSsh::release_channel() {
  if (channel_ != nullptr) {
    // libssh keeps the channel until the target's CLOSE; what still arrives is dropped.
    retire_channel(channel_, &channel_cb_, !close_sent_);
    channel_ = nullptr;
  }
  ops_.clear();
  reply_deadline_.reset();
  stdout_avail_ = stderr_avail_ = 0;
  write_blocked_ = false;
  exit_status_.reset();
  exit_signal_.reset();
  remote_eof_ = eof_delivered_ = remote_closed_ = eof_sent_ = close_sent_ = false;
}

void UpstreamSsh::release() {
  if (fd_ >= 0 && interest_ != 0) watcher_.unwatch(fd_);
  interest_ = 0;
  fd_ = -1;
  if (session_ == nullptr) return;
  release_channel();
  if (event_ != nullptr) {
    ssh_event_remove_session(event_, session_);
    ssh_event_free(event_);
    event_ = nullptr;
  }
  // libssh 0.10 can leave a socket given with SSH_OPTIONS_FD open (measured: the target's
  // connection outlived the session): close it ourselves when it is still the same socket
  // (same inode: a descriptor number reused meanwhile is not ours).
  const int sock = owned_fd_;
  struct stat before {};
  const bool known = sock >= 0 && ::fstat(sock, &before) == 0;
  ssh_disconnect(session_);  // sends DISCONNECT if it can
  ssh_free(session_);
  session_ = nullptr;
  struct stat after {};
  if (known && ::fstat(sock, &after) == 0 && after.st_ino == before.st_ino &&
      after.st_dev == before.st_dev) {
    ::close(sock);
  }
  owned_fd_ = -1;
}

void UpstreamSsh::update_interest() {
  if (fd_ < 0 || session_ == nullptr || interest_ == 0) return;
  uint32_t want = EPOLLIN;
  if (ssh_get_status(session_) & SSH_WRITE_PENDING) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    watcher_.rewatch(fd_, interest_, this);
  }
}

}  // namespace touchgate::gateway
