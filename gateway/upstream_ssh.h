// UpstreamSsh: the gateway as an SSH client of a target, driven from a worker's epoll loop (the
// terminating mode logs in to the target itself). Trust boundary: everything the target sends —
// its host key, its answers, its channel data and exit status — is untrusted; the host key is
// pinned before anything of ours (the user name, the certificate) is sent.
//
// One client ssh_session on a socket the caller connected, with its own ssh_event (as every
// server-side connection has). States:
//   kHandshake (ssh_connect, non-blocking) → host key check → kAuthenticating (publickey with the
//   certificate, non-blocking) → kReady → open_session() → kOpening → kOpen (requests, data)
//   → the channel closes → kReady again;  any failure → kFailed;  disconnect() → kClosed.
// Nothing is ever forwarded towards the gateway: no agent, no X11, no ports are requested, and a
// channel the target tries to open (auth-agent, x11, forwarded-tcpip, anything) is refused.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gateway/pollable.h"
#include "gateway/worker.h"
#include "ssh/error.h"

namespace touchgate::gateway {

struct SshKeyDeleter {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using SshKeyPtr = std::unique_ptr<ssh_key_struct, SshKeyDeleter>;

// Watcher is how an UpstreamSsh asks its loop to watch its socket (a Worker on the gateway, a
// small epoll loop in tests).
class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual bool watch(int fd, uint32_t events, Pollable* p) = 0;
  virtual bool rewatch(int fd, uint32_t events, Pollable* p) = 0;
  virtual void unwatch(int fd) = 0;
};

// WorkerWatcher watches through a Worker (worker thread only).
class WorkerWatcher : public Watcher {
 public:
  explicit WorkerWatcher(Worker& worker) : worker_(worker) {}
  bool watch(int fd, uint32_t events, Pollable* p) override { return worker_.watch(fd, events, p); }
  bool rewatch(int fd, uint32_t events, Pollable* p) override {
    return worker_.rewatch(fd, events, p);
  }
  void unwatch(int fd) override { worker_.unwatch(fd); }

 private:
  Worker& worker_;
};

// The host key the target presented, after libssh verified its signature over the key exchange.
struct PresentedHostKey {
  std::string fingerprint;    // "SHA256:..."
  std::vector<uint8_t> blob;  // the public key blob
};

// A judge's answer: accepted, or refused naming what it expected (fingerprints, for the message).
struct HostKeyVerdict {
  bool accepted = false;
  std::string expected;
};

// HostKeyCheck: either an exact public key blob to pin (a plain key, not a certificate; the key
// exchange then offers only that key's algorithms), or a judge called once per session.
struct HostKeyCheck {
  std::vector<uint8_t> pinned_blob;
  std::function<HostKeyVerdict(const PresentedHostKey&)> judge;
};

struct UpstreamSshOptions {
  std::string target;                // the target's name, for messages ("db1")
  std::string user;                  // the remote user to log in as
  SshKeyPtr key;                     // the private key
  std::vector<uint8_t> certificate;  // the OpenSSH certificate blob of key, presented in auth
  HostKeyCheck host_key;
  // Deadline for key exchange + authentication, again for each channel open, and for the answer
  // to each request that wants one.
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(15)};
};

// What the owner learns, always after a poll pass and never from inside a libssh callback. The
// listener may call UpstreamSsh's methods from these callbacks, but must not destroy it there
// (destroy between epoll batches, as Worker::reap does).
class UpstreamSshListener {
 public:
  virtual ~UpstreamSshListener() = default;
  // Authenticated: open_session() may be called.
  virtual void upstream_ready() = 0;
  // Terminal: the session is gone (code: upstream_timeout, upstream_host_key_mismatch,
  // upstream_auth_failed, upstream_handshake_failed, upstream_channel_refused,
  // upstream_connection_lost, upstream_certificate_invalid, internal_error).
  virtual void upstream_failed(const Error& error) = 0;
  // The session channel is open: requests may be queued.
  virtual void upstream_channel_open() = 0;
  // The target answered a request that wants a reply (pty-req, env, shell, exec, subsystem).
  virtual void upstream_request_done(const std::string& request, bool accepted) = 0;
  // How many bytes of target output (stdout or stderr) the owner can take now; 0 keeps them in
  // libssh's channel buffer, where they keep the channel window shut.
  virtual size_t upstream_room(bool is_stderr) = 0;
  // Target output, at most upstream_room(is_stderr) bytes.
  virtual void upstream_data(std::span<const uint8_t> data, bool is_stderr) = 0;
  // write() took less than offered earlier and can take more now.
  virtual void upstream_writable() {}
  // After all output: exit-status or exit-signal (if the target sent one), then EOF, then close.
  virtual void upstream_exit_status(int status) = 0;
  virtual void upstream_exit_signal(const std::string& signal, bool core_dumped,
                                    const std::string& message) = 0;
  virtual void upstream_eof() = 0;
  // The channel is closed both ways (the session stays up: kReady).
  virtual void upstream_channel_closed() = 0;
};

class UpstreamSsh : public Pollable {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State {
    kIdle,
    kHandshake,
    kAuthenticating,
    kReady,
    kOpening,
    kOpen,
    kFailed,
    kClosed
  };

  // Most bytes one write() takes (libssh's output is bounded by this while the socket is slow).
  static constexpr size_t kMaxWrite = 64 * 1024;

  UpstreamSsh(Watcher& watcher, UpstreamSshListener& listener, UpstreamSshOptions options);
  ~UpstreamSsh() override;
  UpstreamSsh(const UpstreamSsh&) = delete;
  UpstreamSsh& operator=(const UpstreamSsh&) = delete;

  // start takes ownership of fd (a connected, non-blocking TCP socket; closed by this object in
  // every case) and begins the key exchange. An error here (certificate not matching the key,
  // libssh refusing an option) is returned, not reported to the listener.
  Result<void> start(int fd);

  void on_events(uint32_t events) override;
  // pump delivers what happened since the last pass and advances queued requests. Call it after
  // using any method below outside a listener callback: those may poll libssh themselves.
  void pump();
  // tick enforces the handshake and channel-open deadlines.
  void tick(Clock::time_point now);

  // open_session opens one session channel (kReady only; false otherwise).
  bool open_session();
  // Requests, sent in order one at a time once the channel is open (ignored without a channel
  // opening or open). pty-req carries the terminal
  // type and size only: libssh 0.10 has no way to send terminal modes.
  void request_pty(const std::string& term, uint32_t cols, uint32_t rows);
  void request_env(const std::string& name, const std::string& value);
  void request_shell();
  void request_exec(const std::string& command);
  void request_subsystem(const std::string& name);
  void window_change(uint32_t cols, uint32_t rows);
  void send_signal(const std::string& name);  // without "SIG": "TERM", "INT", ...
  void send_eof();
  // close_channel sends EOF (if not yet) and CLOSE; upstream_channel_closed follows the target's.
  void close_channel();
  // write sends channel data and returns how much it took: 0 while the channel is not open,
  // requests are still queued, libssh has unsent output or the target's window is shut; never
  // more than the window or kMaxWrite. Hold the rest and offer it again on upstream_writable.
  size_t write(std::span<const uint8_t> data);
  // disconnect ends the session now (no listener call follows).
  void disconnect(const std::string& reason);

  State state() const { return state_; }
  // Target output libssh holds for us (bounded by the channel window we advertise).
  size_t buffered() const { return stdout_avail_ + stderr_avail_; }
  const std::optional<Error>& error() const { return error_; }

 private:
  struct Op {
    enum class Kind { kPty, kEnv, kShell, kExec, kSubsystem, kWindowChange, kSignal, kEof, kClose };
    Kind kind;
    std::string a, b;
    uint32_t cols = 0, rows = 0;
  };

  static int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static void on_eof(ssh_session, ssh_channel, void* self);
  static void on_close(ssh_session, ssh_channel, void* self);
  static void on_exit_status(ssh_session, ssh_channel, int status, void* self);
  static void on_exit_signal(ssh_session, ssh_channel, const char* signal, int core,
                             const char* errmsg, const char* lang, void* self);
  static ssh_channel on_x11_open(ssh_session, const char* origin, int port, void* self);
  static ssh_channel on_agent_open(ssh_session, void* self);
  static int on_message(ssh_session, ssh_message msg, void* self);

  void enqueue(Op op);
  // advance runs the non-blocking step of the current state; true if something changed.
  bool advance();
  bool advance_ops();
  bool check_host_key();
  bool deliver();
  void set_failed(std::string code, std::string message);
  bool session_lost();
  void lost(const char* during);
  void release_channel();
  void release();
  void update_interest();

  Watcher& watcher_;
  UpstreamSshListener& listener_;
  UpstreamSshOptions options_;
  State state_ = State::kIdle;
  ssh_session session_ = nullptr;
  ssh_event event_ = nullptr;
  ssh_channel channel_ = nullptr;
  ssh_callbacks_struct session_cb_{};
  ssh_channel_callbacks_struct channel_cb_{};
  int fd_ = -1;
  int owned_fd_ = -1;  // the socket given to libssh, closed by release() if libssh did not
  uint32_t interest_ = 0;
  Clock::time_point deadline_{};
  // reply_deadline_: when the request at the head of ops_ (one that wants a reply: pty-req,
  // env, shell, exec, subsystem) must have its answer; unset while none is waiting.
  std::optional<Clock::time_point> reply_deadline_;
  std::deque<Op> ops_;

  // News for the listener, set by callbacks and steps, cleared by deliver().
  bool ready_news_ = false;
  bool open_news_ = false;
  std::vector<std::pair<std::string, bool>> request_news_;
  size_t stdout_avail_ = 0, stderr_avail_ = 0;
  bool write_blocked_ = false;
  std::optional<int> exit_status_;
  std::optional<std::tuple<std::string, bool, std::string>> exit_signal_;
  bool remote_eof_ = false, eof_delivered_ = false;
  bool remote_closed_ = false;
  bool eof_sent_ = false, close_sent_ = false;
  std::optional<Error> error_;
  bool failure_delivered_ = false;
  bool in_pump_ = false;
};

}  // namespace touchgate::gateway
