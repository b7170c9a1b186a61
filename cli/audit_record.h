// The audit record of a change `touchgate keys` made to the enrolled keys.
#pragma once

#include <filesystem>
#include <string>

#include "gateway/control_protocol.h"
#include "ssh/error.h"
#include "store/store.h"

namespace touchgate::cli {

// record_key_change has the change on record before the command reports success: through the
// running gateway's control socket (which writes the record, with the caller's uid as the kernel
// reports it, and answers once it is durable), or, when no gateway runs, by writing the record
// to the audit log of the configuration ([audit] dir and key) itself. Codes: the control
// socket's, and audit::AuditLog's (audit_locked when another process writes the log).
Result<void> record_key_change(const std::filesystem::path& config_file,
                               gateway::KeyChange change, const store::EnrolledKey& key);

}  // namespace touchgate::cli
