// Gateway state: enrolled keys, their counters and status; tables for sessions and enrollments.
// SQLite in state_dir now (PostgreSQL later behind the same interface).
//
// Discipline: WAL journal, busy timeout, every write in one IMMEDIATE transaction, schema
// migrations versioned with PRAGMA user_version (a database newer than this build is refused).
// Several processes (gateways, the CLI) may open one database at once; SQLite's locking keeps it
// consistent. A Store object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/reader.h"

namespace touchgate::store {

enum class KeyKind { kFido2, kPiv };
enum class KeyStatus { kActive, kPending, kRevoked, kSuspectedClone };

// kind_name is "fido2" or "piv"; parse_kind is its inverse (false for anything else).
std::string_view kind_name(KeyKind kind);
bool parse_kind(std::string_view name, KeyKind* out);
// status_name is "active", "pending", "revoked" or "suspected-clone".
std::string_view status_name(KeyStatus status);

struct EnrolledKey {
  int64_t id = 0;
  std::string principal;
  std::vector<uint8_t> key_blob;  // plain public key blob
  std::string fingerprint;        // "SHA256:..."
  std::string key_type;           // e.g. "sk-ecdsa-sha2-nistp256@openssh.com"
  KeyKind kind = KeyKind::kFido2;
  std::string label;
  bool pin_required = false;
  std::string touch_proven;  // what enrollment proved about touch ("" = nothing yet)
  KeyStatus status = KeyStatus::kActive;
  std::string status_reason;      // e.g. why it is a suspected clone
  int64_t status_changed_at = 0;  // unix seconds of the last status change (enrollment first)
  int64_t created_at = 0;         // unix seconds
  int64_t last_used_at = 0;       // 0 = never
  std::optional<uint32_t> last_counter;  // FIDO2: last accepted signature counter
};

struct NewKey {
  std::string principal;
  std::vector<uint8_t> key_blob;
  KeyKind kind = KeyKind::kFido2;
  std::string label;
  bool pin_required = false;
};

enum class TouchOutcome {
  kAccepted,           // counter advanced (or the key never counts); last_used/last_counter updated
  kCounterRegression,  // counter repeated or went back: the key is now suspected-clone
  kNotActive,          // the key is not active (revoked, suspected clone, pending) or gone
};

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // open opens (creating if missing, with mode 0600, and migrating) the database at path.
  // Codes: "store_open_failed", "store_schema_too_new", "store_corrupt".
  static Result<std::unique_ptr<Store>> open(const std::string& path);

  // add_key enrolls a key. The blob must parse as a plain public key; kFido2 needs an sk type,
  // kPiv a non-sk type (ed25519, ecdsa, rsa). A key (by fingerprint) can be enrolled once, for
  // one principal. The principal (1 to 256 bytes) and the label (at most 256 bytes) must not
  // contain control characters. A new key is active. Codes: "store_bad_key",
  // "store_kind_mismatch", "store_duplicate_key", "store_bad_principal", "store_bad_label",
  // "store_io".
  Result<EnrolledKey> add_key(const NewKey& key, int64_t now);
  // list_keys returns all keys (of one principal if given), ordered by principal, then id.
  Result<std::vector<EnrolledKey>> list_keys(std::optional<std::string_view> principal = {});
  // find_key looks a key up by fingerprint ("store_no_such_key").
  Result<EnrolledKey> find_key(std::string_view fingerprint);
  // revoke_key marks a key revoked ("store_no_such_key", "store_already_revoked").
  Result<EnrolledKey> revoke_key(std::string_view fingerprint, int64_t now);
  // clear_clone returns a suspected-clone key to active and forgets its last counter so that the
  // next touch is accepted ("store_no_such_key", "store_not_suspected").
  Result<EnrolledKey> clear_clone(std::string_view fingerprint, int64_t now);

  // record_touch is the counter check, atomic across processes: in one transaction, the key must
  // be active; for FIDO2 a counter of 0 is accepted while the stored counter is absent or 0 (keys
  // that never count); any other counter must be greater than the stored one. On success the
  // counter and last_used_at are stored. On a repeat or regression the key becomes
  // suspected-clone (status_reason names both counters) and kCounterRegression is returned.
  // kind kPiv ignores counter (and stores none). A kind other than the key's enrolled kind is
  // "store_kind_mismatch" and changes nothing. Code "store_io" for database failures.
  Result<TouchOutcome> record_touch(std::string_view fingerprint, KeyKind kind, uint32_t counter,
                                    int64_t now);

 private:
  struct Db;
  explicit Store(std::unique_ptr<Db> db);
  std::unique_ptr<Db> db_;
};

// default_database_path is "<state_dir>/touchgate.db".
std::string default_database_path(const std::string& state_dir);

}  // namespace touchgate::store
