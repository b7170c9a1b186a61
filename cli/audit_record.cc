#include "cli/audit_record.h"

#include <unistd.h>

#include <cstdlib>
#include <future>
#include <vector>

#include <fmt/format.h>

#include "audit/log.h"
#include "cli/control.h"
#include "gateway/config_bridge.h"
#include "policy/config.h"

namespace touchgate::cli {
namespace {

// write_directly appends the record to the log itself (no gateway is running).
Result<void> write_directly(const policy::Config& config, gateway::KeyChange change,
                            const store::EnrolledKey& key) {
  auto log = audit::AuditLog::open(gateway::audit_options(config.audit));
  if (!log) return tl::unexpected(log.error());
  audit::Record r = audit::admin_record(gateway::key_change_event(change), ::getuid());
  r.str("via", "direct");
  r.str("user", key.principal).str("key_fp", key.fingerprint);
  r.str("kind", store::kind_name(key.kind)).str("label", key.label);
  r.boolean("pin_required", key.pin_required).str("status", store::status_name(key.status));
  auto done = std::make_shared<std::promise<Result<uint64_t>>>();
  auto durable = done->get_future();
  auto queued = (*log)->append(std::move(r), [done](Result<uint64_t> seq) {
    done->set_value(std::move(seq));
  });
  if (!queued) return queued;
  auto seq = durable.get();
  // close() writes a checkpoint over the new record and releases the log for the gateway.
  auto closed = (*log)->close();
  if (!seq) return tl::unexpected(seq.error());
  if (!closed) return closed;
  return {};
}

}  // namespace

Result<void> record_key_change(const std::filesystem::path& config_file,
                               gateway::KeyChange change, const store::EnrolledKey& key) {
  auto config = policy::load_config(config_file);
  if (!config) return tl::unexpected(config.error());
  gateway::ControlRequest request;
  request.verb = gateway::ControlVerb::kAuditKey;
  request.change = change;
  request.fingerprint = key.fingerprint;
  auto answered = control_exchange(config->server.control_socket, request);
  if (answered) return {};
  if (answered.error().code != "control_unreachable") return tl::unexpected(answered.error());
  // No gateway listens: this command writes the record.
  return write_directly(*config, change, key);
}

}  // namespace touchgate::cli
