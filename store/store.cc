#include "store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "ssh/key.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace touchgate::store {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr size_t kMaxPrincipal = 256;
constexpr size_t kMaxLabel = 256;

constexpr std::array<std::pair<KeyKind, std::string_view>, 2> kKinds = {{
    {KeyKind::kFido2, "fido2"},
    {KeyKind::kPiv, "piv"},
}};

constexpr std::array<std::pair<KeyStatus, std::string_view>, 4> kStatuses = {{
    {KeyStatus::kActive, "active"},
    {KeyStatus::kPending, "pending"},
    {KeyStatus::kRevoked, "revoked"},
    {KeyStatus::kSuspectedClone, "suspected-clone"},
}};

bool parse_status(std::string_view name, KeyStatus* out) {
  for (const auto& [status, text] : kStatuses) {
    if (text == name) {
      *out = status;
      return true;
    }
  }
  return false;
}

// Every SELECT of a key returns these columns in this order (see read_key).
constexpr const char* kFindKey =
    "SELECT id, principal, key_blob, fingerprint, key_type, kind, label, pin_required, "
    "touch_proven, status, status_reason, status_changed_at, created_at, last_used_at, "
    "last_counter FROM keys WHERE fingerprint = ?1";
constexpr const char* kListKeys =
    "SELECT id, principal, key_blob, fingerprint, key_type, kind, label, pin_required, "
    "touch_proven, status, status_reason, status_changed_at, created_at, last_used_at, "
    "last_counter FROM keys ORDER BY principal, id";
constexpr const char* kListKeysOf =
    "SELECT id, principal, key_blob, fingerprint, key_type, kind, label, pin_required, "
    "touch_proven, status, status_reason, status_changed_at, created_at, last_used_at, "
    "last_counter FROM keys WHERE principal = ?1 ORDER BY id";
constexpr const char* kInsertKey =
    "INSERT INTO keys (principal, key_blob, fingerprint, key_type, kind, label, pin_required, "
    "status, status_changed_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8, ?8)";
constexpr const char* kSetStatus =
    "UPDATE keys SET status = ?1, status_reason = ?2, status_changed_at = ?3 WHERE id = ?4";
constexpr const char* kReactivate =
    "UPDATE keys SET status = 'active', status_reason = '', status_changed_at = ?1, "
    "last_counter = NULL WHERE id = ?2 AND status = 'suspected-clone'";
constexpr const char* kTouch =
    "UPDATE keys SET last_counter = ?1, last_used_at = ?2 WHERE id = ?3 AND status = 'active'";

Result<EnrolledKey> read_key(const sqlite::Query& q) {
  EnrolledKey k;
  k.id = q.int64(0);
  k.principal = q.text(1);
  k.key_blob = q.blob(2);
  k.fingerprint = q.text(3);
  k.key_type = q.text(4);
  const std::string kind = q.text(5);
  if (!parse_kind(kind, &k.kind)) {
    return fail("store_corrupt", fmt::format("key {} has an unknown kind", k.fingerprint));
  }
  k.label = q.text(6);
  k.pin_required = q.int64(7) != 0;
  k.touch_proven = q.text(8);
  const std::string status = q.text(9);
  if (!parse_status(status, &k.status)) {
    return fail("store_corrupt", fmt::format("key {} has an unknown status", k.fingerprint));
  }
  k.status_reason = q.text(10);
  k.status_changed_at = q.int64(11);
  k.created_at = q.int64(12);
  k.last_used_at = q.int64(13);
  if (!q.is_null(14)) {
    const int64_t counter = q.int64(14);
    if (counter < 0 || counter > int64_t{UINT32_MAX}) {
      return fail("store_corrupt", fmt::format("key {} has an invalid counter", k.fingerprint));
    }
    k.last_counter = static_cast<uint32_t>(counter);
  }
  return k;
}

// read_keys collects every row of an already bound query.
Result<std::vector<EnrolledKey>> read_keys(sqlite::Query& q) {
  std::vector<EnrolledKey> out;
  for (;;) {
    auto row = q.next();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return out;
    auto key = read_key(q);
    if (!key) return tl::unexpected(key.error());
    out.push_back(std::move(*key));
  }
}

// printable_text is true when s has no control characters (it ends up in tables and logs).
bool printable_text(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

Result<void> check_new_key_text(const NewKey& key) {
  if (key.principal.empty() || key.principal.size() > kMaxPrincipal ||
      !printable_text(key.principal)) {
    return fail("store_bad_principal",
                fmt::format("a principal must be 1 to {} printable characters", kMaxPrincipal));
  }
  if (key.label.size() > kMaxLabel || !printable_text(key.label)) {
    return fail("store_bad_label",
                fmt::format("a label must be at most {} printable characters", kMaxLabel));
  }
  return {};
}

// create_private_file makes path a regular file with mode 0600 when it does not exist yet (an
// existing file keeps its mode); symbolic links are refused.
Result<void> create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
  if (fd < 0) {
    return fail("store_open_failed",
                fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  if (!regular) return fail("store_open_failed", fmt::format("{}: not a regular file", path));
  return {};
}

// in_open prefixes the database path to an error of open(); store_io becomes store_open_failed.
Error in_open(const std::string& path, Error e) {
  if (e.code == "store_io") e.code = "store_open_failed";
  e.message = fmt::format("{}: {}", path, e.message);
  return e;
}

}  // namespace

std::string_view kind_name(KeyKind kind) {
  for (const auto& [k, text] : kKinds) {
    if (k == kind) return text;
  }
  return "unknown";
}

bool parse_kind(std::string_view name, KeyKind* out) {
  for (const auto& [kind, text] : kKinds) {
    if (text == name) {
      *out = kind;
      return true;
    }
  }
  return false;
}

std::string_view status_name(KeyStatus status) {
  for (const auto& [s, text] : kStatuses) {
    if (s == status) return text;
  }
  return "unknown";
}

std::string default_database_path(const std::string& state_dir) {
  if (!state_dir.empty() && state_dir.back() == '/') return state_dir + "touchgate.db";
  return state_dir + "/touchgate.db";
}

struct Store::Db {
  sqlite::DbPtr handle;  // first member: closed after every statement is finalized
  sqlite::Statement find_key;
  sqlite::Statement list_keys;
  sqlite::Statement list_keys_of;
  sqlite::Statement insert_key;
  sqlite::Statement set_status;
  sqlite::Statement reactivate;
  sqlite::Statement touch;

  sqlite3* get() const { return handle.get(); }

  // find looks a key up by fingerprint; nullopt when there is none.
  Result<std::optional<EnrolledKey>> find(std::string_view fingerprint) const {
    sqlite::Query q(find_key);
    q.bind(fingerprint);
    auto row = q.next();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<EnrolledKey>();
    auto key = read_key(q);
    if (!key) return tl::unexpected(key.error());
    return std::optional<EnrolledKey>(std::move(*key));
  }

  // find_existing is find() where a missing key is "store_no_such_key".
  Result<EnrolledKey> find_existing(std::string_view fingerprint) const {
    auto key = find(fingerprint);
    if (!key) return tl::unexpected(key.error());
    if (!*key) {
      return fail("store_no_such_key",
                  fmt::format("no key with fingerprint {} is enrolled", fingerprint));
    }
    return std::move(**key);
  }
};

Store::Store(std::unique_ptr<Db> db) : db_(std::move(db)) {}

Store::~Store() = default;

namespace {

// configure puts a freshly opened connection in WAL mode with our pragmas and migrates the
// schema. Idempotent. *retry is set when the failure may be another opener's doing.
Result<void> configure(sqlite3* raw, const std::string& path, bool* retry) {
  *retry = false;
  // The journal mode is stored in the file; switching needs a moment alone with it, which the
  // busy timeout waits for. Reading it first also tells a file that is not a database.
  {
    auto mode = sqlite::Statement::prepare(raw, "PRAGMA journal_mode = WAL");
    if (!mode) return tl::unexpected(in_open(path, mode.error()));
    sqlite::Query q(*mode);
    auto row = q.next();
    if (!row) return tl::unexpected(in_open(path, row.error()));
    if (!*row || q.text(0) != "wal") {
      *retry = true;  // SQLite keeps the old mode when it cannot have the file alone
      return fail("store_open_failed",
                  fmt::format("{}: cannot switch the database to WAL journal mode", path));
    }
  }
  if (auto r = sqlite::exec(raw,
                            "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
                            "PRAGMA trusted_schema = OFF;",
                            "store_open_failed", "cannot configure the database");
      !r) {
    return tl::unexpected(in_open(path, r.error()));
  }
  if (auto r = migrate(raw); !r) return tl::unexpected(in_open(path, r.error()));
  return {};
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  if (auto r = create_private_file(path); !r) return tl::unexpected(r.error());

  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  auto db = std::make_unique<Db>();
  db->handle.reset(raw);
  if (rc != SQLITE_OK) {
    return tl::unexpected(
        in_open(path, sqlite::error(raw, rc, "store_open_failed", "cannot open the database")));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);

  // Setting up a fresh file races with other openers (another gateway, the CLI): SQLite answers
  // some of these steps with "database is locked" without waiting in its busy handler (the
  // switch to WAL, a schema read during another opener's migration). Every step is idempotent:
  // retry the whole setup until the busy timeout has passed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (int attempt = 0;; ++attempt) {
    bool retry = false;
    auto r = configure(raw, path, &retry);
    if (r) break;
    const int code = sqlite3_extended_errcode(raw) & 0xff;
    const bool busy = retry || code == SQLITE_BUSY || code == SQLITE_LOCKED;
    if (!busy || std::chrono::steady_clock::now() >= deadline) return tl::unexpected(r.error());
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + (attempt % 8) * 5));
  }

  const std::array<std::pair<sqlite::Statement*, const char*>, 7> statements = {{
      {&db->find_key, kFindKey},
      {&db->list_keys, kListKeys},
      {&db->list_keys_of, kListKeysOf},
      {&db->insert_key, kInsertKey},
      {&db->set_status, kSetStatus},
      {&db->reactivate, kReactivate},
      {&db->touch, kTouch},
  }};
  for (const auto& [statement, sql] : statements) {
    auto prepared = sqlite::Statement::prepare(raw, sql);
    if (!prepared) {
      // The schema version matched, so a statement that does not compile means the tables are
      // not what that version defines.
      return fail("store_corrupt", fmt::format("{}: the database does not have the expected "
                                               "tables: {}",
                                               path, prepared.error().message));
    }
    *statement = std::move(*prepared);
  }
  return std::unique_ptr<Store>(new Store(std::move(db)));
}

Result<EnrolledKey> Store::add_key(const NewKey& key, int64_t now) {
  if (auto r = check_new_key_text(key); !r) return tl::unexpected(r.error());
  auto parsed = ssh::parse_public_key(key.key_blob);
  if (!parsed) return fail("store_bad_key", parsed.error().message);
  const bool security_key = ssh::is_security_key(parsed->type);
  if (key.kind == KeyKind::kFido2 && !security_key) {
    return fail("store_kind_mismatch",
                fmt::format("{} is not a FIDO2 security key type (sk-ecdsa or sk-ed25519); "
                            "enroll it as piv",
                            parsed->type_name()));
  }
  if (key.kind == KeyKind::kPiv && security_key) {
    return fail(
        "store_kind_mismatch",
        fmt::format("{} is a FIDO2 security key type; enroll it as fido2", parsed->type_name()));
  }
  const std::string fingerprint = parsed->fingerprint();

  auto tx = sqlite::Transaction::begin(db_->get());
  if (!tx) return tl::unexpected(tx.error());
  auto existing = db_->find(fingerprint);
  if (!existing) return tl::unexpected(existing.error());
  if (*existing) {
    return fail("store_duplicate_key", fmt::format("key {} is already enrolled for {}", fingerprint,
                                                   (*existing)->principal));
  }
  {
    sqlite::Query q(db_->insert_key);
    q.bind(key.principal)
        .bind(ssh::Bytes(parsed->blob))
        .bind(fingerprint)
        .bind(parsed->type_name())
        .bind(kind_name(key.kind))
        .bind(key.label)
        .bind(int64_t{key.pin_required ? 1 : 0})
        .bind(now);
    if (auto r = q.done(); !r) return tl::unexpected(r.error());
  }
  auto added = db_->find_existing(fingerprint);
  if (!added) return added;
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return added;
}

Result<std::vector<EnrolledKey>> Store::list_keys(std::optional<std::string_view> principal) {
  if (principal) {
    sqlite::Query q(db_->list_keys_of);
    q.bind(*principal);
    return read_keys(q);
  }
  sqlite::Query q(db_->list_keys);
  return read_keys(q);
}

Result<EnrolledKey> Store::find_key(std::string_view fingerprint) {
  return db_->find_existing(fingerprint);
}

Result<EnrolledKey> Store::revoke_key(std::string_view fingerprint, int64_t now) {
  auto tx = sqlite::Transaction::begin(db_->get());
  if (!tx) return tl::unexpected(tx.error());
  auto key = db_->find_existing(fingerprint);
  if (!key) return key;
  if (key->status == KeyStatus::kRevoked) {
    return fail("store_already_revoked",
                fmt::format("key {} of {} is already revoked", key->fingerprint, key->principal));
  }
  std::string reason = fmt::format("revoked while {}", status_name(key->status));
  if (!key->status_reason.empty()) reason += " (" + key->status_reason + ")";
  {
    sqlite::Query q(db_->set_status);
    q.bind(status_name(KeyStatus::kRevoked)).bind(reason).bind(now).bind(key->id);
    if (auto r = q.done(); !r) return tl::unexpected(r.error());
  }
  auto revoked = db_->find_existing(fingerprint);
  if (!revoked) return revoked;
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return revoked;
}

Result<EnrolledKey> Store::clear_clone(std::string_view fingerprint, int64_t now) {
  auto tx = sqlite::Transaction::begin(db_->get());
  if (!tx) return tl::unexpected(tx.error());
  auto key = db_->find_existing(fingerprint);
  if (!key) return key;
  if (key->status != KeyStatus::kSuspectedClone) {
    return fail("store_not_suspected",
                fmt::format("key {} of {} is {}, not a suspected clone", key->fingerprint,
                            key->principal, status_name(key->status)));
  }
  {
    sqlite::Query q(db_->reactivate);
    q.bind(now).bind(key->id);
    if (auto r = q.done(); !r) return tl::unexpected(r.error());
    if (q.changes() != 1) return fail("store_io", "the key changed during its transaction");
  }
  auto cleared = db_->find_existing(fingerprint);
  if (!cleared) return cleared;
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return cleared;
}

Result<TouchOutcome> Store::record_touch(std::string_view fingerprint, KeyKind kind,
                                         uint32_t counter, int64_t now) {
  auto tx = sqlite::Transaction::begin(db_->get());
  if (!tx) return tl::unexpected(tx.error());
  auto found = db_->find(fingerprint);
  if (!found) return tl::unexpected(found.error());
  if (!*found || (*found)->status != KeyStatus::kActive) return TouchOutcome::kNotActive;
  const EnrolledKey& key = **found;
  if (key.kind != kind) {
    return fail("store_kind_mismatch",
                fmt::format("key {} is enrolled as {}, not {}", key.fingerprint,
                            kind_name(key.kind), kind_name(kind)));
  }

  std::optional<int64_t> stored_counter;  // what to store: PIV keys keep none
  if (kind == KeyKind::kFido2) {
    const bool never_counts = counter == 0 && key.last_counter.value_or(0) == 0;
    if (!never_counts && key.last_counter && counter <= *key.last_counter) {
      const std::string reason = fmt::format(
          "signature counter {}: offered {}, last accepted {}",
          counter == *key.last_counter ? "repeated" : "went back", counter, *key.last_counter);
      {
        sqlite::Query q(db_->set_status);
        q.bind(status_name(KeyStatus::kSuspectedClone)).bind(reason).bind(now).bind(key.id);
        if (auto r = q.done(); !r) return tl::unexpected(r.error());
      }
      if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
      return TouchOutcome::kCounterRegression;
    }
    stored_counter = counter;
  }
  {
    sqlite::Query q(db_->touch);
    q.bind(stored_counter).bind(now).bind(key.id);
    if (auto r = q.done(); !r) return tl::unexpected(r.error());
    if (q.changes() != 1) return fail("store_io", "the key changed during its transaction");
  }
  if (auto r = tx->commit(); !r) return tl::unexpected(r.error());
  return TouchOutcome::kAccepted;
}

}  // namespace touchgate::store
