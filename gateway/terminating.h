// Terminating mode: a session channel of the client (`ssh -t gw db1 [COMMAND]`, `sftp
// alice+db1@gw`) served by the gateway logging in to the target itself, with a certificate it
// mints for that login, and relaying shell, exec or sftp — recorded. Trust boundary: the client's
// bytes and requests, and everything the target sends, are relayed and recorded, never
// interpreted; the user's own keys and agent never reach the target.
//
// States: kAuthorizing (the policy for the action, then the second factor) → kRecording (the
// allowing decision is being made durable; then the recording is created, its header on disk,
// before anything reaches the target) → kConnecting (TCP) → kMinting (the CA signs a
// certificate for a fresh key, on the Offload thread) → kUpstream (key exchange, host key check,
// authentication, channel open, the client's pty/env/command replayed) → kRelaying →
// kClosing → kDone. A failure before kRelaying is told to the client on stderr with its code,
// followed by exit status 255 and the channel's close.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/recording.h"
#include "gateway/mfa_dialog.h"
#include "gateway/pollable.h"
#include "gateway/upstream.h"
#include "gateway/upstream_ssh.h"
#include "policy/config.h"
#include "policy/factor.h"
#include "ssh/sftp_log.h"

namespace touchgate::gateway {

class Connection;

// What the client asked for on its session channel before the shell, exec or subsystem request.
struct TerminatingRequest {
  std::string target;          // the configured target's name
  policy::Action action = policy::Action::kShell;
  std::string command;         // exec: the remote command (without the target word)
  std::string subsystem;       // sftp
  struct Pty {
    std::string term;
    uint32_t cols = 80, rows = 24;
  };
  std::optional<Pty> pty;
  std::vector<std::pair<std::string, std::string>> env;  // already filtered by the allowlist
};

class TerminatingSession : public Pollable, public Watcher, public UpstreamSshListener {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State {
    kAuthorizing,
    kRecording,
    kConnecting,
    kMinting,
    kUpstream,
    kRelaying,
    kClosing,
    kDone
  };
  // Client bytes we hold that the target has not taken yet: more than libssh's largest channel
  // window (1.28 MB), so that all libssh holds can always be moved here at once.
  static constexpr size_t kPendingCap = 2u << 20;

  TerminatingSession(Connection& conn, uint64_t id, ssh_channel channel, TerminatingRequest req);
  ~TerminatingSession() override;
  TerminatingSession(const TerminatingSession&) = delete;
  TerminatingSession& operator=(const TerminatingSession&) = delete;

  // begin decides the policy for the action and asks for the touch (or refuses).
  void begin();
  // touch_result receives the second factor's outcome (Connection::deliver_touch).
  void touch_result(const Result<TouchProof>& result);
  // request answers a channel request of the client (window-change; everything else refused).
  int request(ssh_message msg);
  void pump();
  void tick(Clock::time_point now);
  // close_by_policy ends the session because the policy no longer allows it.
  void close_by_policy(const std::string& code, const std::string& message) {
    fail(code, message);
  }
  // limit_session / limit_window apply a rule's max_session (counted from the channel's open)
  // and time window; the earlier deadline wins over one already set.
  void limit_session(std::chrono::seconds max_session, std::string rule);
  void limit_window(std::chrono::system_clock::time_point closes, std::string rule,
                    std::string window);
  // abandon detaches from libssh without sending anything (connection teardown).
  void abandon();
  // closing_because names why the whole connection ends (the disconnect's code), for the
  // channel's own close record, unless the channel already has a reason of its own.
  void closing_because(const std::string& code) {
    if (close_reason_.empty()) close_reason_ = code;
  }

  bool done() const { return state_ == State::kDone; }
  bool live() const { return state_ != State::kDone && state_ != State::kClosing; }
  bool waiting_for_touch() const { return state_ == State::kAuthorizing; }
  // touch_factors: the policy::Factor bits the session's touch proved (0 before the touch).
  uint8_t touch_factors() const { return touch_factors_; }
  uint64_t id() const { return id_; }
  ssh_channel channel() const { return channel_; }
  const TerminatingRequest& request_info() const { return req_; }
  const std::string& address() const { return address_; }
  // The rule that allowed the session ("" until its touch was verified and it was granted).
  const std::string& rule() const { return rule_; }
  Clock::time_point opened_at() const { return opened_at_; }
  uint64_t bytes_up() const { return bytes_up_; }
  uint64_t bytes_down() const { return bytes_down_; }

  // Pollable: the target socket while connecting, then libssh's (UpstreamSsh watches through us).
  void on_events(uint32_t events) override;
  // Watcher (for UpstreamSsh).
  bool watch(int fd, uint32_t events, Pollable* p) override;
  bool rewatch(int fd, uint32_t events, Pollable* p) override;
  void unwatch(int fd) override;

  // UpstreamSshListener.
  void upstream_ready() override;
  void upstream_failed(const Error& error) override;
  void upstream_channel_open() override;
  void upstream_request_done(const std::string& request, bool accepted) override;
  size_t upstream_room(bool is_stderr) override;
  void upstream_data(std::span<const uint8_t> data, bool is_stderr) override;
  void upstream_writable() override;
  void upstream_exit_status(int status) override;
  void upstream_exit_signal(const std::string& signal, bool core_dumped,
                            const std::string& message) override;
  void upstream_eof() override;
  void upstream_channel_closed() override;

 private:
  static int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static void on_eof(ssh_session, ssh_channel, void* self);
  static void on_close(ssh_session, ssh_channel, void* self);
  static void on_signal(ssh_session, ssh_channel, const char* signal, void* self);

  int take_client_data(const uint8_t* data, uint32_t len);
  void drain_client();
  void flush_pending();
  size_t pending_size() const;
  void granted();
  void connect_next();
  void connected();
  void minted(Result<struct UpstreamCredentials> creds);
  HostKeyVerdict judge_host_key(const PresentedHostKey& key);
  // refuse_unknown_target ends a session whose target is not configured: the policy's
  // target_unknown, audited as a policy_decision.
  void refuse_unknown_target();
  // audit_denied writes the policy_decision (outcome deny) of a refusal before the touch.
  void audit_denied(const std::string& target, const std::string& rule, const std::string& code);
  // start_recording creates the recording (shell and exec) and writes its header; false (the
  // session failed with recording_unavailable) when it cannot be made.
  bool start_recording();
  // discard_recording removes a recording into which nothing was recorded because no request
  // reached the target (the session failed before).
  void discard_recording();
  void record_output(std::span<const uint8_t> data);
  // recording_checked acts on a recording call's result: a failure ends the session
  // (recording_failed), the cap ends it when [recording] on_cap = "end".
  void recording_checked(const Result<audit::Recording::Status>& st);
  // client_taken: bytes of the client the target took (recorded, and for sftp logged).
  void client_taken(std::span<const uint8_t> data);
  // audit_sftp_ops writes the sftp operations completed so far (sftp sessions).
  void audit_sftp_ops();
  // fail ends the session with a reason: before relaying, the client reads it on stderr.
  void fail(const std::string& code, const std::string& message);
  void finish();
  void audit_closed();
  std::chrono::microseconds elapsed() const;

  Connection& conn_;
  uint64_t id_;
  ssh_channel channel_;
  ssh_channel_callbacks_struct cb_{};
  TerminatingRequest req_;
  State state_ = State::kAuthorizing;
  policy::Target target_;
  std::string remote_user_;
  bool record_input_ = false;
  uint8_t touch_factors_ = 0;
  std::string touch_key_fp_;
  std::string rule_;  // the rule that allowed it (for `touchgate sessions list`)
  // The rules' limits: max_session (from the channel's open) and a time window, each with the
  // rule that set it.
  std::optional<Clock::time_point> session_deadline_, window_deadline_;
  std::chrono::seconds max_session_{0};
  std::string session_rule_, window_rule_, window_;

  int fd_ = -1;  // the target socket until UpstreamSsh owns it
  uint32_t interest_ = 0;
  Pollable* upstream_pollable_ = nullptr;
  std::vector<SocketAddress> candidates_;
  Clock::time_point connect_deadline_{};
  std::string address_;
  std::unique_ptr<UpstreamSsh> upstream_;
  uint64_t cert_serial_ = 0;
  std::string cert_key_id_;

  std::unique_ptr<audit::Recording> recording_;
  std::unique_ptr<ssh::SftpLog> sftp_;  // sftp sessions: the operation log
  std::string recording_path_;
  Clock::time_point opened_at_;
  Clock::time_point record_start_{};  // time 0 of the recording (its header's timestamp)
  bool requests_sent_ = false;        // the pty/env/shell/exec/subsystem requests went out

  std::vector<uint8_t> pending_;  // client bytes taken from libssh, not yet taken by the target
  size_t pending_off_ = 0;        // pending_[0, pending_off_) was taken already
  uint32_t channel_buffered_ = 0;
  bool client_eof_ = false, client_closed_ = false;
  bool upstream_eof_ = false, eof_sent_ = false;
  bool upstream_closed_ = false;
  bool exit_sent_ = false;
  uint64_t bytes_up_ = 0, bytes_down_ = 0;
  std::string close_reason_;
  std::string close_message_;  // why the gateway ended the session (fail), for channel_closed
  std::string error_text_;     // told to the client on stderr before the close
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool recording_failed_ = false;             // recording_failed was reported (once)
  Clock::time_point next_recording_flush_{};  // tick() flushes the recording at most this often
};

}  // namespace touchgate::gateway
