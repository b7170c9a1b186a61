// The second factor: one challenge through the client's forwarded agent.
// Trust boundary: every byte on the agent channel comes from the client.
//
// Steps (each non-blocking, driven from the worker's loop, never from inside a libssh callback):
//   open auth-agent@openssh.com towards the client   (refused: no agent was forwarded)
//   ∥ load the keys enrolled for the principal from the store (its own thread)
//   REQUEST_IDENTITIES → the active enrolled keys in the agent that can meet the rule, in
//     [mfa] prefer order (the candidates)
//   SIGN_REQUEST over SSHSIG data (namespace touchgate-mfa@<gateway>) of a fresh challenge, to
//     the first candidate; an agent FAILURE answer (token absent, touch cancelled, wrong PIN)
//     asks the next candidate, on the same channel; when none is left: mfa_agent_refused,
//     naming every key asked
//   → a signature: close the agent channel → fido::verify_sshsig_touch → store: counter
//     compare-and-set → a VerifiedTouch, or a refusal with its reason code. A signature that
//     arrived but does not verify is never followed by another candidate.
// Deadlines, both [mfa] touch_timeout: one from the start to the first SIGN_REQUEST, one from
// there for all the signature requests together. The agent channel is used for nothing else
// and never relayed.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit/record.h"
#include "fido/touch.h"
#include "policy/factor.h"
#include "ssh/agent.h"
#include "ssh/error.h"
#include "ssh/validate.h"
#include "store/store.h"

namespace touchgate::gateway {

class Connection;

// What a challenge binds, besides the nonce.
struct ChallengeContext {
  std::string gateway;     // [server] name
  std::string ns;          // SSHSIG namespace
  std::string connection;  // "<instance>-<connection id>"
  std::string client;      // client address:port
  std::string principal;
  const ssh::VerifiedCertificate* cert = nullptr;
  std::string target;  // "db1 127.0.0.1:22", or "mfa-test"
  // The factors the deciding rule accepts (policy::Factor bits, any one suffices); 0 = any.
  uint8_t factors = 0;
  std::string rule;    // the deciding rule, for messages
  std::string no_agent_hint{};  // added to mfa_no_agent's message (Connection::TouchNeed)
  uint64_t channel = 0;  // the channel waiting for the touch (audit records; not signed)
};

// A verified touch with its proof, as the connection keeps it.
struct TouchProof {
  fido::VerifiedTouch touch;
  store::KeyKind kind;
  std::string label;
  // touch.message() is the challenge text that was signed, touch.sshsig() its armoured SSHSIG
  // (ssh-keygen -Y verify -n <ns> re-checks it): both made by the verifier.
  std::chrono::steady_clock::time_point at;
  uint8_t factors = 0;  // policy::Factor bits this touch meets (policy::satisfied_factors)
};

// proven_factor: what a verified touch of an enrolled key proves, in the policy's terms.
policy::ProvenFactor proven_factor(const fido::VerifiedTouch& touch, store::KeyKind kind);

class MfaDialog {
 public:
  using Clock = std::chrono::steady_clock;

  MfaDialog(Connection& conn, ChallengeContext ctx);
  ~MfaDialog();
  MfaDialog(const MfaDialog&) = delete;
  MfaDialog& operator=(const MfaDialog&) = delete;

  // start asks the store for the principal's keys and begins opening the agent channel.
  void start();
  // step carries the dialog forward after a poll pass or a store answer.
  void step();
  void tick(Clock::time_point now);
  // cancel ends the dialog now (closing the agent channel) with the given refusal.
  void cancel(const std::string& code, const std::string& message);
  // abandon forgets the agent channel without sending anything (connection teardown).
  void abandon();

  bool finished() const { return phase_ == Phase::kDone; }
  // has_news is true when a poll pass left something for step() (agent bytes, the agent
  // channel's confirmation or close), e.g. one nested inside a channel write.
  bool has_news() const {
    return phase_ != Phase::kDone &&
           (in_.buffered() > 0 || agent_closed_ ||
            (phase_ == Phase::kOpening && channel_ != nullptr && ssh_channel_is_open(channel_)));
  }
  // After finished(): the proof, or the refusal.
  const Result<TouchProof>& result() const { return result_; }
  const std::string& target() const { return ctx_.target; }

 private:
  enum class Phase { kOpening, kIdentities, kSigning, kRecording, kDone };

  static int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static void on_eof(ssh_session, ssh_channel, void* self);
  static void on_close(ssh_session, ssh_channel, void* self);

  void on_keys(Result<std::vector<store::EnrolledKey>> keys);
  void on_recorded(Result<store::TouchOutcome> outcome);
  bool flush_out();
  void handle_frame(std::vector<uint8_t> body);
  // choose_keys orders the candidates among the agent's identities (or refuses: none enrolled,
  // none active, none strong enough) and asks the first one.
  void choose_keys(const std::vector<ssh::agent::Identity>& ids);
  // sign_next sends a SIGN_REQUEST of a fresh challenge to the next candidate.
  void sign_next();
  // on_sign_refused notes the agent's refusal for the current candidate, then asks the next
  // candidate, or refuses with mfa_agent_refused when none is left.
  void on_sign_refused(const std::string& answer);
  void verify(std::vector<uint8_t> signature);
  void close_channel();
  void finish(Result<TouchProof> result);
  void refuse(const std::string& code, const std::string& message);
  // audit_record starts a record of this challenge: conn, user, [outcome], channel, target.
  audit::Record audit_record(std::string_view event, std::string_view outcome) const;
  std::string enrolled_list() const;

  Connection& conn_;
  ChallengeContext ctx_;
  Phase phase_ = Phase::kOpening;
  Clock::time_point deadline_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // store answers check it
  ssh_channel channel_ = nullptr;
  ssh_channel_callbacks_struct cb_{};
  bool channel_open_ = false;
  bool agent_closed_ = false;
  ssh::agent::FrameBuffer in_;
  std::vector<uint8_t> out_;
  std::optional<std::vector<uint8_t>> pending_identities_;  // answer that arrived before the keys

  std::optional<std::vector<store::EnrolledKey>> keys_;
  std::vector<const store::EnrolledKey*> candidates_;  // into *keys_, in the order asked
  size_t next_candidate_ = 0;
  // The candidates the agent refused to sign with, and what it answered, in order.
  std::vector<std::pair<const store::EnrolledKey*, std::string>> refused_;
  const store::EnrolledKey* chosen_ = nullptr;  // the candidate asked last
  std::optional<ssh::PublicKey> chosen_key_;
  std::string message_;
  std::vector<uint8_t> signed_data_;
  std::optional<fido::VerifiedTouch> touch_;
  Result<TouchProof> result_ = tl::unexpected(Error{"mfa_incomplete", "the touch is not done"});

  // CPU time this dialog cost the gateway (worker and store thread), for the log.
  friend class CpuSpan;
  int64_t cpu_ns_ = 0;
  int cpu_depth_ = 0;
};

// challenge_message renders the text a challenge signs (one "key: value" per line, escaped).
std::string challenge_message(const ChallengeContext& ctx, const std::array<uint8_t, 32>& nonce,
                              uint64_t unix_time);

}  // namespace touchgate::gateway
