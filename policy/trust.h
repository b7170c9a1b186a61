// Builds the certificate trust policy (ssh::TrustPolicy) from the [trust] section: reads CA key
// files and the revocation list from disk.
#pragma once

#include "policy/config.h"
#include "ssh/validate.h"

namespace touchgate::policy {

// load_trust reads every user_ca_keys file (one or more OpenSSH public keys per file, '#' comments
// and blank lines skipped; certificates refused as CA keys; a file with no key is an error; CA
// names "<name>" or "<name>#<n>" when a file holds several keys) and the revoked_keys file (KRL or
// plain list). Any unreadable or malformed file is an error naming the file and line: the gateway
// must not start with a partial trust set. Codes "trust_invalid", "revoked_keys_invalid".
Result<ssh::TrustPolicy> load_trust(const TrustConfig& trust);

}  // namespace touchgate::policy
