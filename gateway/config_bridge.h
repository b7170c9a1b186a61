// From the configuration file's sections to the options of the parts they configure, for the
// daemon and the admin CLI alike (header only: both already depend on policy/, audit/ and
// pkcs11/).
#pragma once

#include "audit/log.h"
#include "pkcs11/open.h"
#include "policy/config.h"

namespace touchgate::gateway {

// audit_options: [audit] as the audit log's open options. A key in a token is opened by the log
// (open_key), after it has taken its directory's lock.
inline audit::Options audit_options(const policy::AuditConfig& ac) {
  audit::Options o;
  o.dir = ac.dir;
  o.key_path = ac.key;
  o.public_key_path = ac.public_key;
  if (!ac.pkcs11_uri.empty()) {
    pkcs11::CaKeyConfig kc;
    kc.pkcs11_uri = ac.pkcs11_uri;
    kc.module = ac.pkcs11_module;
    kc.pin_file = ac.pin_file;
    o.open_key = [kc] { return pkcs11::open_signer(kc, pkcs11::kAuditKey); };
  }
  o.max_segment_bytes = ac.max_segment_size;
  o.max_segment_age = ac.max_segment_age;
  o.checkpoint_every = ac.checkpoint_every;
  o.checkpoint_interval = ac.checkpoint_interval;
  return o;
}

// ca_key_config: [ca] as the description of the CA key to open.
inline pkcs11::CaKeyConfig ca_key_config(const policy::CaConfig& ca) {
  pkcs11::CaKeyConfig kc;
  kc.pkcs11_uri = ca.pkcs11_uri;
  kc.module = ca.pkcs11_module;
  kc.pin_file = ca.pin_file;
  kc.key_file = ca.key_file;
  return kc;
}

}  // namespace touchgate::gateway
