#include "store/schema.h"

#include <array>
#include <string>

#include <fmt/format.h>

#include "store/sqlite.h"

namespace touchgate::store {
namespace {

struct Migration {
  int version;
  const char* sql;  // constant; ends by setting user_version to `version`
};

// Times are unix seconds. Text columns that hold names from a fixed set are CHECKed so that a
// stray value cannot reach the code that maps them back to enums.
constexpr const char* kMigration1 = R"sql(
CREATE TABLE keys (
  id INTEGER PRIMARY KEY,
  principal TEXT NOT NULL CHECK (typeof(principal) = 'text' AND length(principal) > 0),
  key_blob BLOB NOT NULL CHECK (typeof(key_blob) = 'blob'),
  fingerprint TEXT NOT NULL UNIQUE CHECK (typeof(fingerprint) = 'text'),
  key_type TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('fido2', 'piv')),
  label TEXT NOT NULL DEFAULT '',
  pin_required INTEGER NOT NULL DEFAULT 0 CHECK (pin_required IN (0, 1)),
  touch_proven TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('active', 'pending', 'revoked', 'suspected-clone')),
  status_reason TEXT NOT NULL DEFAULT '',
  status_changed_at INTEGER NOT NULL CHECK (typeof(status_changed_at) = 'integer'),
  created_at INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
  last_used_at INTEGER NOT NULL DEFAULT 0 CHECK (typeof(last_used_at) = 'integer'),
  last_counter INTEGER CHECK (last_counter IS NULL OR
                              (typeof(last_counter) = 'integer' AND
                               last_counter BETWEEN 0 AND 4294967295))
);
CREATE INDEX keys_by_principal ON keys (principal, id);

CREATE TABLE sessions (
  id INTEGER PRIMARY KEY,
  principal TEXT NOT NULL,
  client TEXT NOT NULL,
  target TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  bytes_up INTEGER NOT NULL DEFAULT 0 CHECK (bytes_up >= 0),
  bytes_down INTEGER NOT NULL DEFAULT 0 CHECK (bytes_down >= 0),
  factor TEXT NOT NULL DEFAULT '',
  close_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_start ON sessions (started_at);

CREATE TABLE enrollments (
  id INTEGER PRIMARY KEY,
  principal TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('fido2', 'piv')),
  challenge BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  state TEXT NOT NULL
);
CREATE INDEX enrollments_by_principal ON enrollments (principal, id);

PRAGMA user_version = 1;
)sql";

constexpr std::array<Migration, 1> kMigrations = {{
    {1, kMigration1},
}};
static_assert(kMigrations.back().version == kSchemaVersion);

// has_tables is true when the database already holds tables (of any application).
Result<bool> has_tables(sqlite3* db) {
  auto statement = sqlite::Statement::prepare(db, "SELECT count(*) FROM sqlite_master");
  if (!statement) return tl::unexpected(statement.error());
  sqlite::Query q(*statement);
  auto row = q.next();
  if (!row) return tl::unexpected(row.error());
  return *row && q.int64(0) > 0;
}

}  // namespace

Result<int> schema_version(sqlite3* db) {
  auto statement = sqlite::Statement::prepare(db, "PRAGMA user_version");
  if (!statement) return tl::unexpected(statement.error());
  sqlite::Query q(*statement);
  auto row = q.next();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return fail("store_io", "PRAGMA user_version returned nothing");
  return static_cast<int>(q.int64(0));
}

Result<void> migrate(sqlite3* db) {
  // The usual case, an up-to-date database, needs no write lock.
  auto current = schema_version(db);
  if (!current) return tl::unexpected(current.error());
  if (*current == kSchemaVersion) return {};
  auto tx = sqlite::Transaction::begin(db);
  if (!tx) return tl::unexpected(tx.error());
  auto version = schema_version(db);
  if (!version) return tl::unexpected(version.error());
  if (*version > kSchemaVersion) {
    return fail("store_schema_too_new",
                fmt::format("database schema version {} is newer than this build's ({}); "
                            "use the touchgate release that wrote it",
                            *version, kSchemaVersion));
  }
  if (*version < 0) {
    return fail("store_corrupt", fmt::format("database schema version {} is invalid", *version));
  }
  if (*version == kSchemaVersion) return tx->commit();
  if (*version == 0) {
    auto tables = has_tables(db);
    if (!tables) return tl::unexpected(tables.error());
    if (*tables) {
      return fail("store_corrupt",
                  "the file is an SQLite database of something else (tables but no schema "
                  "version)");
    }
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= *version) continue;
    auto r =
        sqlite::exec(db, m.sql, "store_io",
                     fmt::format("cannot migrate the database to schema version {}", m.version));
    if (!r) return r;
  }
  auto after = schema_version(db);
  if (!after) return tl::unexpected(after.error());
  if (*after != kSchemaVersion) {
    return fail("store_io", fmt::format("migration left schema version {} instead of {}", *after,
                                        kSchemaVersion));
  }
  return tx->commit();
}

}  // namespace touchgate::store
