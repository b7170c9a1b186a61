#include "gateway/admin.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>

#include <fmt/format.h>

#include "audit/record.h"
#include "gateway/auditor.h"
#include "gateway/connection.h"
#include "gateway/log.h"
#include "gateway/store_service.h"

namespace touchgate::gateway {

namespace {

// Gathered collects the workers' answers to one question.
template <class T>
struct Gathered {
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = 0;
  T value{};
};

// ask_workers runs fn(worker, value) on every worker thread and waits until all have answered or
// the deadline passed (control_timeout). A late answer lands in the shared state and is dropped.
template <class T>
Result<T> ask_workers(const std::vector<std::unique_ptr<Worker>>& workers,
                      std::function<void(Worker&, T&)> fn) {
  auto g = std::make_shared<Gathered<T>>();
  g->pending = workers.size();
  for (const auto& w : workers) {
    Worker* worker = w.get();
    worker->post([g, worker, fn] {
      T mine{};
      fn(*worker, mine);
      std::lock_guard<std::mutex> lock(g->mu);
      if constexpr (std::is_arithmetic_v<T>) {
        g->value += mine;
      } else {
        for (auto& item : mine) g->value.push_back(std::move(item));
      }
      --g->pending;
      g->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(g->mu);
  if (!g->cv.wait_for(lock, Admin::kWorkerDeadline, [&] { return g->pending == 0; })) {
    return fail("control_timeout",
                fmt::format("{} of {} workers did not answer within {} ms", g->pending,
                            workers.size(), Admin::kWorkerDeadline.count()));
  }
  return std::move(g->value);
}

}  // namespace

namespace {

// same compares one setting; listen addresses by their text.
template <class T>
bool same(const T& a, const T& b) {
  return a == b;
}
bool same(const std::vector<policy::ListenAddress>& a,
          const std::vector<policy::ListenAddress>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](auto& x, auto& y) {
           return x.to_string() == y.to_string();
         });
}

// each_restart_only calls f(name, running value, loaded value) for every setting that is read
// only at start: the one list both restart_only_changes and keep_restart_only go by. A null name
// is a value derived from the named ones (kept with them, never reported on its own).
template <class Loaded, class F>
void each_restart_only(const policy::Config& running, Loaded& loaded, F&& f) {
  f("server.listen", running.server.listen, loaded.server.listen);
  f("server.host_keys", running.server.host_keys, loaded.server.host_keys);
  f("server.state_dir", running.server.state_dir, loaded.server.state_dir);
  f("server.workers", running.server.workers, loaded.server.workers);
  f("server.control_socket", running.server.control_socket, loaded.server.control_socket);
  f("server.admin_group", running.server.admin_group, loaded.server.admin_group);
  const policy::AuditConfig& ra = running.audit;
  auto& la = loaded.audit;
  f("audit.dir", ra.dir, la.dir);
  f("audit.key", ra.key, la.key);
  f("audit.pkcs11_uri", ra.pkcs11_uri, la.pkcs11_uri);
  f("audit.pkcs11_module", ra.pkcs11_module, la.pkcs11_module);
  f("audit.pin_file", ra.pin_file, la.pin_file);
  f(nullptr, ra.public_key, la.public_key);
  f("audit.max_segment_size", ra.max_segment_size, la.max_segment_size);
  f("audit.max_segment_age", ra.max_segment_age, la.max_segment_age);
  f("audit.checkpoint_every", ra.checkpoint_every, la.checkpoint_every);
  f("audit.checkpoint_interval", ra.checkpoint_interval, la.checkpoint_interval);
  f("audit.on_failure", ra.deny_on_failure, la.deny_on_failure);
  f("audit.syslog", ra.syslog, la.syslog);
  f("audit.syslog_socket", ra.syslog_socket, la.syslog_socket);
  f("audit.syslog_facility", ra.syslog_facility, la.syslog_facility);
  // The CA key is opened at start (cert_lifetime is read for every certificate: reloadable).
  f("ca.pkcs11_uri", running.ca.pkcs11_uri, loaded.ca.pkcs11_uri);
  f("ca.pkcs11_module", running.ca.pkcs11_module, loaded.ca.pkcs11_module);
  f("ca.pin_file", running.ca.pin_file, loaded.ca.pin_file);
  f("ca.key_file", running.ca.key_file, loaded.ca.key_file);
}

}  // namespace

std::vector<std::string> restart_only_changes(const policy::Config& running,
                                              const policy::Config& loaded) {
  std::vector<std::string> changed;
  each_restart_only(running, loaded, [&changed](const char* name, const auto& r, const auto& l) {
    if (name != nullptr && !same(r, l)) changed.emplace_back(name);
  });
  return changed;
}

void keep_restart_only(const policy::Config& running, policy::Config* loaded) {
  each_restart_only(running, *loaded,
                    [](const char*, const auto& r, auto& l) { l = r; });
}

void log_findings(std::string_view by, std::string_view file,
                  const std::vector<policy::Finding>& findings) {
  size_t notes = 0;
  for (const auto& f : findings) {
    if (f.severity == policy::Severity::kNote) {
      ++notes;
      continue;
    }
    log_event(f.severity == policy::Severity::kError ? Level::kError : Level::kWarn, "policy_lint",
              {{"by", by},
               {"file", file},
               {"line", f.line},
               {"rule", f.rule_id},
               {"severity", policy::severity_name(f.severity)},
               {"code", f.code},
               {"message", f.message}});
  }
  if (notes > 0) {
    log_event(Level::kInfo, "policy_lint_notes",
              {{"by", by},
               {"file", file},
               {"count", notes},
               {"note", "touchgate policy check lists them"}});
  }
}

Result<Reloaded> Admin::reload(std::string_view by, uint32_t uid) {
  const Snapshot running = runtime_.snapshot();
  std::vector<policy::Finding> findings;
  auto loaded = load_snapshot(config_, &findings);
  const std::string via = by == "SIGHUP" ? "sighup" : "control";
  log_findings(by, config_.string(), findings);
  if (!loaded) {
    if (runtime_.auditor != nullptr) {
      audit::Record r = audit::admin_record("admin_reload", uid);
      r.str("via", via).str("outcome", "deny").str("reason", loaded.error().code);
      r.str("message", loaded.error().message);
      runtime_.auditor->note(std::move(r));
    }
    log_event(Level::kWarn, "reload_failed",
              {{"by", by},
               {"generation", running.generation},
               {"code", loaded.error().code},
               {"error", loaded.error().message}});
    return tl::unexpected(loaded.error());
  }
  Snapshot next = std::move(*loaded);
  auto kept = restart_only_changes(*running.config, *next.config);
  if (!kept.empty()) {
    // What is already bound, opened and started stays as it is; the snapshot says so too.
    auto patched = std::make_shared<policy::Config>(*next.config);
    keep_restart_only(*running.config, patched.get());
    next.config = patched;
    next.policy = policy::Policy::compile(next.config);
    log_event(Level::kWarn, "reload_needs_restart",
              {{"settings", fmt::format("{}", fmt::join(kept, ","))},
               {"note",
                "changed in the file; the running values stay in effect until touchgated "
                "restarts"}});
  }
  next.generation = running.generation + 1;
  const uint64_t generation = next.generation;
  const bool reevaluate = next.config->policy.reevaluate;
  const size_t targets = next.config->targets.size();
  const size_t cas = next.trust->cas.size();
  runtime_.set_snapshot(std::move(next));
  if (runtime_.auditor != nullptr) {
    audit::Record r = audit::admin_record("admin_reload", uid);
    r.str("via", via).str("outcome", "allow").u64("generation", generation);
    if (!kept.empty()) r.str("restart_needed", fmt::format("{}", fmt::join(kept, ",")));
    runtime_.auditor->note(std::move(r));
  }
  log_event(Level::kInfo, "reload_ok",
            {{"generation", generation},
             {"by", by},
             {"targets", targets},
             {"cas", cas},
             {"reevaluate", reevaluate ? "true" : "false"}});
  // Connections take the new snapshot for their next decisions; running channels continue.
  for (const auto& w : workers_) {
    Worker* worker = w.get();
    worker->post([worker, reevaluate] {
      worker->for_each_connection([reevaluate](Connection& c) {
        c.refresh_snapshot();
        if (reevaluate) c.reevaluate();
      });
    });
  }
  return Reloaded{generation, std::move(kept), std::move(findings)};
}

Result<std::vector<SessionInfo>> Admin::list_sessions() {
  auto sessions = ask_workers<std::vector<SessionInfo>>(
      workers_, [](Worker& worker, std::vector<SessionInfo>& out) {
        worker.for_each_connection([&out](Connection& c) {
          if (c.authenticated()) out.push_back(c.session_info());
        });
      });
  if (!sessions) return sessions;
  std::sort(sessions->begin(), sessions->end(),
            [](const SessionInfo& a, const SessionInfo& b) { return a.id < b.id; });
  return sessions;
}

Result<size_t> Admin::kill(const ControlRequest& request, uint32_t uid) {
  const bool by_user = request.verb == ControlVerb::kSessionsKillUser;
  const uint64_t id = request.connection_id;
  const uint64_t channel = by_user ? 0 : request.channel;
  const std::string principal = request.principal;
  return ask_workers<size_t>(workers_, [by_user, id, channel, principal, uid](Worker& worker,
                                                                              size_t& n) {
    // Chosen first, killed after: killing does not change the worker's set of connections
    // (they are reaped later), but the choice should not depend on that.
    std::vector<Connection*> chosen;
    worker.for_each_connection([&](Connection& c) {
      if (!c.authenticated()) return;
      if (by_user ? c.login() == principal : c.id() == id) chosen.push_back(&c);
    });
    n = 0;
    for (Connection* c : chosen) {
      if (channel == 0) {
        c->kill_by_admin(uid);
        ++n;
      } else if (c->kill_channel_by_admin(channel, uid)) {
        ++n;
      }
    }
  });
}

std::string Admin::answer(const ControlRequest& request, uint32_t uid) {
  switch (request.verb) {
    case ControlVerb::kPing:
      return format_ok();
    case ControlVerb::kReload: {
      auto reloaded = reload("control", uid);
      if (!reloaded) return format_error(reloaded.error());
      std::string out = format_ok(fmt::format("generation {}", reloaded->generation));
      if (!reloaded->restart_needed.empty()) {
        out += fmt::format("restart-needed {}\n", fmt::join(reloaded->restart_needed, ","));
      }
      size_t notes = 0;
      for (const auto& f : reloaded->findings) {
        if (f.severity == policy::Severity::kNote) {
          ++notes;
        } else {
          out += format_finding_line("warning", policy::format_finding(config_.string(), f, false));
        }
      }
      if (notes > 0) out += fmt::format("notes {}\n", notes);
      return out;
    }
    case ControlVerb::kSessionsList: {
      auto sessions = list_sessions();
      if (!sessions) return format_error(sessions.error());
      std::string out = format_ok();
      for (const auto& s : *sessions) out += format_session(s);
      return out;
    }
    case ControlVerb::kSessionsKill:
    case ControlVerb::kSessionsKillUser: {
      auto killed = kill(request, uid);
      if (runtime_.auditor != nullptr) {
        audit::Record r = audit::admin_record("admin_session_kill", uid);
        r.str("request",
              request.verb == ControlVerb::kSessionsKillUser ? "--user " + request.principal
              : request.channel != 0 ? fmt::format("{}/{}", request.connection_id, request.channel)
                                     : std::to_string(request.connection_id));
        r.str("outcome", killed && *killed > 0 ? "allow" : "deny");
        r.u64("killed", killed ? *killed : 0);
        if (!killed) r.str("reason", killed.error().code);
        runtime_.auditor->note(std::move(r));
      }
      if (!killed) return format_error(killed.error());
      if (*killed == 0 && request.verb == ControlVerb::kSessionsKill && request.channel != 0) {
        return format_error(
            Error{"no_such_channel", fmt::format("no open channel {} on an authenticated session "
                                                 "with connection id {}",
                                                 request.channel, request.connection_id)});
      }
      if (*killed == 0) {
        const std::string what =
            request.verb == ControlVerb::kSessionsKillUser
                ? fmt::format("no authenticated session of user {}", request.principal)
                : fmt::format("no authenticated session with connection id {}",
                              request.connection_id);
        return format_error(Error{"no_such_session", what});
      }
      return format_ok(fmt::format("killed {}", *killed));
    }
    case ControlVerb::kAuditKey: {
      auto recorded = record_key_change(request, uid);
      if (!recorded) return format_error(recorded.error());
      return format_ok("recorded");
    }
  }
  return format_error(Error{"control_bad_request", "unknown request"});
}

Result<void> Admin::record_key_change(const ControlRequest& request, uint32_t uid) {
  if (runtime_.auditor == nullptr) return fail("audit_unavailable", "the gateway has no audit log");
  // What the store says about the key (the request names only its fingerprint).
  std::optional<store::EnrolledKey> key;
  if (runtime_.store != nullptr) {
    auto found = std::make_shared<std::promise<Result<store::EnrolledKey>>>();
    auto answer = found->get_future();
    const std::string fp = request.fingerprint;
    runtime_.store->submit([found, fp](store::Store* st) {
      if (st == nullptr) {
        found->set_value(tl::unexpected(Error{"store_io", "the key store is shut down"}));
      } else {
        found->set_value(st->find_key(fp));
      }
    });
    if (answer.wait_for(kWorkerDeadline) == std::future_status::ready) {
      auto k = answer.get();
      if (k) key = std::move(*k);
    }
  }
  audit::Record r = audit::admin_record(key_change_event(request.change), uid);
  r.str("via", "control");
  if (key) r.str("user", key->principal);
  r.str("key_fp", request.fingerprint);
  if (key) {
    r.str("kind", store::kind_name(key->kind)).str("label", key->label);
    r.boolean("pin_required", key->pin_required);
    r.str("status", store::status_name(key->status));
  }
  // Waited for here: the admin learns that the change is on record, durably, or that it is not.
  auto done = std::make_shared<std::promise<Result<uint64_t>>>();
  auto durable = done->get_future();
  Result<void> queued = runtime_.auditor->append_direct(std::move(r), [done](Result<uint64_t> seq) {
    done->set_value(std::move(seq));
  });
  if (!queued) return queued;
  if (durable.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    return fail("audit_timeout", "the audit record was not written within 5 s");
  }
  auto seq = durable.get();
  if (!seq) return tl::unexpected(seq.error());
  log_event(Level::kInfo, "key_change_recorded",
            {{"change", key_change_word(request.change)},
             {"key_fp", request.fingerprint},
             {"uid", uid},
             {"seq", *seq}});
  return {};
}

}  // namespace touchgate::gateway
