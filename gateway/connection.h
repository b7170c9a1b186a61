// One client connection: SSH handshake, certificate authentication, channel opens, and the
// channels' lifetimes. Trust boundary: everything here reacts to a remote, unauthenticated peer.
//
// Flow: accept → key exchange → publickey auth (certificates only, validated by
// ssh::validate_certificate) → direct-tcpip opens → Forward (authorize → connect → relay).
// Every refusal ends in refuse(): a log line, and either a channel-level refusal or, when the
// client would otherwise not see the reason, a disconnect carrying "touchgate: <why> (<code>)".
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit/record.h"
#include "gateway/control_protocol.h"
#include "gateway/mfa_dialog.h"
#include "gateway/pollable.h"
#include "gateway/runtime.h"
#include "gateway/upstream.h"
#include "gateway/worker.h"
#include "ssh/validate.h"

namespace touchgate::gateway {

class Forward;
class SessionChannel;
class TerminatingSession;
struct TerminatingRequest;

class Connection : public Pollable {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(Worker& worker, const Accepted& accepted);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // start sets up callbacks and the key exchange; false if the session is already dead.
  bool start();
  void on_events(uint32_t events) override;
  // tick enforces time limits (login grace time); called a few times a second.
  void tick(Clock::time_point now);
  // begin_drain: the gateway is shutting down. Unauthenticated clients are dropped now.
  void begin_drain();
  // shutdown_now disconnects with "gateway shutting down".
  void shutdown_now();
  // reap frees finished channels; finished() is true once the connection can be destroyed.
  void reap();
  bool finished() const { return state_ == State::kClosed; }

  // For Forward (worker thread only).
  Worker& worker() { return worker_; }
  ssh_session session() { return session_; }
  uint64_t id() const { return id_; }
  // audit_id is the connection's id in the audit log: "<instance>-<id>".
  const std::string& audit_id() const { return audit_id_; }
  // audit_record starts a record of this connection: event, conn, user.
  audit::Record audit_record(std::string_view event) const;
  // alive expires when the connection is torn down (for answers from other threads).
  std::weak_ptr<int> alive() const { return alive_; }
  const std::string& login() const { return login_; }
  const std::string& peer() const { return peer_; }
  const policy::Config& config() const { return *snap_.config; }
  // certificate is the verified first factor (authenticated connections only).
  const ssh::VerifiedCertificate& certificate() const { return *cert_; }

  // request_touch queues channel `channel_id` for the second factor. With reuse, a touch of this
  // connection younger than [mfa] max_age is enough; else a new challenge runs. The answer comes
  // through Forward::authorized / Forward::refuse or SessionChannel::touch_result. One challenge
  // runs at a time per connection.
  // need: what the deciding rule accepts (factors, freshness); the default accepts any factor.
  struct TouchNeed {
    uint8_t factors = 0;             // policy::Factor bits; 0 = any
    std::chrono::seconds max_age{0}; // reuse a sufficient touch this long (with reuse)
    std::string rule;                // the deciding rule, for messages
    // no_agent_hint is added to the refusal when no agent was forwarded (what this client
    // needs that "ForwardAgent yes" does not give: sftp, scp).
    std::string no_agent_hint;
  };
  void request_touch(uint64_t channel_id, std::string target, bool reuse, TouchNeed need);
  // What this user may do on one configured target now (for the gateway's help text).
  struct Reachable {
    std::string name;
    uint8_t actions = 0;  // policy::Action bits allowed now
    uint8_t factors = 0;  // what the jump or first allowed action requires
  };
  // reachable lists the configured targets on which the policy allows this user anything now.
  std::vector<Reachable> reachable();
  // start_terminating hands a session channel to terminating mode (the gateway logs in to the
  // target); the channel belongs to the new TerminatingSession from here on.
  void start_terminating(uint64_t channel_id, ssh_channel channel, TerminatingRequest req);
  // is_target: a configured target of this name exists.
  bool is_target(std::string_view name) const;
  std::string peer_ip() const { return peer_ip_.to_string(); }
  // decide: the policy's decision for `action` on host:port now, under the current snapshot.
  policy::Decision decide(const std::string& host, uint16_t port,
                          policy::Action action = policy::Action::kJump);
  // login_target is the target named in the login ("alice+db1" → "db1"), or "".
  const std::string& login_target() const { return login_target_; }
  // list_keys reads the principal's enrolled keys for a session channel's whoami.
  void list_keys(uint64_t channel_id);
  // after_mfa_event runs after an answer from the store reached this connection.
  void after_mfa_event();
  // forward_failed reports that a channel could not be served; the connection decides whether
  // the client learns the reason through a disconnect (sole channel) or a channel close.
  void forward_failed(Forward* f, const std::string& code, const std::string& message);
  // refuse_resolved: channel f asked for a name that a `hosts` glob selected, and the name
  // resolved to `addresses`. When a deny rule selects any of them (by a `hosts` CIDR, or as the
  // address of a configured target it covers), the channel is refused with that rule's decision
  // (logged and audited) and true is returned; the allow by name does not reach around a deny by
  // address.
  bool refuse_resolved(Forward& f, const std::vector<SocketAddress>& addresses);
  // after_forward_event runs after a channel reacted to its target socket: it carries out a
  // disconnect the channel asked for and recomputes the client socket's epoll interest.
  void after_forward_event();
  // note_activity records traffic for the idle timeout.
  void note_activity(Clock::time_point now) { last_activity_ = now; }

 private:
  enum class State { kHandshake, kAuthenticated, kClosing, kClosed };

  static int on_message(ssh_session, ssh_message msg, void* self);

  // auth_request answers a USERAUTH request (message callback convention: 0 = handled, 1 = send
  // libssh's default refusal). A refused certificate gets no reply at all: the disconnect that
  // follows is then the next thing the client reads, so it prints the reason.
  int auth_request(ssh_message msg);
  int message(ssh_message msg);
  int open_direct_tcpip(ssh_message msg);
  int open_session(ssh_message msg);
  int channel_request(ssh_message msg);
  // pump_mfa delivers a finished challenge and starts the next one.
  void pump_mfa();
  void deliver_touch(uint64_t channel_id, const Result<TouchProof>& result);
  // check_reuse asks the store whether the last touch's key is still active before reusing it
  // for the channel at the front of the queue.
  void check_reuse(uint64_t channel_id, std::string target, std::string rule);
  bool waiting_for_touch(uint64_t channel_id) const;
  // refuse_open declines a channel open from inside the message callback. Returns the value for
  // the callback: 1 = let libssh send the default refusal, 0 = no reply (a disconnect follows).
  // The refusal is audited as channel_refused naming `target` (what was asked for), unless
  // audited is false (a policy_decision record already says it).
  int refuse_open(const std::string& code, const std::string& message,
                  const std::string& target = "", bool audited = false);
  // audit_decision writes a policy_decision record that grants nothing (outcome deny).
  void audit_denied(uint64_t channel, const std::string& target, const policy::Decision& d,
                    const std::string& code, const std::string& factor_used);
  void after_poll();
  void update_interest();
  // settle carries out a scheduled disconnect, or else refreshes the epoll interest and hands
  // finished channels to the worker for reaping. The last step of every event.
  void settle();
  // disconnect schedules (from callbacks) or performs the closing of the connection with a reason
  // the client will print.
  void schedule_disconnect(std::string code, std::string message);
  // flush_ms bounds how long queued output may delay the worker (0: write what fits now).
  void disconnect_now(const std::string& code, const std::string& message, int flush_ms = 50);
  void teardown(const std::string& reason);
  // live_channels counts channels still in use (forwards and sessions).
  size_t live_channels() const;
  // close_if_gone tears the connection down if libssh saw the client go (true then).
  bool close_if_gone();
  // idle_for_drain: authenticated with no channel, touch or disconnect under way.
  bool idle_for_drain() const;
  // identity: who the certificate says the user is, with groups resolved under the current
  // policy (resolved again after a reload).
  const policy::ResolvedIdentity& identity();
  // auth_refused writes the audit record of a refused authentication.
  void audit_auth_refused(const std::string& login, const std::string& code,
                          const std::string& message, const std::vector<uint8_t>* blob);
  // grant_forward writes the policy decision that lets channel `channel_id` reach its target and
  // connects it once the record is durable.
  void grant_forward(Forward& f, const policy::Decision& d, const std::string& factor_used);
  // certificate_still_valid re-validates the certificate under the current trust and clock;
  // false (with a disconnect scheduled, naming the reason) when it no longer is.
  bool certificate_still_valid();

  Worker& worker_;
  ssh_session session_;
  ssh_event event_ = nullptr;
  int fd_ = -1;
  uint32_t interest_ = 0;
  uint64_t id_;
  std::string audit_id_;
  std::string peer_;
  ssh::IpAddress peer_ip_;
  Clock::time_point accepted_at_;
  Clock::time_point grace_deadline_;
  Clock::time_point last_activity_;
  State state_ = State::kHandshake;
  bool counted_unauthenticated_ = true;
  Snapshot snap_;
  ssh_server_callbacks_struct server_cb_{};

  std::string login_;         // the certificate principal the client logged in as
  std::string login_target_;  // "db1" of a login "alice+db1" (terminating mode), else ""
  std::optional<ssh::VerifiedCertificate> cert_;
  std::vector<uint8_t> cert_blob_;  // as presented, to re-validate after a reload
  std::optional<policy::ResolvedIdentity> who_;
  std::shared_ptr<const policy::Policy> who_policy_;  // the policy who_ was resolved under
  int auth_failures_ = 0;
  bool audit_accepted_ = false;  // connection_accepted was recorded (so closing is too)
  size_t channels_opened_ = 0;
  int quickack_events_ = 0;
  bool banner_sent_ = false;
  std::optional<std::pair<std::string, std::string>> pending_disconnect_;

  std::vector<std::unique_ptr<Forward>> forwards_;
  std::vector<std::unique_ptr<SessionChannel>> sessions_;
  std::vector<std::unique_ptr<TerminatingSession>> terms_;
  uint64_t next_channel_id_ = 1;

  struct TouchWait {
    uint64_t channel_id;
    std::string target;
    bool reuse;
    TouchNeed need;
  };
  std::deque<TouchWait> touch_queue_;      // channels waiting, in order
  std::unique_ptr<MfaDialog> mfa_;         // the challenge for touch_queue_.front()
  std::optional<TouchProof> last_touch_;   // for reuse within [mfa] max_age
  bool reuse_check_ = false;               // a store question about last_touch_'s key is out
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // answers from other threads check it

  // ---- administration: reload and `touchgate sessions` (bodies in connection_admin.cc) -------
 public:
  // refresh_snapshot takes the worker's current snapshot for the decisions made from now on
  // (authentication, new channels, touches); channels already running keep their target.
  void refresh_snapshot();
  // reevaluate re-checks the running channels against the current snapshot's policy and closes
  // those it now denies (after a reload with [policy] reevaluate = true).
  void reevaluate();
  // authenticated is true past authentication and before any disconnect.
  bool authenticated() const { return state_ == State::kAuthenticated; }
  // session_info describes an authenticated connection for `touchgate sessions list`.
  SessionInfo session_info() const;
  // kill_by_admin ends the connection now; the client reads "touchgate: ended by an
  // administrator (uid UID) (session_killed)".
  void kill_by_admin(uint32_t uid);
  // kill_channel_by_admin ends one open ProxyJump or terminating channel (`touchgate sessions
  // kill ID/CHANNEL`) and leaves the others; its client reads "touchgate: ended by an
  // administrator (uid UID) (channel_killed)". False when no such channel is open.
  bool kill_channel_by_admin(uint64_t channel, uint32_t uid);
};

// disconnect_text is the text a client prints after "Received disconnect from ...: 11: ".
std::string disconnect_text(const std::string& code, const std::string& message);

}  // namespace touchgate::gateway
