#include "store/sqlite.h"

#include <fmt/format.h>

namespace touchgate::store::sqlite {

Error error(sqlite3* db, int rc, std::string_view code, std::string_view what) {
  const int primary = rc & 0xff;
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return Error{"store_corrupt", fmt::format("{}: {}", what, message)};
  }
  return Error{std::string(code), fmt::format("{}: {}", what, message)};
}

Result<void> exec(sqlite3* db, const char* sql, std::string_view code, std::string_view what) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return tl::unexpected(error(db, rc, code, what));
  return {};
}

Result<Statement> Statement::prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  Statement out;
  out.stmt_.reset(raw);
  if (rc != SQLITE_OK || raw == nullptr) {
    return tl::unexpected(error(db, rc == SQLITE_OK ? SQLITE_ERROR : rc, "store_io",
                                "cannot prepare a database statement"));
  }
  return out;
}

Query::Query(const Statement& statement) : stmt_(statement.get()) {}

Query::~Query() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Query& Query::bind(int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, next_index_++, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Query& Query::bind(std::string_view value) {
  const int rc = sqlite3_bind_text64(stmt_, next_index_++, value.data(), value.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Query& Query::bind(ssh::Bytes value) {
  // A zero-length blob is bound as an empty blob, not as NULL.
  static const uint8_t kEmpty = 0;
  const void* data = value.empty() ? &kEmpty : value.data();
  const int rc = sqlite3_bind_blob64(stmt_, next_index_++, data, value.size(), SQLITE_TRANSIENT);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Query& Query::bind(std::optional<int64_t> value) {
  if (value) return bind(*value);
  const int rc = sqlite3_bind_null(stmt_, next_index_++);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Query::next() {
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_rc_ != SQLITE_OK) {
    return tl::unexpected(error(db, bind_rc_, "store_io", "cannot bind a database value"));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return tl::unexpected(error(db, rc, "store_io", "database statement failed"));
}

Result<void> Query::done() {
  auto row = next();
  if (!row) return tl::unexpected(row.error());
  if (*row) return fail("store_io", "database statement returned an unexpected row");
  return {};
}

int Query::changes() const {
  return sqlite3_changes(sqlite3_db_handle(stmt_));
}

bool Query::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Query::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string Query::text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_, column);
  const int n = sqlite3_column_bytes(stmt_, column);
  if (p == nullptr || n <= 0) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::vector<uint8_t> Query::blob(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  const int n = sqlite3_column_bytes(stmt_, column);
  if (p == nullptr || n <= 0) return {};
  const auto* bytes = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(bytes, bytes + n);
}

Result<Transaction> Transaction::begin(sqlite3* db) {
  auto r = exec(db, "BEGIN IMMEDIATE", "store_io", "cannot start a database transaction");
  if (!r) return tl::unexpected(r.error());
  return Transaction(db);
}

Transaction::~Transaction() {
  // SQLite may already have rolled back on its own after some errors (then autocommit is on).
  if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Result<void> Transaction::commit() {
  auto r = exec(db_, "COMMIT", "store_io", "cannot commit a database transaction");
  if (!r) return r;  // still open: the destructor rolls it back
  db_ = nullptr;
  return {};
}

}  // namespace touchgate::store::sqlite
