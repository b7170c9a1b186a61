// State shared by the acceptor and every worker. Read-mostly: the configuration and trust policy
// are immutable snapshots; counters are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "policy/config.h"
#include "policy/engine.h"
#include "policy/lint.h"
#include "ssh/signer.h"
#include "ssh/validate.h"

namespace touchgate::gateway {

class Auditor;
class Offload;
class StoreService;

// Snapshot: one loaded configuration. Connections take the current one for each decision;
// a reload replaces it atomically (running channels keep the one they were decided under).
struct Snapshot {
  std::shared_ptr<const policy::Config> config;
  std::shared_ptr<const ssh::TrustPolicy> trust;
  std::shared_ptr<const policy::Policy> policy;  // compiled from config
  uint64_t generation = 1;                       // 1 at start, +1 per successful reload
};

// load_snapshot reads, checks and compiles a configuration file (config, trust, policy), with
// the checks of `touchgate policy check` (policy::check_lint: a lint error refuses the file,
// policy_invalid); the error carries the line-numbered message. `findings` (when not null)
// receives what lint found, also on refusal. Used at start, by `touchgated -t` and by reload.
Result<Snapshot> load_snapshot(const std::filesystem::path& file,
                               std::vector<policy::Finding>* findings = nullptr);

class Runtime {
 public:
  Snapshot snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshot_;
  }
  void set_snapshot(Snapshot s) {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_ = std::move(s);
  }

  std::atomic<uint64_t> next_connection_id{1};
  std::atomic<int> unauthenticated{0};  // connections not yet past authentication
  std::atomic<int> connections{0};      // all live connections
  std::atomic<bool> draining{false};
  std::atomic<int> resolving{0};        // name lookups running on helper threads
  StoreService* store = nullptr;        // enrolled keys and counters (set before workers start)
  Auditor* auditor = nullptr;           // the audit log (set before workers start)
  ssh::Signer* ca = nullptr;            // the CA key of terminating mode ([ca]), or null
  Offload* offload = nullptr;           // blocking work (CA signing), off the workers
  Offload* recorder = nullptr;          // recordings' disk work (SHA-256, write, fsync), or null
  std::string instance;                 // random id of this gateway process (in challenges)

 private:
  mutable std::mutex mu_;
  Snapshot snapshot_;
};

}  // namespace touchgate::gateway
