// A session channel on the gateway itself (`ssh -A gw [command]`): a short help text, `whoami`
// (the identity from the certificate and the enrolled keys) and `mfa-test` (one touch, reported).
// Trust boundary: channel requests come from an authenticated client; commands are matched
// exactly against a fixed list, nothing is executed.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <optional>
#include <string>
#include <vector>

#include "gateway/mfa_dialog.h"
#include "gateway/terminating.h"
#include "ssh/error.h"
#include "store/store.h"

namespace touchgate::gateway {

class Connection;

class SessionChannel {
 public:
  SessionChannel(Connection& conn, uint64_t id, ssh_channel channel);
  ~SessionChannel();
  SessionChannel(const SessionChannel&) = delete;
  SessionChannel& operator=(const SessionChannel&) = delete;

  // request answers a channel request from the message callback (1: default refusal, 0: done).
  int request(ssh_message msg);
  // pump runs a requested command and closes the channel once its output is out (after a poll).
  void pump();
  // touch_result receives the outcome of the touch `mfa-test` asked for.
  void touch_result(const Result<TouchProof>& result);
  void keys_result(Result<std::vector<store::EnrolledKey>> keys);
  void abandon();

  bool done() const { return state_ == State::kDone; }
  bool live() const { return state_ != State::kDone; }
  uint64_t id() const { return id_; }
  ssh_channel channel() const { return channel_; }

 private:
  enum class State { kWaitingCommand, kRunning, kWaitingResult, kDone };
  static void on_close(ssh_session, ssh_channel, void* self);
  static int on_data(ssh_session, ssh_channel, void*, uint32_t len, int, void*);

  void run();
  void finish(const std::string& out, const std::string& err, int status);
  std::string nl(const std::string& text) const;
  // hand_over gives the channel to terminating mode (the gateway logs in to `target`).
  int hand_over(ssh_message msg, const std::string& target, policy::Action action,
                const std::string& command, const std::string& subsystem);
  // help_text: who the user is, the targets open to them now, and how to reach them.
  std::string help_text();

  Connection& conn_;
  uint64_t id_;
  ssh_channel channel_;
  ssh_channel_callbacks_struct cb_{};
  State state_ = State::kWaitingCommand;
  std::optional<std::string> command_;  // set by shell ("") or exec
  bool pty_ = false;
  std::optional<TerminatingRequest::Pty> pty_info_;
  std::vector<std::pair<std::string, std::string>> env_;  // allowed by [terminating] env
  bool client_closed_ = false;
};

}  // namespace touchgate::gateway
