// RAII over the SQLite C API for the store: a connection handle, prepared statements, one
// execution of a statement (which resets it when done) and IMMEDIATE transactions (which roll
// back unless committed). SQL text is always a constant; values are only ever bound.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssh/error.h"
#include "ssh/reader.h"

namespace touchgate::store::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

// error makes an Error with `code` and "what: <SQLite's message>"; SQLITE_CORRUPT and
// SQLITE_NOTADB always give "store_corrupt".
Error error(sqlite3* db, int rc, std::string_view code, std::string_view what);

// exec runs constant SQL (one or more statements, no values) with sqlite3_exec.
Result<void> exec(sqlite3* db, const char* sql, std::string_view code, std::string_view what);

// A prepared statement, kept for the life of its connection (which it must not outlive).
class Statement {
 public:
  Statement() = default;
  // prepare compiles constant SQL; code "store_io" (or "store_corrupt") on failure.
  static Result<Statement> prepare(sqlite3* db, std::string_view sql);

  sqlite3_stmt* get() const { return stmt_.get(); }

 private:
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
};

// Query is one execution of a Statement: bind values in parameter order, then step. The
// statement is reset and its bindings cleared when the Query goes away, so that it holds no read
// transaction open afterwards. Errors ("store_io") are reported by next()/done(), including a
// failed bind.
class Query {
 public:
  explicit Query(const Statement& statement);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int64_t value);
  Query& bind(std::string_view value);
  Query& bind(ssh::Bytes value);
  Query& bind(std::optional<int64_t> value);  // NULL when empty

  // next steps once: true when a row is available, false when the statement is done.
  Result<bool> next();
  // done steps a statement that returns no rows to completion.
  Result<void> done();
  // changes is the number of rows the last done() inserted, updated or deleted.
  int changes() const;

  bool is_null(int column) const;
  int64_t int64(int column) const;
  std::string text(int column) const;
  std::vector<uint8_t> blob(int column) const;

 private:
  sqlite3_stmt* stmt_;
  int next_index_ = 1;
  int bind_rc_ = SQLITE_OK;
};

// Transaction is BEGIN IMMEDIATE (the write lock, waiting up to the busy timeout) ... COMMIT, or
// ROLLBACK when it goes away uncommitted.
class Transaction {
 public:
  // begin takes the write lock; code "store_io" when it cannot (e.g. busy past the timeout).
  static Result<Transaction> begin(sqlite3* db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Result<void> commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;  // nullptr once committed or rolled back
};

}  // namespace touchgate::store::sqlite
