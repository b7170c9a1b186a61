// The store's tables and their migrations, versioned with PRAGMA user_version.
#pragma once

#include <sqlite3.h>

#include "ssh/error.h"

namespace touchgate::store {

// kSchemaVersion is the schema version this build reads and writes.
inline constexpr int kSchemaVersion = 1;

// migrate brings an open database to kSchemaVersion: in one IMMEDIATE transaction it reads
// PRAGMA user_version and applies every newer migration in order, each ending by setting
// user_version to its own number; either all of them are applied or none. Codes:
//   store_schema_too_new  user_version is greater than kSchemaVersion (a newer touchgate wrote it)
//   store_corrupt         not a database, or a database of something else (tables, version 0)
//   store_io              any other database failure
Result<void> migrate(sqlite3* db);

// schema_version reads PRAGMA user_version ("store_io", "store_corrupt").
Result<int> schema_version(sqlite3* db);

}  // namespace touchgate::store
