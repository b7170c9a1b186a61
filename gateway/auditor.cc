#include "gateway/auditor.h"

#include "gateway/log.h"
#include "gateway/worker.h"

namespace touchgate::gateway {

Error Auditor::refusal() {
  return Error{"audit_unavailable",
               "the gateway cannot write its audit log, so it grants no access until it can; "
               "try again later or tell an administrator"};
}

Error Auditor::refusal_for(const Error& e) {
  if (e.code == "audit_overloaded") {
    return Error{"audit_overloaded", "the gateway's audit log is overloaded; try again in a moment"};
  }
  return refusal();
}

void Auditor::failed(const Error& e) {
  failures_.fetch_add(1);
  if (!failing_.exchange(true)) {
    log_event(Level::kError, "audit_failing",
              {{"code", e.code},
               {"reason", e.message},
               {"on_failure", deny_on_failure_ ? "deny" : "continue"}});
  }
}

void Auditor::written() {
  if (failing_.load() && failing_.exchange(false)) {
    log_event(Level::kWarn, "audit_writing_again", {{"records_lost", failures_.exchange(0)}});
  }
}

void Auditor::note(audit::Record r) {
  if (log_ == nullptr) return;
  auto queued = log_->append(std::move(r), [this](Result<uint64_t> seq) {
    if (seq) {
      written();
    } else {
      failed(seq.error());
    }
  });
  if (!queued) failed(queued.error());
}

Result<void> Auditor::append_direct(audit::Record r, audit::AuditLog::Durable durable) {
  if (log_ == nullptr) return fail("audit_unavailable", "the gateway has no audit log");
  auto queued = log_->append(std::move(r), [this, durable = std::move(durable)](Result<uint64_t> seq) {
    if (seq) {
      written();
    } else {
      failed(seq.error());
    }
    durable(std::move(seq));
  });
  if (!queued) failed(queued.error());
  return queued;
}

void Auditor::grant(Worker& worker, std::weak_ptr<int> alive, audit::Record r,
                    std::function<void(Result<void>)> then) {
  auto answer = [this, w = &worker, alive, then = std::move(then)](Result<void> result) mutable {
    if (!result) {
      failed(result.error());
      if (!deny_on_failure_) result = {};
    } else {
      written();
    }
    w->post([alive, then = std::move(then), result = std::move(result)]() mutable {
      if (!alive.expired()) then(std::move(result));
    });
  };
  if (log_ == nullptr) {
    answer({});
    return;
  }
  // The durable callback runs on the log's writer thread; answer() only posts.
  auto shared = std::make_shared<decltype(answer)>(std::move(answer));
  auto queued = log_->append(std::move(r), [shared](Result<uint64_t> seq) {
    if (seq) {
      (*shared)({});
    } else {
      (*shared)(tl::unexpected(seq.error()));
    }
  });
  if (!queued) (*shared)(tl::unexpected(queued.error()));
}

}  // namespace touchgate::gateway
