// The gateway's side of the audit log (docs/audit-format.md, section 8): records go to one
// audit::AuditLog; a record that grants access is acted on only once it is durable, on the worker
// that asked. Fail closed: with [audit] on_failure = "deny" (the default), no access is granted
// while the log cannot be written.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "audit/log.h"
#include "audit/record.h"
#include "ssh/error.h"

namespace touchgate::gateway {

class Worker;

class Auditor {
 public:
  // log may be null (no audit: everything is granted at once; unit tests of other parts only).
  Auditor(audit::AuditLog* log, bool deny_on_failure)
      : log_(log), deny_on_failure_(deny_on_failure) {}

  // refusing is true when new access must be refused now: the log is unhealthy and
  // on_failure = "deny". (A write may still fail later; grant() then reports it.)
  bool refusing() const { return log_ != nullptr && deny_on_failure_ && !log_->healthy(); }
  // refusal is the error a client is shown while refusing (code audit_unavailable);
  // refusal_for(e) the one for a grant whose record failed with e (audit_overloaded is named).
  static Error refusal();
  static Error refusal_for(const Error& e);

  // note writes a record nobody waits for (refusals, facts). A failure is logged, not returned.
  void note(audit::Record r);

  // grant writes r, then runs then() on `worker` once it is durable (Result ok), unless `alive`
  // has expired by then. When the record cannot be written, then() gets audit_unavailable (or
  // audit_overloaded) with on_failure = "deny", and ok with on_failure = "continue" (the failure
  // is logged). then() never runs inside grant().
  void grant(Worker& worker, std::weak_ptr<int> alive, audit::Record r,
             std::function<void(Result<void>)> then);

  // append_direct queues r with a durable callback that runs on the log's writer thread (for
  // callers that wait on a future, like the control socket's admin requests).
  Result<void> append_direct(audit::Record r, audit::AuditLog::Durable durable);

  bool deny_on_failure() const { return deny_on_failure_; }

 private:
  // failed / written track the log's health for the daemon's own log: one line when records
  // start failing, one when they are written again.
  void failed(const Error& e);
  void written();

  audit::AuditLog* log_;
  bool deny_on_failure_;
  std::atomic<bool> failing_{false};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace touchgate::gateway
