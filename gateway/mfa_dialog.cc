// Trust boundary: the agent channel carries bytes from the client's agent; they are read only
// through ssh::agent (frames, answers) and fido::verify_sshsig_touch (the signature).
#include "gateway/mfa_dialog.h"

#include <openssl/rand.h>

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "gateway/auditor.h"
#include "gateway/connection.h"
#include "gateway/discard.h"
#include "gateway/log.h"
#include "gateway/store_service.h"
#include "gateway/worker.h"
#include "ssh/digest.h"
#include "ssh/sshsig.h"

namespace touchgate::gateway {

namespace {

// At most this many enrolled fingerprints are listed in a refusal (the client prints 400 bytes).
constexpr size_t kListedKeys = 3;

std::string escape_value(std::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f || c == '%') {
      out += fmt::format("%{:02X}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string hex(std::span<const uint8_t> b) {
  std::string out;
  out.reserve(b.size() * 2);
  for (uint8_t c : b) out += fmt::format("{:02x}", c);
  return out;
}

fido::TouchKind touch_kind(store::KeyKind k) {
  return k == store::KeyKind::kFido2 ? fido::TouchKind::kFido2 : fido::TouchKind::kPiv;
}

std::string key_name(const store::EnrolledKey& k) {
  return k.label.empty() ? k.fingerprint : fmt::format("{} ({})", k.fingerprint, k.label);
}

}  // namespace

// CpuSpan adds the worker thread's CPU time of the outermost dialog call to the dialog.
class CpuSpan {
 public:
  explicit CpuSpan(MfaDialog* d) : d_(d), start_(d->cpu_depth_++ == 0 ? thread_cpu_ns() : -1) {}
  ~CpuSpan() {
    --d_->cpu_depth_;
    if (start_ >= 0) d_->cpu_ns_ += thread_cpu_ns() - start_;
  }
  CpuSpan(const CpuSpan&) = delete;
  CpuSpan& operator=(const CpuSpan&) = delete;

 private:
  MfaDialog* d_;
  int64_t start_;
};

policy::ProvenFactor proven_factor(const fido::VerifiedTouch& touch, store::KeyKind kind) {
  policy::ProvenFactor p;
  p.fido2 = kind == store::KeyKind::kFido2;
  p.user_presence = (touch.flags() & 0x01) != 0;
  p.user_verification = touch.user_verified();
  p.attested = false;  // attestation at enrollment is not recorded yet
  return p;
}

namespace {

// possible_factors: what a touch of this enrolled key could prove. likely: only what it will
// prove as enrolled (a FIDO2 key gives touch+pin only when enrolled as PIN-required).
uint8_t possible_factors(const store::EnrolledKey& k, bool likely) {
  policy::ProvenFactor p;
  p.fido2 = k.kind == store::KeyKind::kFido2;
  p.user_presence = true;
  p.user_verification = !likely || k.pin_required;
  return policy::satisfied_factors(p);
}

}  // namespace

std::string challenge_message(const ChallengeContext& ctx, const std::array<uint8_t, 32>& nonce,
                              uint64_t unix_time) {
  const ssh::VerifiedCertificate& c = *ctx.cert;
  std::string m = "touchgate-mfa-v1\n";
  auto line = [&m](std::string_view k, std::string_view v) {
    m += fmt::format("{}: {}\n", k, escape_value(v));
  };
  line("gateway", ctx.gateway);
  line("namespace", ctx.ns);
  line("nonce", hex(nonce));
  line("connection", ctx.connection);
  line("client", ctx.client);
  line("principal", ctx.principal);
  line("certificate-ca", c.ca_name());
  line("certificate-key-id", c.key_id());
  line("certificate-serial", std::to_string(c.serial()));
  line("certificate-key", c.key_fingerprint());
  line("target", ctx.target);
  line("time", ssh::format_utc(unix_time));
  return m;
}

MfaDialog::MfaDialog(Connection& conn, ChallengeContext ctx) : conn_(conn), ctx_(std::move(ctx)) {}

MfaDialog::~MfaDialog() {
  abandon();
}

void MfaDialog::start() {
  CpuSpan span(this);
  const auto& mfa = conn_.config().mfa;
  deadline_ = Clock::now() + mfa.touch_timeout;

  // The enrolled keys: read on the store thread, answered on this worker.
  std::string principal = ctx_.principal;
  ask_store<std::vector<store::EnrolledKey>>(
      conn_.worker(), alive_, [principal](store::Store& st) { return st.list_keys(principal); },
      [this](Result<std::vector<store::EnrolledKey>> keys, int64_t store_ns) {
        cpu_ns_ += store_ns;
        on_keys(std::move(keys));
        conn_.after_mfa_event();
      });

  channel_ = ssh_channel_new(conn_.session());
  if (channel_ == nullptr) {
    refuse("mfa_internal_error", "the gateway could not open an agent channel");
    return;
  }
  cb_.userdata = this;
  cb_.channel_data_function = &MfaDialog::on_data;
  cb_.channel_eof_function = &MfaDialog::on_eof;
  cb_.channel_close_function = &MfaDialog::on_close;
  ssh_callbacks_init(&cb_);
  ssh_set_channel_callbacks(channel_, &cb_);
  log_event(Level::kInfo, "mfa_challenge",
            {{"conn", conn_.id()}, {"user", ctx_.principal}, {"target", ctx_.target}});
  step();
}

// ---- libssh callbacks (inside a poll pass: buffer and flag only) -------------------------------

int MfaDialog::on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                       void* self) {
  auto* d = static_cast<MfaDialog*>(self);
  if (is_stderr || d->phase_ == Phase::kDone) return static_cast<int>(len);
  // Bounded: beyond one whole frame the buffer breaks and step() refuses the agent.
  d->in_.append({static_cast<const uint8_t*>(data), len});
  return static_cast<int>(len);
}

void MfaDialog::on_eof(ssh_session, ssh_channel, void* self) {
  static_cast<MfaDialog*>(self)->agent_closed_ = true;
}

void MfaDialog::on_close(ssh_session, ssh_channel, void* self) {
  static_cast<MfaDialog*>(self)->agent_closed_ = true;
}

// ---- the dialog --------------------------------------------------------------------------------

void MfaDialog::step() {
  CpuSpan span(this);
  if (phase_ == Phase::kDone) return;
  if (phase_ == Phase::kOpening && channel_ != nullptr && !channel_open_) {
    int rc = ssh_channel_is_open(channel_) ? SSH_OK : ssh_channel_open_auth_agent(channel_);
    if (rc == SSH_ERROR) {
      refuse("mfa_no_agent",
             ctx_.no_agent_hint.empty()
                 ? "this gateway needs a touch of your enrolled hardware key through a forwarded "
                   "agent, and none was forwarded; add 'ForwardAgent yes' under 'Host " +
                       ctx_.gateway +
                       "' (your name for this gateway) in ~/.ssh/config; ssh -J does not pass -A "
                       "to the jump host"
                 : "this gateway needs a touch of your enrolled hardware key through a forwarded "
                   "agent, and none was forwarded; " +
                       ctx_.no_agent_hint);
      return;
    }
    if (rc != SSH_OK) return;  // SSH_AGAIN: the client has not answered the open yet
    channel_open_ = true;
    phase_ = Phase::kIdentities;
    out_ = ssh::agent::encode_request_identities();
  }
  if (!flush_out()) return;
  for (int i = 0; i < 4 && phase_ != Phase::kDone; ++i) {
    auto frame = in_.next();
    if (!frame) {
      refuse("mfa_agent_malformed",
             fmt::format("your agent sent a malformed message: {}", frame.error().message));
      return;
    }
    if (!*frame) break;
    handle_frame(std::move(**frame));
  }
  if (phase_ == Phase::kDone || phase_ == Phase::kRecording) return;
  if (pending_identities_ && keys_) {
    auto body = std::move(*pending_identities_);
    pending_identities_.reset();
    handle_frame(std::move(body));
    if (phase_ == Phase::kDone) return;
    if (!flush_out()) return;
  }
  if (agent_closed_ && (phase_ == Phase::kIdentities || phase_ == Phase::kSigning) &&
      !pending_identities_) {
    refuse("mfa_agent_closed", "your forwarded agent closed the channel without answering");
  }
}

bool MfaDialog::flush_out() {
  if (out_.empty() || channel_ == nullptr || !channel_open_) return true;
  int n = ssh_channel_write(channel_, out_.data(), static_cast<uint32_t>(out_.size()));
  if (n == SSH_ERROR) {
    refuse("mfa_agent_closed", "the agent channel failed while sending the request");
    return false;
  }
  if (n > 0)
    out_.erase(out_.begin(), out_.begin() + std::min<size_t>(static_cast<size_t>(n), out_.size()));
  return true;
}

void MfaDialog::handle_frame(std::vector<uint8_t> body) {
  if (phase_ == Phase::kIdentities) {
    if (!keys_) {
      // The keys are still being read from the store; keep the answer until they are in.
      pending_identities_ = std::move(body);
      return;
    }
    auto ids = ssh::agent::parse_identities_answer(body);
    if (!ids) {
      if (ids.error().code == "agent_refused") {
        refuse("mfa_agent_refused", "your agent refused to list its keys");
      } else {
        refuse("mfa_agent_malformed",
               fmt::format("your agent's key list is malformed: {}", ids.error().message));
      }
      return;
    }
    choose_keys(*ids);
    return;
  }
  if (phase_ == Phase::kSigning) {
    auto sig = ssh::agent::parse_sign_response(body);
    if (!sig && sig.error().code == "agent_refused") {
      on_sign_refused("refused");
      return;
    }
    close_channel();
    if (!sig) {
      refuse("mfa_agent_malformed",
             fmt::format("your agent's signature answer is malformed: {}", sig.error().message));
      return;
    }
    verify(std::move(*sig));
    return;
  }
  refuse("mfa_agent_malformed", "your agent sent a message nobody asked for");
}

std::string MfaDialog::enrolled_list() const {
  std::vector<std::string> fps;
  for (const auto& k : *keys_) {
    if (k.status == store::KeyStatus::kActive) fps.push_back(k.fingerprint);
  }
  if (fps.empty()) return "";
  std::string out;
  for (size_t i = 0; i < fps.size() && i < kListedKeys; ++i) {
    if (i) out += ", ";
    out += fps[i];
  }
  if (fps.size() > kListedKeys) out += fmt::format(" and {} more", fps.size() - kListedKeys);
  return out;
}

void MfaDialog::choose_keys(const std::vector<ssh::agent::Identity>& ids) {
  const auto& mfa = conn_.config().mfa;
  // The active enrolled keys in the agent, by kind in [mfa] prefer order; else remember an
  // enrolled key that is not active, or one of a kind not accepted, for the refusal.
  const store::EnrolledKey* inactive = nullptr;
  bool wrong_kind = false;
  for (const auto& id : ids) {
    for (const auto& k : *keys_) {
      if (k.key_blob != id.key_blob) continue;
      if (k.status != store::KeyStatus::kActive) {
        if (inactive == nullptr) inactive = &k;
      } else if (std::find(mfa.prefer.begin(), mfa.prefer.end(), store::kind_name(k.kind)) ==
                 mfa.prefer.end()) {
        wrong_kind = true;
      }
    }
  }
  // Keys that can meet the rule's factors; among them, by kind in [mfa] prefer order, those
  // likely to (a PIN-required FIDO2 key for touch+pin) before the others.
  const uint8_t wanted = ctx_.factors != 0 ? ctx_.factors : policy::kAllFactors;
  bool too_weak = false;
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string& kind_name : mfa.prefer) {
      for (const auto& id : ids) {
        for (const auto& k : *keys_) {
          if (k.key_blob != id.key_blob || store::kind_name(k.kind) != kind_name ||
              k.status != store::KeyStatus::kActive ||
              std::find(candidates_.begin(), candidates_.end(), &k) != candidates_.end()) {
            continue;
          }
          if ((possible_factors(k, pass == 0) & wanted) != 0) {
            candidates_.push_back(&k);
          } else {
            too_weak = true;
          }
        }
      }
    }
  }
  if (candidates_.empty() && too_weak) {
    refuse("factor_too_weak",
           fmt::format("rule {} requires {}; none of your enrolled keys in the agent can provide "
                       "it",
                       ctx_.rule, policy::factor_names(wanted)));
    return;
  }
  if (candidates_.empty()) {
    if (inactive != nullptr) {
      switch (inactive->status) {
        case store::KeyStatus::kRevoked:
          refuse("mfa_key_revoked",
                 fmt::format("key {} is revoked for {}; ask an admin to enroll another",
                             key_name(*inactive), ctx_.principal));
          return;
        case store::KeyStatus::kSuspectedClone:
          refuse("mfa_key_suspended",
                 fmt::format("key {} is suspended as a suspected clone (its signature counter "
                             "went back); an admin must check it (touchgate keys clear-clone)",
                             inactive->fingerprint));
          return;
        default:
          refuse("mfa_key_pending", fmt::format("key {} is not yet approved for {}",
                                                key_name(*inactive), ctx_.principal));
          return;
      }
    }
    if (wrong_kind) {
      refuse("mfa_no_enrolled_key",
             fmt::format("your agent holds an enrolled key of a kind this gateway does not accept "
                         "(accepted: {})",
                         fmt::join(mfa.prefer, ", ")));
      return;
    }
    std::string enrolled = enrolled_list();
    if (enrolled.empty()) {
      refuse("mfa_no_enrolled_key",
             fmt::format("no hardware key is enrolled for {} at this gateway; ask an admin to "
                         "enroll one (touchgate keys add)",
                         ctx_.principal));
    } else {
      refuse("mfa_no_enrolled_key",
             fmt::format("none of the {} keys in your agent is enrolled for {}; enrolled: {}",
                         ids.size(), ctx_.principal, enrolled));
    }
    return;
  }
  sign_next();
}

void MfaDialog::sign_next() {
  const auto& mfa = conn_.config().mfa;
  const bool first = chosen_ == nullptr;
  chosen_ = candidates_[next_candidate_++];
  auto key = ssh::parse_public_key(chosen_->key_blob);
  if (!key) {
    refuse("mfa_key_unusable", fmt::format("enrolled key {} cannot be read: {}",
                                           chosen_->fingerprint, key.error().message));
    return;
  }
  chosen_key_ = std::move(*key);

  std::array<uint8_t, 32> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    refuse("mfa_internal_error", "the gateway could not draw a random challenge");
    return;
  }
  message_ = challenge_message(ctx_, nonce, static_cast<uint64_t>(std::time(nullptr)));
  signed_data_ =
      ssh::sshsig_signed_data(ctx_.ns, ssh::SshsigHash::kSha512, ssh::as_bytes(message_));
  const uint32_t flags = chosen_key_->type == ssh::KeyType::kRsa ? ssh::agent::kSignRsaSha512 : 0;
  auto frame = ssh::agent::encode_sign_request(chosen_->key_blob, signed_data_, flags);
  out_.insert(out_.end(), frame.begin(), frame.end());
  phase_ = Phase::kSigning;
  // The touch gets the full time, once: the next candidates are asked within it.
  if (first) deadline_ = Clock::now() + mfa.touch_timeout;
  log_event(Level::kInfo, "mfa_sign_request",
            {{"conn", conn_.id()},
             {"user", ctx_.principal},
             {"key_fp", chosen_->fingerprint},
             {"kind", store::kind_name(chosen_->kind)},
             {"target", ctx_.target},
             {"attempt", fmt::format("{}/{}", next_candidate_, candidates_.size())}});
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = audit_record("mfa_challenge", "");
    r.str("namespace", ctx_.ns).str("key_fp", chosen_->fingerprint);
    r.str("kind", store::kind_name(chosen_->kind));
    a->note(std::move(r));
  }
  flush_out();
}

void MfaDialog::on_sign_refused(const std::string& answer) {
  refused_.emplace_back(chosen_, answer);
  const store::EnrolledKey* next =
      next_candidate_ < candidates_.size() ? candidates_[next_candidate_] : nullptr;
  log_event(Level::kInfo, "mfa_sign_refused",
            {{"conn", conn_.id()},
             {"user", ctx_.principal},
             {"target", ctx_.target},
             {"key_fp", chosen_->fingerprint},
             {"kind", store::kind_name(chosen_->kind)},
             {"answer", answer},
             {"next_key_fp", next != nullptr ? next->fingerprint : "none"}});
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = audit_record("mfa_sign_refused", "");
    r.str("reason", "mfa_agent_refused").str("key_fp", chosen_->fingerprint);
    r.str("kind", store::kind_name(chosen_->kind)).str("answer", answer);
    a->note(std::move(r));
  }
  if (next != nullptr) {
    sign_next();
    return;
  }
  std::string asked;
  for (size_t i = 0; i < refused_.size() && i < kListedKeys; ++i) {
    if (i) asked += ", ";
    asked += fmt::format("{} ({}) {}", refused_[i].first->fingerprint,
                         store::kind_name(refused_[i].first->kind), refused_[i].second);
  }
  if (refused_.size() > kListedKeys)
    asked += fmt::format(" and {} more", refused_.size() - kListedKeys);
  refuse("mfa_agent_refused",
         fmt::format("your agent refused to sign with {}: {}; touch not confirmed, wrong PIN, "
                     "token not plugged in, or a key added with ssh-add -h",
                     refused_.size() == 1 ? "your enrolled key" : "each enrolled key it holds",
                     asked));
}

void MfaDialog::verify(std::vector<uint8_t> signature) {
  const auto& mfa = conn_.config().mfa;
  fido::TouchRequirements req;
  std::string why_uv;
  if (chosen_->kind == store::KeyKind::kFido2) {
    if (ctx_.cert->verify_required())
      why_uv = "your certificate says verify-required";
    else if (chosen_->pin_required)
      why_uv = "the key was enrolled as PIN-required";
    else if (mfa.require_pin)
      why_uv = "the gateway requires a PIN";
    req.user_verification = !why_uv.empty();
  }
  auto touch = fido::verify_sshsig_touch(*chosen_key_, touch_kind(chosen_->kind), signature,
                                         ctx_.ns, message_, req);
  if (!touch) {
    const std::string& code = touch.error().code;
    std::string fp = chosen_->fingerprint;
    if (code == "touch_not_present") {
      refuse(code, fmt::format("key {} signed without a touch (no user-presence flag); touch the "
                               "key when it blinks",
                               fp));
    } else if (code == "touch_pin_missing") {
      refuse(code, fmt::format("key {} signed without PIN verification, but {}; set a PIN and "
                               "use a key made with -O verify-required",
                               fp, why_uv));
    } else if (code == "touch_sig_invalid") {
      refuse(code, fmt::format("the signature by key {} does not verify", fp));
    } else {
      refuse(code.empty() ? "touch_sig_malformed" : code,
             fmt::format("the signature by key {} is unusable: {}", fp, touch.error().message));
    }
    return;
  }
  touch_ = std::move(*touch);
  phase_ = Phase::kRecording;

  // The counter check and last-use update, atomically in the store.
  std::string fp = chosen_->fingerprint;
  store::KeyKind kind = chosen_->kind;
  uint32_t counter = touch_->counter();
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  ask_store<store::TouchOutcome>(
      conn_.worker(), alive_,
      [fp, kind, counter, now](store::Store& st) {
        return st.record_touch(fp, kind, counter, now);
      },
      [this](Result<store::TouchOutcome> outcome, int64_t store_ns) {
        cpu_ns_ += store_ns;
        on_recorded(std::move(outcome));
        conn_.after_mfa_event();
      });
}

void MfaDialog::on_keys(Result<std::vector<store::EnrolledKey>> keys) {
  CpuSpan span(this);
  if (phase_ == Phase::kDone) return;
  if (!keys) {
    log_event(
        Level::kError, "store_error",
        {{"conn", conn_.id()}, {"code", keys.error().code}, {"reason", keys.error().message}});
    refuse("mfa_store_unavailable", "the gateway's key store cannot be read; access is refused");
    return;
  }
  keys_ = std::move(*keys);
  step();
}

void MfaDialog::on_recorded(Result<store::TouchOutcome> outcome) {
  CpuSpan span(this);
  if (phase_ != Phase::kRecording) return;
  if (!outcome) {
    log_event(Level::kError, "store_error",
              {{"conn", conn_.id()},
               {"code", outcome.error().code},
               {"reason", outcome.error().message}});
    refuse("mfa_store_unavailable", "the gateway could not record the touch; access is refused");
    return;
  }
  switch (*outcome) {
    case store::TouchOutcome::kAccepted:
      break;
    case store::TouchOutcome::kCounterRegression: {
      std::string last = chosen_->last_counter ? std::to_string(*chosen_->last_counter) : "?";
      log_event(Level::kError, "suspected_clone",
                {{"conn", conn_.id()},
                 {"peer", ctx_.client},
                 {"user", ctx_.principal},
                 {"key_fp", chosen_->fingerprint},
                 {"counter", touch_->counter()},
                 {"last_counter", last},
                 {"action", "key suspended; touchgate keys clear-clone after investigation"}});
      if (Auditor* a = conn_.worker().runtime().auditor) {
        audit::Record r = audit_record("suspected_clone", "deny");
        r.str("reason", "mfa_counter_regression");
        r.str("key_fp", chosen_->fingerprint).u64("counter", touch_->counter());
        if (chosen_->last_counter) r.u64("last_counter", *chosen_->last_counter);
        a->note(std::move(r));
      }
      refuse("mfa_counter_regression",
             fmt::format("the signature counter of key {} did not advance ({} after {}): the key "
                         "may be cloned and is now suspended; an admin must check it",
                         chosen_->fingerprint, touch_->counter(), last));
      return;
    }
    case store::TouchOutcome::kNotActive:
      refuse("mfa_key_revoked",
             fmt::format("key {} was revoked or suspended during the touch", chosen_->fingerprint));
      return;
  }
  TouchProof proof{*touch_, chosen_->kind, chosen_->label, Clock::now()};
  proof.factors = policy::satisfied_factors(proven_factor(*touch_, chosen_->kind));
  log_event(Level::kInfo, "mfa_verified",
            {{"conn", conn_.id()},
             {"user", ctx_.principal},
             {"target", ctx_.target},
             {"key_fp", touch_->fingerprint()},
             {"kind", store::kind_name(chosen_->kind)},
             {"flags", fmt::format("0x{:02x}", touch_->flags())},
             {"counter", touch_->counter()},
             {"namespace", ctx_.ns},
             {"cpu_us", cpu_ns_ / 1000},
             {"message", ssh::base64_encode(ssh::as_bytes(proof.touch.message()))},
             {"proof", ssh::base64_encode(proof.touch.sshsig_blob())},
             {"factor", policy::strongest_factor(proven_factor(*touch_, chosen_->kind))}});
  const uint8_t wanted = ctx_.factors != 0 ? ctx_.factors : policy::kAllFactors;
  if ((proof.factors & wanted) == 0) {
    const bool fido2 = chosen_->kind == store::KeyKind::kFido2;
    refuse("factor_too_weak",
           fmt::format("rule {} requires {}; key {} proved only {}{}", ctx_.rule,
                       policy::factor_names(wanted), touch_->fingerprint(),
                       policy::strongest_factor(proven_factor(*touch_, chosen_->kind)),
                       fido2 && !touch_->user_verified()
                           ? " (signed without user verification: no PIN was asked)"
                           : ""));
    return;
  }
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = audit_record("mfa_verified", "allow");
    r.str("key_fp", touch_->fingerprint())
        .str("kind", store::kind_name(chosen_->kind))
        .str("label", chosen_->label)
        .boolean("up", touch_->user_present())
        .boolean("uv", touch_->user_verified())
        .u64("counter", touch_->counter())
        .str("factor", policy::strongest_factor(proven_factor(*touch_, chosen_->kind)))
        .str("namespace", ctx_.ns)
        .str("signed_message", proof.touch.message())
        .str("proof", proof.touch.sshsig());
    a->note(std::move(r));
  }
  finish(std::move(proof));
}

audit::Record MfaDialog::audit_record(std::string_view event, std::string_view outcome) const {
  audit::Record r(event);
  r.str("conn", conn_.audit_id()).str("user", ctx_.principal);
  if (!outcome.empty()) r.str("outcome", outcome);
  if (ctx_.channel != 0) r.u64("channel", ctx_.channel);
  r.str("target", ctx_.target.substr(0, ctx_.target.find(' ')));
  return r;
}

void MfaDialog::tick(Clock::time_point now) {
  if (phase_ == Phase::kDone || now < deadline_) return;
  const auto secs = conn_.config().mfa.touch_timeout.count();
  switch (phase_) {
    case Phase::kSigning:
      refuse(
          "mfa_timeout",
          fmt::format("no touch within {} s; touch your key when it blinks and try again", secs));
      break;
    case Phase::kRecording:
      refuse("mfa_store_unavailable",
             fmt::format("the gateway could not record the touch within {} s", secs));
      break;
    default:
      refuse("mfa_agent_timeout",
             fmt::format("your forwarded agent did not answer within {} s", secs));
      break;
  }
}

void MfaDialog::cancel(const std::string& code, const std::string& message) {
  if (phase_ == Phase::kDone) return;
  refuse(code, message);
}

void MfaDialog::refuse(const std::string& code, const std::string& message) {
  log_event(Level::kInfo, "mfa_refused",
            {{"conn", conn_.id()},
             {"user", ctx_.principal},
             {"target", ctx_.target},
             {"code", code},
             {"reason", message},
             {"key_fp", chosen_ != nullptr ? chosen_->fingerprint : ""}});
  if (Auditor* a = conn_.worker().runtime().auditor) {
    audit::Record r = audit_record("mfa_refused", "deny");
    r.str("reason", code).str("message", message);
    if (chosen_ != nullptr) r.str("key_fp", chosen_->fingerprint);
    a->note(std::move(r));
  }
  finish(tl::unexpected(Error{code, message}));
}

void MfaDialog::finish(Result<TouchProof> result) {
  close_channel();
  result_ = std::move(result);
  phase_ = Phase::kDone;
  alive_.reset();
}

void MfaDialog::close_channel() {
  if (channel_ == nullptr) return;
  retire_channel(channel_, &cb_, channel_open_ && !agent_closed_);
  channel_ = nullptr;
}

void MfaDialog::abandon() {
  if (channel_ != nullptr) {
    // Freed with the session by libssh; only make sure no callback reaches us again.
    ssh_remove_channel_callbacks(channel_, &cb_);
    channel_ = nullptr;
  }
  alive_.reset();
  phase_ = Phase::kDone;
}

}  // namespace touchgate::gateway
