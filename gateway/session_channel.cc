// Trust boundary: channel requests from an authenticated client. The command string is compared
// against a fixed list; nothing is executed.
#include "gateway/session_channel.h"

#include <libssh/server.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "gateway/connection.h"
#include "gateway/terminating.h"
#include "gateway/discard.h"
#include "gateway/log.h"
#include "gateway/store_service.h"
#include "gateway/worker.h"
#include "ssh/digest.h"

namespace touchgate::gateway {

namespace {

std::string flag_names(const fido::VerifiedTouch& t) {
  if (t.kind() == fido::TouchKind::kPiv) return "none (a PIV signature; the card's touch policy is not attested)";
  std::string out;
  if (t.user_present()) out += "UP (touch)";
  if (t.user_verified()) out += out.empty() ? "UV (PIN)" : ", UV (PIN)";
  return out.empty() ? "none" : out;
}

std::string format_time(int64_t t) {
  return t > 0 ? ssh::format_utc(static_cast<uint64_t>(t)) : "never";
}

}  // namespace

SessionChannel::SessionChannel(Connection& conn, uint64_t id, ssh_channel channel)
    : conn_(conn), id_(id), channel_(channel) {
  cb_.userdata = this;
  cb_.channel_close_function = &SessionChannel::on_close;
  cb_.channel_data_function = &SessionChannel::on_data;
  ssh_callbacks_init(&cb_);
  ssh_set_channel_callbacks(channel_, &cb_);
}

SessionChannel::~SessionChannel() { abandon(); }

void SessionChannel::on_close(ssh_session, ssh_channel, void* self) {
  static_cast<SessionChannel*>(self)->client_closed_ = true;
}

int SessionChannel::on_data(ssh_session, ssh_channel, void*, uint32_t len, int, void*) {
  return static_cast<int>(len);  // stdin is not read by any command: drop it
}

namespace {

// env_allowed: name matches one entry of [terminating] env (exact, or a prefix ending in '*').
bool env_allowed(const std::vector<std::string>& allow, std::string_view name) {
  for (const auto& a : allow) {
    if (!a.empty() && a.back() == '*') {
      if (name.substr(0, a.size() - 1) == std::string_view(a).substr(0, a.size() - 1)) return true;
    } else if (name == a) {
      return true;
    }
  }
  return false;
}

// is_command: `word` is empty (the help text) or one of the gateway's own commands.
bool is_command(std::string_view word) {
  return word.empty() || word == "whoami" || word == "mfa-test" || word == "help";
}

}  // namespace

int SessionChannel::request(ssh_message msg) {
  if (state_ != State::kWaitingCommand) return 1;
  switch (ssh_message_subtype(msg)) {
    case SSH_CHANNEL_REQUEST_PTY: {
      pty_ = true;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
      const char* term = ssh_message_channel_request_pty_term(msg);
      const int cols = ssh_message_channel_request_pty_width(msg);
      const int rows = ssh_message_channel_request_pty_height(msg);
#pragma GCC diagnostic pop
      TerminatingRequest::Pty p;
      p.term = term != nullptr ? std::string(term).substr(0, 64) : "xterm";
      p.cols = cols > 0 && cols <= 10000 ? static_cast<uint32_t>(cols) : 80;
      p.rows = rows > 0 && rows <= 10000 ? static_cast<uint32_t>(rows) : 24;
      pty_info_ = p;
      ssh_message_channel_request_reply_success(msg);
      return 0;
    }
    case SSH_CHANNEL_REQUEST_ENV: {
      const char* name = ssh_message_channel_request_env_name(msg);
      const char* value = ssh_message_channel_request_env_value(msg);
      // Passed on to a target only when [terminating] env allows the name (at most 32).
      if (name != nullptr && value != nullptr && env_.size() < 32 &&
          env_allowed(conn_.config().terminating.env, name) && std::strlen(value) <= 4096) {
        env_.emplace_back(name, value);
      }
      ssh_message_channel_request_reply_success(msg);
      return 0;
    }
    case SSH_CHANNEL_REQUEST_WINDOW_CHANGE:
      ssh_message_channel_request_reply_success(msg);
      return 0;
    case SSH_CHANNEL_REQUEST_SHELL:
      if (!conn_.login_target().empty()) {
        return hand_over(msg, conn_.login_target(), policy::Action::kShell, "", "");
      }
      command_ = "";
      ssh_message_channel_request_reply_success(msg);
      return 0;
    case SSH_CHANNEL_REQUEST_EXEC: {
      const char* c = ssh_message_channel_request_command(msg);
      std::string cmd = c != nullptr ? c : "";
      if (!conn_.login_target().empty()) {
        return hand_over(msg, conn_.login_target(), policy::Action::kExec, cmd, "");
      }
      // "db1 [COMMAND]": the first word names a configured target, else a gateway command.
      cmd.erase(0, cmd.find_first_not_of(' '));
      const size_t sp = cmd.find(' ');
      const std::string first = cmd.substr(0, sp);
      std::string rest = sp == std::string::npos ? "" : cmd.substr(sp + 1);
      rest.erase(0, rest.find_first_not_of(' '));
      if (conn_.is_target(first) || !is_command(first)) {
        // A word that is neither goes to terminating mode too, which refuses it as an unknown
        // target (target_unknown, audited like any policy refusal).
        if (rest.empty()) return hand_over(msg, first, policy::Action::kShell, "", "");
        return hand_over(msg, first, policy::Action::kExec, rest, "");
      }
      command_ = cmd;
      ssh_message_channel_request_reply_success(msg);
      return 0;
    }
    case SSH_CHANNEL_REQUEST_SUBSYSTEM: {
      const char* sub = ssh_message_channel_request_subsystem(msg);
      if (sub != nullptr && std::string_view(sub) == "sftp" && !conn_.login_target().empty()) {
        return hand_over(msg, conn_.login_target(), policy::Action::kSftp, "", "sftp");
      }
      return 1;  // sftp needs a target: sftp PRINCIPAL+TARGET@gateway
    }
    default:
      return 1;  // X11, agent requests: refused (the agent channel needs no request)
  }
}

int SessionChannel::hand_over(ssh_message msg, const std::string& target, policy::Action action,
                              const std::string& command, const std::string& subsystem) {
  TerminatingRequest req;
  req.target = target;
  req.action = action;
  req.command = command;
  req.subsystem = subsystem;
  req.pty = pty_info_;
  req.env = std::move(env_);
  ssh_message_channel_request_reply_success(msg);
  ssh_channel channel = channel_;
  ssh_remove_channel_callbacks(channel_, &cb_);
  channel_ = nullptr;
  state_ = State::kDone;
  conn_.start_terminating(id_, channel, std::move(req));
  return 0;
}

std::string SessionChannel::nl(const std::string& text) const {
  if (!pty_) return text;
  std::string out;
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

void SessionChannel::pump() {
  if (state_ == State::kDone) return;
  if (client_closed_) {
    if (channel_ != nullptr) {
      retire_channel(channel_, &cb_, false);  // libssh answers the client's CLOSE
      channel_ = nullptr;
    }
    state_ = State::kDone;
    return;
  }
  if (state_ == State::kWaitingCommand && command_) {
    state_ = State::kRunning;
    run();
  }
}

void SessionChannel::run() {
  const std::string cmd = *command_;
  log_event(Level::kInfo, "session_command",
            {{"conn", conn_.id()}, {"channel", id_}, {"user", conn_.login()}, {"command", cmd}});
  if (cmd.empty() || cmd == "help") {
    finish(help_text(), "", 0);
    return;
  }
  if (cmd == "whoami") {
    state_ = State::kWaitingResult;
    conn_.list_keys(id_);
    return;
  }
  if (cmd == "mfa-test") {
    state_ = State::kWaitingResult;
    conn_.request_touch(id_, "mfa-test", false, {});
    return;
  }
  finish("", fmt::format("touchgate: unknown command \"{}\"; commands: whoami, mfa-test, help\n",
                         cmd.size() > 64 ? cmd.substr(0, 64) + "..." : cmd),
         2);
}

std::string SessionChannel::help_text() {
  const auto& config = conn_.config();
  const std::string& gw = config.server.name;
  std::string out = fmt::format("touchgate gateway {}: you are {}.\n", gw, conn_.login());
  // Without the gateway's CA (no [ca], or its key could not be opened) the gateway cannot log
  // in to targets: shell, exec and sftp are not listed, and a line says why.
  const ssh::Signer* ca = conn_.worker().runtime().ca;
  const bool terminating = config.ca.configured() && ca != nullptr && ca->is_open();
  constexpr uint8_t kTerminatingActions = static_cast<uint8_t>(policy::Action::kShell) |
                                          static_cast<uint8_t>(policy::Action::kExec) |
                                          static_cast<uint8_t>(policy::Action::kSftp);
  auto targets = conn_.reachable();
  std::string not_offered;  // targets whose shell, exec or sftp cannot work here now
  if (!terminating) {
    for (auto& t : targets) {
      if ((t.actions & kTerminatingActions) == 0) continue;
      not_offered += fmt::format("{}{}", not_offered.empty() ? "" : ", ", t.name);
      t.actions &= static_cast<uint8_t>(~kTerminatingActions);
    }
    std::erase_if(targets, [](const Connection::Reachable& t) { return t.actions == 0; });
  }
  if (targets.empty()) {
    out += "No configured target is open to you now (the policy denies by default; ask an "
           "administrator).\n";
  } else {
    size_t width = 6;
    for (const auto& t : targets) width = std::max(width, t.name.size());
    out += "Targets open to you now, what you may do there, and the factor it takes:\n";
    for (const auto& t : targets) {
      std::string actions;
      for (auto a : {policy::Action::kJump, policy::Action::kShell, policy::Action::kExec,
                     policy::Action::kSftp}) {
        if ((t.actions & static_cast<uint8_t>(a)) == 0) continue;
        if (!actions.empty()) actions += ' ';
        actions += policy::action_name(a);
      }
      out += fmt::format("    {:<{}}  {:<22}  {}\n", t.name, width, actions,
                         policy::factor_names(t.factors != 0 ? t.factors : policy::kAllFactors));
    }
  }
  out += fmt::format(
      "Reach a target through the gateway (jump) with\n"
      "    ssh -J {} TARGET\n"
      "and, in ~/.ssh/config, the gateway's host block:\n"
      "    Host {}\n"
      "        ForwardAgent yes\n"
      "(ssh -J does not pass -A: the touch of your hardware key needs this line.)\n",
      gw, gw);
  if (terminating) {
    out += fmt::format(
        "Where shell, exec or sftp is allowed the gateway logs in for you and records the "
        "session:\n"
        "    ssh -t {} TARGET [COMMAND]        sftp {}+TARGET@{}\n",
        gw, conn_.login(), gw);
  } else if (!not_offered.empty()) {
    out += fmt::format(
        "The policy also allows you shell, exec or sftp on {}, but this gateway cannot log in "
        "to targets itself ({}): not listed above.\n",
        not_offered,
        config.ca.configured() ? "its CA key is not open now, see the gateway's log; it is "
                                 "tried again when a login needs it"
                               : "no [ca] key is configured");
  }
  out += "Commands: whoami (who the gateway thinks you are), mfa-test (try a touch), help.\n";
  return out;
}

void SessionChannel::keys_result(Result<std::vector<store::EnrolledKey>> keys) {
  if (state_ != State::kWaitingResult) return;
  const ssh::VerifiedCertificate& c = conn_.certificate();
  std::string out = fmt::format("principal:   {}\n", conn_.login());
  out += fmt::format("certificate: key id \"{}\", serial {}, CA {} ({})\n", c.key_id(), c.serial(),
                     c.ca_name(), c.ca_fingerprint());
  out += fmt::format("             key {} ({}), valid until {}\n", c.key_fingerprint(),
                     ssh::key_type_name(c.key_type()), ssh::format_utc(c.valid_before()));
  std::vector<std::string> opts;
  if (c.verify_required()) opts.push_back("verify-required");
  if (c.permit_port_forwarding()) opts.push_back("permit-port-forwarding");
  if (c.permit_agent_forwarding()) opts.push_back("permit-agent-forwarding");
  if (c.force_command()) opts.push_back("force-command");
  out += fmt::format("             options: {}\n", opts.empty() ? "none" : fmt::format("{}", fmt::join(opts, ", ")));
  out += fmt::format("client:      {}\n", conn_.peer());
  out += fmt::format("gateway:     {} (touch namespace {})\n", conn_.config().server.name,
                     conn_.config().mfa_namespace());
  if (!keys) {
    finish(out, fmt::format("touchgate: the key store cannot be read ({})\n", keys.error().code), 1);
    return;
  }
  if (keys->empty()) {
    out += "enrolled keys: none (ask an admin to enroll one: touchgate keys add)\n";
  } else {
    out += "enrolled keys:\n";
    for (const auto& k : *keys) {
      out += fmt::format("  {} {} {}{}{} {}, last used {}{}\n", k.fingerprint, store::kind_name(k.kind),
                         k.key_type, k.label.empty() ? "" : fmt::format(" \"{}\"", k.label),
                         k.pin_required ? " pin-required" : "", store::status_name(k.status),
                         format_time(k.last_used_at),
                         k.last_counter ? fmt::format(", counter {}", *k.last_counter) : "");
    }
  }
  finish(out, "", 0);
}

void SessionChannel::touch_result(const Result<TouchProof>& result) {
  if (state_ != State::kWaitingResult) return;
  if (!result) {
    finish("", fmt::format("touchgate: {} ({})\n", result.error().message, result.error().code), 1);
    return;
  }
  const TouchProof& p = *result;
  const std::string ns = conn_.config().mfa_namespace();
  std::string out = fmt::format("touch verified: key {} ({}, {}{}), flags {}",
                                p.touch.fingerprint(), store::kind_name(p.kind), p.touch.key_type(),
                                p.label.empty() ? "" : ", " + p.label, flag_names(p.touch));
  out += p.kind == store::KeyKind::kFido2 ? fmt::format(", counter {}\n", p.touch.counter()) : "\n";
  out += fmt::format("signed challenge (SSHSIG namespace {}):\n{}", ns, p.touch.message());
  out += fmt::format("proof (save the challenge as msg and this as msg.sig; then\n"
                     "  ssh-keygen -Y verify -f allowed_signers -I {} -n {} -s msg.sig < msg):\n{}",
                     conn_.login(), ns, p.touch.sshsig());
  finish(out, "", 0);
}

void SessionChannel::finish(const std::string& out, const std::string& err, int status) {
  if (channel_ == nullptr) {
    state_ = State::kDone;
    return;
  }
  if (!out.empty()) {
    std::string text = nl(out);
    ssh_channel_write(channel_, text.data(), static_cast<uint32_t>(text.size()));
  }
  if (!err.empty()) {
    std::string text = nl(err);
    ssh_channel_write_stderr(channel_, text.data(), static_cast<uint32_t>(text.size()));
  }
  ssh_channel_request_send_exit_status(channel_, status);
  ssh_channel_send_eof(channel_);
  retire_channel(channel_, &cb_, true);
  channel_ = nullptr;
  state_ = State::kDone;
}

void SessionChannel::abandon() {
  if (channel_ != nullptr) {
    ssh_remove_channel_callbacks(channel_, &cb_);
    channel_ = nullptr;
  }
  state_ = State::kDone;
}

}  // namespace touchgate::gateway
