// Administration of a running gateway: configuration reload (SIGHUP, `touchgate reload`), the
// list of sessions and killing them (`touchgate sessions`). Used on the acceptor thread; the
// workers own the connections, so questions about them are posted to each worker and answered
// within a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/control_protocol.h"
#include "gateway/runtime.h"
#include "gateway/worker.h"
#include "policy/lint.h"
#include "ssh/error.h"

namespace touchgate::gateway {

// restart_only_changes names, as "section.key", the settings that differ between two
// configurations but are read only when touchgated starts: what is bound, opened and started
// (server.listen, server.host_keys, server.state_dir, server.workers, server.control_socket,
// server.admin_group), every key of [audit] (the open log), and the CA key of [ca]
// (ca.pkcs11_uri, ca.pkcs11_module, ca.pin_file, ca.key_file; also when [ca] is added or
// removed). Empty when none differ.
std::vector<std::string> restart_only_changes(const policy::Config& running,
                                              const policy::Config& loaded);

// keep_restart_only gives `loaded` the running values of every setting restart_only_changes
// compares, so that the new snapshot says what is in effect.
void keep_restart_only(const policy::Config& running, policy::Config* loaded);

// log_findings logs what lint found in a configuration: one line per error or warning,
// event=policy_lint with by, file, line, rule, severity, code and message (level error or
// warn); the notes, which may be many in a large policy, as one line event=policy_lint_notes
// with their count.
void log_findings(std::string_view by, std::string_view file,
                  const std::vector<policy::Finding>& findings);

// What a successful reload did.
struct Reloaded {
  uint64_t generation = 0;
  std::vector<std::string> restart_needed;  // restart_only_changes: kept at their running values
  std::vector<policy::Finding> findings;    // lint warnings and notes of the new file (no errors)
};

class Admin {
 public:
  // How long the workers have to answer a question about their connections.
  static constexpr std::chrono::milliseconds kWorkerDeadline{1000};

  Admin(Runtime& runtime, std::filesystem::path config,
        const std::vector<std::unique_ptr<Worker>>& workers)
      : runtime_(runtime), config_(std::move(config)), workers_(workers) {}

  // reload loads the configuration file again (load_snapshot: the file, its trust files and the
  // checks of `touchgate policy check`). On success the new snapshot, generation + 1, serves new
  // connections, and every connection takes it for its next decisions (running channels
  // continue; with [policy] reevaluate they are re-checked); restart-only settings keep their
  // running values (a warning names them); lint warnings and notes are logged and returned. On
  // failure (a parse or trust file error, or a lint error: policy_invalid) nothing changes and
  // the error carries the file's line-numbered message. `by` says who asked ("SIGHUP",
  // "control"), for the log. uid is who asked (the control socket peer, or the sender of
  // SIGHUP); the reload is audited.
  Result<Reloaded> reload(std::string_view by, uint32_t uid);

  // list_sessions describes every authenticated connection, by connection id. Code
  // control_timeout when a worker does not answer within kWorkerDeadline.
  Result<std::vector<SessionInfo>> list_sessions();

  // kill ends the authenticated connections a kSessionsKill or kSessionsKillUser request names,
  // each with "ended by an administrator (uid UID)", and returns how many; a kSessionsKill with
  // a channel ends only that open channel of the connection (1, or 0 when it is not open).
  // control_timeout as above (connections already ended stay ended).
  Result<size_t> kill(const ControlRequest& request, uint32_t uid);

  // record_key_change writes the audit record of a `touchgate keys` change (kAuditKey) with
  // what the store says about the key, and waits until it is durable: "ok recorded" only then.
  Result<void> record_key_change(const ControlRequest& request, uint32_t uid);

  // answer runs a control request for a peer with uid `uid` and returns the whole reply.
  std::string answer(const ControlRequest& request, uint32_t uid);

 private:
  Runtime& runtime_;
  std::filesystem::path config_;
  const std::vector<std::unique_ptr<Worker>>& workers_;
};

}  // namespace touchgate::gateway
