#include "store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ssh/key.h"

namespace touchgate::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kNow = 1'800'000'000;

const std::string kDataDir = std::string(TOUCHGATE_TEST_DATA) + "/store/";

std::string read_text(const std::string& name) {
  std::ifstream in(kDataDir + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// blob decodes the one key line of a .pub file made by tests/data/store/generate.sh.
std::vector<uint8_t> blob(const std::string& name) {
  auto line = ssh::parse_key_line(read_text(name));
  EXPECT_TRUE(line.has_value()) << name << ": " << (line ? "" : line.error().message);
  return line ? line->blob : std::vector<uint8_t>{};
}

// fingerprint is what `ssh-keygen -lf` printed for the file (recorded by generate.sh).
std::string fingerprint(const std::string& name) {
  std::istringstream in(read_text("fingerprints.txt"));
  std::string file;
  std::string fp;
  while (in >> file >> fp) {
    if (file == name) return fp;
  }
  ADD_FAILURE() << "no fingerprint recorded for " << name;
  return {};
}

NewKey new_key(const std::string& principal, const std::string& file, KeyKind kind,
               const std::string& label = "", bool pin_required = false) {
  NewKey k;
  k.principal = principal;
  k.key_blob = blob(file);
  k.kind = kind;
  k.label = label;
  k.pin_required = pin_required;
  return k;
}

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/touchgate-store-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct RawDbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};

// RawDb opens a database with SQLite directly, to look at or tamper with what the store wrote.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    EXPECT_EQ(
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
        SQLITE_OK);
    db_.reset(raw);
    sqlite3_busy_timeout(raw, 5000);
  }
  void exec(const char* sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err != nullptr ? err : "");
    sqlite3_free(err);
  }
  // text returns the first column of the first row of a query ("" when there is none).
  std::string text(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_.get(), sql, -1, &stmt, nullptr), SQLITE_OK) << sql;
    std::string out;
    if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* p = sqlite3_column_text(stmt, 0);
      if (p != nullptr) out = reinterpret_cast<const char*>(p);
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  std::unique_ptr<sqlite3, RawDbCloser> db_;
};

mode_t file_mode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("touchgate.db");
    auto s = Store::open(path_);
    ASSERT_TRUE(s.has_value()) << s.error().code << ": " << s.error().message;
    store_ = std::move(*s);
  }

  EnrolledKey add(const std::string& principal, const std::string& file, KeyKind kind) {
    auto k = store_->add_key(new_key(principal, file, kind), kNow);
    EXPECT_TRUE(k.has_value()) << file << ": " << (k ? "" : k.error().message);
    return k ? *k : EnrolledKey{};
  }

  TouchOutcome touch(const std::string& fp, KeyKind kind, uint32_t counter, int64_t now = kNow) {
    auto r = store_->record_touch(fp, kind, counter, now);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    return r ? *r : TouchOutcome::kNotActive;
  }

  EnrolledKey find(const std::string& fp) {
    auto k = store_->find_key(fp);
    EXPECT_TRUE(k.has_value()) << fp << ": " << (k ? "" : k.error().message);
    return k ? *k : EnrolledKey{};
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

// --- names -----------------------------------------------------------------------------------

TEST(StoreNamesTest, KindsAndStatuses) {
  EXPECT_EQ(kind_name(KeyKind::kFido2), "fido2");
  EXPECT_EQ(kind_name(KeyKind::kPiv), "piv");
  KeyKind kind = KeyKind::kFido2;
  EXPECT_TRUE(parse_kind("piv", &kind));
  EXPECT_EQ(kind, KeyKind::kPiv);
  EXPECT_TRUE(parse_kind("fido2", &kind));
  EXPECT_EQ(kind, KeyKind::kFido2);
  EXPECT_FALSE(parse_kind("FIDO2", &kind));
  EXPECT_FALSE(parse_kind("", &kind));
  EXPECT_EQ(status_name(KeyStatus::kActive), "active");
  EXPECT_EQ(status_name(KeyStatus::kPending), "pending");
  EXPECT_EQ(status_name(KeyStatus::kRevoked), "revoked");
  EXPECT_EQ(status_name(KeyStatus::kSuspectedClone), "suspected-clone");
  EXPECT_EQ(default_database_path("/var/lib/touchgate"), "/var/lib/touchgate/touchgate.db");
  EXPECT_EQ(default_database_path("state/"), "state/touchgate.db");
}

// --- opening and migrations ------------------------------------------------------------------

TEST_F(StoreTest, OpenCreatesAPrivateWalDatabaseAtTheCurrentSchema) {
  EXPECT_EQ(file_mode(path_), 0600u);
  RawDb raw(path_);
  EXPECT_EQ(raw.text("PRAGMA user_version"), "1");
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  for (const char* table : {"keys", "sessions", "enrollments"}) {
    const std::string sql =
        std::string("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '") + table +
        "'";
    EXPECT_EQ(raw.text(sql.c_str()), table);
  }
}

TEST(StoreOpenTest, DatabaseAndItsWalAndShmFilesAreCreatedWith0600WhateverTheUmask) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  const mode_t old = ::umask(0);
  auto store = Store::open(path);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  ASSERT_TRUE((*store)->add_key(new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2), kNow));
  ::umask(old);
  EXPECT_EQ(file_mode(path), 0600u);
  EXPECT_EQ(file_mode(path + "-wal"), 0600u);
  EXPECT_EQ(file_mode(path + "-shm"), 0600u);
}

TEST(StoreOpenTest, MigratesAnEmptyExistingFile) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  std::ofstream(path).close();
  ASSERT_EQ(fs::file_size(path), 0u);
  auto store = Store::open(path);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  ASSERT_TRUE((*store)->add_key(new_key("alice", "piv_ecdsa256.pub", KeyKind::kPiv), kNow));
  store->reset();
  RawDb raw(path);
  EXPECT_EQ(raw.text("PRAGMA user_version"), "1");
  EXPECT_EQ(raw.text("SELECT principal FROM keys"), "alice");
}

TEST(StoreOpenTest, ReopeningKeepsTheData) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.has_value()) << store.error().message;
    ASSERT_TRUE((*store)->add_key(new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2), kNow));
    auto touched = (*store)->record_touch(fingerprint("fido_ecdsa.pub"), KeyKind::kFido2, 7, kNow);
    ASSERT_TRUE(touched.has_value());
    EXPECT_EQ(*touched, TouchOutcome::kAccepted);
  }
  auto store = Store::open(path);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  auto key = (*store)->find_key(fingerprint("fido_ecdsa.pub"));
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_EQ(key->last_counter, 7u);
  auto again = (*store)->record_touch(fingerprint("fido_ecdsa.pub"), KeyKind::kFido2, 7, kNow);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, TouchOutcome::kCounterRegression);
}

TEST(StoreOpenTest, RefusesADatabaseFromANewerSchema) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  ASSERT_TRUE(Store::open(path).has_value());
  RawDb(path).exec("PRAGMA user_version = 99");
  auto store = Store::open(path);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, "store_schema_too_new");
  EXPECT_THAT(store.error().message, HasSubstr("99"));
  EXPECT_THAT(store.error().message, HasSubstr(path));
  EXPECT_EQ(RawDb(path).text("PRAGMA user_version"), "99");
}

TEST(StoreOpenTest, RefusesAnotherApplicationsDatabase) {
  TempDir dir;
  const std::string path = dir.file("other.db");
  RawDb(path).exec("CREATE TABLE t (x)");
  auto store = Store::open(path);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, "store_corrupt");
  EXPECT_EQ(RawDb(path).text("PRAGMA user_version"), "0");
  EXPECT_EQ(RawDb(path).text("SELECT count(*) FROM sqlite_master WHERE name = 'keys'"), "0");
}

TEST(StoreOpenTest, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  std::ofstream(path) << std::string(4096, 'x');
  auto store = Store::open(path);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code, "store_corrupt") << store.error().message;
}

TEST(StoreOpenTest, RefusesAMissingDirectoryAndASymlink) {
  TempDir dir;
  auto missing = Store::open(dir.file("no/such/dir/touchgate.db"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, "store_open_failed");
  EXPECT_THAT(missing.error().message, HasSubstr("no/such/dir/touchgate.db"));

  ASSERT_TRUE(Store::open(dir.file("real.db")).has_value());
  fs::create_symlink(dir.file("real.db"), dir.file("link.db"));
  auto link = Store::open(dir.file("link.db"));
  ASSERT_FALSE(link.has_value());
  EXPECT_EQ(link.error().code, "store_open_failed");
}

TEST(StoreOpenTest, SeveralConnectionsOpenAFreshFileAtOnce) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  constexpr int kOpeners = 4;
  std::vector<std::unique_ptr<Store>> stores(kOpeners);
  std::vector<std::string> errors(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      auto s = Store::open(path);
      if (s) {
        stores[i] = std::move(*s);
      } else {
        errors[i] = s.error().code + ": " + s.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) EXPECT_TRUE(stores[i] != nullptr) << errors[i];
  EXPECT_EQ(RawDb(path).text("PRAGMA user_version"), "1");
}

// --- enrolling, listing, revoking ------------------------------------------------------------

TEST_F(StoreTest, AddKeyRecordsEverythingAndComputesTheFingerprint) {
  auto k = store_->add_key(
      new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2, "yubikey 5 nfc", true), kNow);
  ASSERT_TRUE(k.has_value()) << k.error().message;
  EXPECT_GT(k->id, 0);
  EXPECT_EQ(k->principal, "alice");
  EXPECT_EQ(k->key_blob, blob("fido_ecdsa.pub"));
  EXPECT_EQ(k->fingerprint, fingerprint("fido_ecdsa.pub"));
  EXPECT_EQ(k->key_type, "sk-ecdsa-sha2-nistp256@openssh.com");
  EXPECT_EQ(k->kind, KeyKind::kFido2);
  EXPECT_EQ(k->label, "yubikey 5 nfc");
  EXPECT_TRUE(k->pin_required);
  EXPECT_EQ(k->touch_proven, "");
  EXPECT_EQ(k->status, KeyStatus::kActive);
  EXPECT_EQ(k->status_reason, "");
  EXPECT_EQ(k->status_changed_at, kNow);
  EXPECT_EQ(k->created_at, kNow);
  EXPECT_EQ(k->last_used_at, 0);
  EXPECT_FALSE(k->last_counter.has_value());

  EnrolledKey found = find(k->fingerprint);
  EXPECT_EQ(found.id, k->id);
  EXPECT_EQ(found.key_blob, k->key_blob);
  EXPECT_EQ(found.label, "yubikey 5 nfc");
  EXPECT_TRUE(found.pin_required);
}

TEST_F(StoreTest, AddKeyAcceptsEveryFido2AndPivKeyType) {
  const std::vector<std::tuple<std::string, KeyKind, std::string>> keys = {
      {"fido_ecdsa.pub", KeyKind::kFido2, "sk-ecdsa-sha2-nistp256@openssh.com"},
      {"fido_ed25519.pub", KeyKind::kFido2, "sk-ssh-ed25519@openssh.com"},
      {"piv_ecdsa256.pub", KeyKind::kPiv, "ecdsa-sha2-nistp256"},
      {"piv_ecdsa384.pub", KeyKind::kPiv, "ecdsa-sha2-nistp384"},
      {"piv_rsa.pub", KeyKind::kPiv, "ssh-rsa"},
      {"piv_ed25519.pub", KeyKind::kPiv, "ssh-ed25519"},
  };
  for (const auto& [file, kind, type] : keys) {
    EnrolledKey k = add("alice", file, kind);
    EXPECT_EQ(k.fingerprint, fingerprint(file)) << file;
    EXPECT_EQ(k.key_type, type) << file;
    EXPECT_EQ(k.kind, kind) << file;
  }
  auto all = store_->list_keys();
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), keys.size());
}

TEST_F(StoreTest, ListKeysOrdersByPrincipalThenEnrollmentAndFilters) {
  add("bob", "fido_ecdsa.pub", KeyKind::kFido2);
  add("alice", "piv_rsa.pub", KeyKind::kPiv);
  add("bob", "piv_ecdsa256.pub", KeyKind::kPiv);
  add("alice", "fido_ed25519.pub", KeyKind::kFido2);

  auto all = store_->list_keys();
  ASSERT_TRUE(all.has_value()) << all.error().message;
  std::vector<std::string> order;
  for (const auto& k : *all) order.push_back(k.principal + " " + k.fingerprint);
  EXPECT_EQ(order, (std::vector<std::string>{
                       "alice " + fingerprint("piv_rsa.pub"),
                       "alice " + fingerprint("fido_ed25519.pub"),
                       "bob " + fingerprint("fido_ecdsa.pub"),
                       "bob " + fingerprint("piv_ecdsa256.pub"),
                   }));

  auto bobs = store_->list_keys("bob");
  ASSERT_TRUE(bobs.has_value());
  ASSERT_EQ(bobs->size(), 2u);
  EXPECT_EQ((*bobs)[0].fingerprint, fingerprint("fido_ecdsa.pub"));
  EXPECT_EQ((*bobs)[1].fingerprint, fingerprint("piv_ecdsa256.pub"));

  auto nobody = store_->list_keys("carol");
  ASSERT_TRUE(nobody.has_value());
  EXPECT_TRUE(nobody->empty());
}

TEST_F(StoreTest, AKeyIsEnrolledOnceForOnePrincipal) {
  add("alice", "fido_ecdsa.pub", KeyKind::kFido2);
  auto again = store_->add_key(new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2), kNow);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, "store_duplicate_key");
  auto other = store_->add_key(new_key("bob", "fido_ecdsa.pub", KeyKind::kFido2), kNow);
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, "store_duplicate_key");
  EXPECT_THAT(other.error().message, HasSubstr(fingerprint("fido_ecdsa.pub")));
  EXPECT_THAT(other.error().message, HasSubstr("alice"));
  auto all = store_->list_keys();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].principal, "alice");
}

TEST_F(StoreTest, TheKindMustMatchTheKeyType) {
  auto piv_as_fido = store_->add_key(new_key("alice", "piv_ecdsa256.pub", KeyKind::kFido2), kNow);
  ASSERT_FALSE(piv_as_fido.has_value());
  EXPECT_EQ(piv_as_fido.error().code, "store_kind_mismatch");
  EXPECT_THAT(piv_as_fido.error().message, HasSubstr("ecdsa-sha2-nistp256"));

  auto ed_as_fido = store_->add_key(new_key("alice", "piv_ed25519.pub", KeyKind::kFido2), kNow);
  ASSERT_FALSE(ed_as_fido.has_value());
  EXPECT_EQ(ed_as_fido.error().code, "store_kind_mismatch");

  auto sk_as_piv = store_->add_key(new_key("alice", "fido_ecdsa.pub", KeyKind::kPiv), kNow);
  ASSERT_FALSE(sk_as_piv.has_value());
  EXPECT_EQ(sk_as_piv.error().code, "store_kind_mismatch");
  EXPECT_THAT(sk_as_piv.error().message, HasSubstr("sk-ecdsa-sha2-nistp256@openssh.com"));

  auto sk_ed_as_piv = store_->add_key(new_key("alice", "fido_ed25519.pub", KeyKind::kPiv), kNow);
  ASSERT_FALSE(sk_ed_as_piv.has_value());
  EXPECT_EQ(sk_ed_as_piv.error().code, "store_kind_mismatch");

  auto all = store_->list_keys();
  ASSERT_TRUE(all.has_value());
  EXPECT_TRUE(all->empty());
}

TEST_F(StoreTest, BadBlobsAreRefused) {
  std::vector<uint8_t> good = blob("fido_ecdsa.pub");
  std::vector<uint8_t> truncated(good.begin(), good.end() - 5);
  std::vector<uint8_t> trailing = good;
  trailing.push_back(0);
  std::vector<uint8_t> flipped = good;
  flipped[60] ^= 0x01;  // inside the curve point: no longer on the curve
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> bad = {
      {"empty", {}},
      {"garbage", {0, 0, 0, 3, 'a', 'b', 'c'}},
      {"truncated", truncated},
      {"trailing byte", trailing},
      {"point off the curve", flipped},
      {"certificate", blob("piv_ed25519-cert.pub")},
      {"rsa 1024", blob("rsa1024.pub")},
  };
  for (const auto& [what, bytes] : bad) {
    NewKey k;
    k.principal = "alice";
    k.key_blob = bytes;
    k.kind = what == "certificate" || what == "rsa 1024" ? KeyKind::kPiv : KeyKind::kFido2;
    auto r = store_->add_key(k, kNow);
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_EQ(r.error().code, "store_bad_key") << what << ": " << r.error().message;
  }
  auto all = store_->list_keys();
  ASSERT_TRUE(all.has_value());
  EXPECT_TRUE(all->empty());
}

TEST_F(StoreTest, PrincipalAndLabelMustBePrintable) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "store_bad_principal"},
      {"ali\nce", "store_bad_principal"},
      {"alice\x1b[31m", "store_bad_principal"},
      {std::string(257, 'a'), "store_bad_principal"},
  };
  for (const auto& [principal, code] : bad) {
    auto r = store_->add_key(new_key(principal, "fido_ecdsa.pub", KeyKind::kFido2), kNow);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, code);
  }
  auto label = store_->add_key(new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2, "a\tb"), kNow);
  ASSERT_FALSE(label.has_value());
  EXPECT_EQ(label.error().code, "store_bad_label");
  auto long_label = store_->add_key(
      new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2, std::string(257, 'x')), kNow);
  ASSERT_FALSE(long_label.has_value());
  EXPECT_EQ(long_label.error().code, "store_bad_label");
  auto fine = store_->add_key(
      new_key("alice@example.com", "fido_ecdsa.pub", KeyKind::kFido2, "Bürokey #2"), kNow);
  ASSERT_TRUE(fine.has_value()) << fine.error().message;
  EXPECT_EQ(fine->label, "Bürokey #2");
}

TEST_F(StoreTest, UnknownFingerprints) {
  auto k = store_->find_key("SHA256:nosuchkey");
  ASSERT_FALSE(k.has_value());
  EXPECT_EQ(k.error().code, "store_no_such_key");
  auto r = store_->revoke_key("SHA256:nosuchkey", kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "store_no_such_key");
  auto c = store_->clear_clone("SHA256:nosuchkey", kNow);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, "store_no_such_key");
  EXPECT_EQ(touch("SHA256:nosuchkey", KeyKind::kFido2, 1), TouchOutcome::kNotActive);
}

TEST_F(StoreTest, RevokeKey) {
  const std::string fp = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 3), TouchOutcome::kAccepted);
  auto r = store_->revoke_key(fp, kNow + 100);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, KeyStatus::kRevoked);
  EXPECT_EQ(r->status_changed_at, kNow + 100);
  EXPECT_EQ(find(fp).status, KeyStatus::kRevoked);

  auto again = store_->revoke_key(fp, kNow + 200);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, "store_already_revoked");

  EXPECT_EQ(touch(fp, KeyKind::kFido2, 4), TouchOutcome::kNotActive);
  EXPECT_EQ(find(fp).last_counter, 3u);
  EXPECT_EQ(find(fp).status, KeyStatus::kRevoked);

  auto clear = store_->clear_clone(fp, kNow);
  ASSERT_FALSE(clear.has_value());
  EXPECT_EQ(clear.error().code, "store_not_suspected");
  EXPECT_EQ(find(fp).status, KeyStatus::kRevoked);

  // Still enrolled: the same key cannot come back by enrolling it again.
  auto readd = store_->add_key(new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2), kNow);
  ASSERT_FALSE(readd.has_value());
  EXPECT_EQ(readd.error().code, "store_duplicate_key");
}

TEST_F(StoreTest, RevokingASuspectedCloneKeepsWhy) {
  const std::string fp = add("alice", "fido_ed25519.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 9), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 8), TouchOutcome::kCounterRegression);
  auto r = store_->revoke_key(fp, kNow);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, KeyStatus::kRevoked);
  EXPECT_THAT(r->status_reason, HasSubstr("suspected-clone"));
  EXPECT_THAT(r->status_reason, HasSubstr("offered 8, last accepted 9"));
}

// --- the counter -----------------------------------------------------------------------------

TEST_F(StoreTest, KeysThatNeverCountAreAcceptedWithZeroRepeatedly) {
  const std::string fp = add("alice", "fido_ed25519.pub", KeyKind::kFido2).fingerprint;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(touch(fp, KeyKind::kFido2, 0, kNow + i), TouchOutcome::kAccepted) << i;
  }
  EnrolledKey k = find(fp);
  EXPECT_EQ(k.status, KeyStatus::kActive);
  EXPECT_EQ(k.last_counter, 0u);
  EXPECT_EQ(k.last_used_at, kNow + 2);
}

TEST_F(StoreTest, IncreasingCountersAreAccepted) {
  const std::string fp = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 5, kNow + 1), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 6, kNow + 2), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 1000, kNow + 3), TouchOutcome::kAccepted);
  EnrolledKey k = find(fp);
  EXPECT_EQ(k.status, KeyStatus::kActive);
  EXPECT_EQ(k.last_counter, 1000u);
  EXPECT_EQ(k.last_used_at, kNow + 3);
}

TEST_F(StoreTest, ZeroThenCountingIsAcceptedButNotTheOtherWay) {
  const std::string fp = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 0), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 1), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 0), TouchOutcome::kCounterRegression);
  EnrolledKey k = find(fp);
  EXPECT_EQ(k.status, KeyStatus::kSuspectedClone);
  EXPECT_EQ(k.status_reason, "signature counter went back: offered 0, last accepted 1");
  EXPECT_EQ(k.last_counter, 1u);
}

TEST_F(StoreTest, ARepeatedCounterMakesASuspectedClone) {
  const std::string fp = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 10, kNow + 1), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 10, kNow + 2), TouchOutcome::kCounterRegression);
  EnrolledKey k = find(fp);
  EXPECT_EQ(k.status, KeyStatus::kSuspectedClone);
  EXPECT_EQ(k.status_reason, "signature counter repeated: offered 10, last accepted 10");
  EXPECT_EQ(k.status_changed_at, kNow + 2);
  EXPECT_EQ(k.last_used_at, kNow + 1);
  EXPECT_EQ(k.last_counter, 10u);
  // Not even a higher counter gets through until an administrator clears it.
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 11), TouchOutcome::kNotActive);
  EXPECT_EQ(find(fp).last_counter, 10u);
}

TEST_F(StoreTest, ACounterGoingBackMakesASuspectedClone) {
  const std::string fp = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 10), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 5), TouchOutcome::kCounterRegression);
  EnrolledKey k = find(fp);
  EXPECT_EQ(k.status, KeyStatus::kSuspectedClone);
  EXPECT_EQ(k.status_reason, "signature counter went back: offered 5, last accepted 10");
}

TEST_F(StoreTest, TheLargestCounterIsAcceptedAndNothingAfterIt) {
  const std::string fp = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, UINT32_MAX), TouchOutcome::kAccepted);
  EXPECT_EQ(find(fp).last_counter, UINT32_MAX);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, UINT32_MAX), TouchOutcome::kCounterRegression);
}

TEST_F(StoreTest, ClearCloneReactivatesAndForgetsTheCounter) {
  const std::string fp = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 10), TouchOutcome::kAccepted);
  auto not_yet = store_->clear_clone(fp, kNow);
  ASSERT_FALSE(not_yet.has_value());
  EXPECT_EQ(not_yet.error().code, "store_not_suspected");

  EXPECT_EQ(touch(fp, KeyKind::kFido2, 10), TouchOutcome::kCounterRegression);
  auto cleared = store_->clear_clone(fp, kNow + 50);
  ASSERT_TRUE(cleared.has_value()) << cleared.error().message;
  EXPECT_EQ(cleared->status, KeyStatus::kActive);
  EXPECT_EQ(cleared->status_reason, "");
  EXPECT_EQ(cleared->status_changed_at, kNow + 50);
  EXPECT_FALSE(cleared->last_counter.has_value());

  // The next touch is accepted whatever its counter; after that the rules apply again.
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 3), TouchOutcome::kAccepted);
  EXPECT_EQ(find(fp).last_counter, 3u);
  EXPECT_EQ(touch(fp, KeyKind::kFido2, 3), TouchOutcome::kCounterRegression);
}

TEST_F(StoreTest, PivKeysIgnoreTheCounter) {
  const std::string fp = add("alice", "piv_ecdsa256.pub", KeyKind::kPiv).fingerprint;
  EXPECT_EQ(touch(fp, KeyKind::kPiv, 0, kNow + 1), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kPiv, 0, kNow + 2), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kPiv, 7, kNow + 3), TouchOutcome::kAccepted);
  EXPECT_EQ(touch(fp, KeyKind::kPiv, 1, kNow + 4), TouchOutcome::kAccepted);
  EnrolledKey k = find(fp);
  EXPECT_EQ(k.status, KeyStatus::kActive);
  EXPECT_FALSE(k.last_counter.has_value());
  EXPECT_EQ(k.last_used_at, kNow + 4);
}

TEST_F(StoreTest, RecordTouchRefusesTheWrongKind) {
  const std::string piv = add("alice", "piv_ecdsa256.pub", KeyKind::kPiv).fingerprint;
  const std::string fido = add("alice", "fido_ecdsa.pub", KeyKind::kFido2).fingerprint;
  auto r = store_->record_touch(piv, KeyKind::kFido2, 1, kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "store_kind_mismatch");
  auto s = store_->record_touch(fido, KeyKind::kPiv, 1, kNow);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, "store_kind_mismatch");
  EXPECT_EQ(find(fido).last_used_at, 0);
  EXPECT_EQ(find(piv).last_used_at, 0);
}

// --- several connections and processes on one database ---------------------------------------

enum Outcome : int { kPending = 0, kWin, kRegression, kInactive, kFailed };

constexpr int kRounds = 200;
constexpr auto kWaitLimit = std::chrono::seconds(60);

// What the coordinator and two racers share: in anonymous shared memory for processes.
struct Race {
  std::atomic<int> round{0};
  std::atomic<int> finished[2] = {0, 0};
  std::atomic<int> outcome[2][kRounds + 1] = {};
};

bool wait_for(const std::function<bool()>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
}

// racer opens its own Store and, for each round, touches the key with the round number as the
// counter as soon as the round starts. Returns 0, or non-zero when something went wrong.
int racer(const std::string& path, const std::string& fp, Race* race, int who) {
  auto store = Store::open(path);
  if (!store) return 2;
  for (int r = 1; r <= kRounds; ++r) {
    if (!wait_for([&] { return race->round.load() >= r; })) return 3;
    auto t = (*store)->record_touch(fp, KeyKind::kFido2, static_cast<uint32_t>(r), kNow + r);
    int outcome = kFailed;
    if (t) {
      outcome = *t == TouchOutcome::kAccepted            ? kWin
                : *t == TouchOutcome::kCounterRegression ? kRegression
                                                         : kInactive;
    }
    race->outcome[who][r].store(outcome);
    race->finished[who].store(r);
  }
  return 0;
}

// coordinate starts each round, waits for both racers, checks that exactly one of them won the
// round's counter (the other saw a repeat), and clears the resulting suspected clone.
void coordinate(const std::string& path, const std::string& fp, Race* race) {
  auto store = Store::open(path);
  ASSERT_TRUE(store.has_value()) << store.error().message;
  for (int r = 1; r <= kRounds; ++r) {
    race->round.store(r);
    ASSERT_TRUE(wait_for([&] { return race->finished[0] >= r && race->finished[1] >= r; }))
        << "round " << r << " did not finish";
    const int a = race->outcome[0][r];
    const int b = race->outcome[1][r];
    ASSERT_TRUE((a == kWin && b == kRegression) || (a == kRegression && b == kWin))
        << "round " << r << ": outcomes " << a << " and " << b;
    auto cleared = (*store)->clear_clone(fp, kNow + r);
    ASSERT_TRUE(cleared.has_value()) << "round " << r << ": " << cleared.error().message;
  }
  auto k = (*store)->find_key(fp);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->status, KeyStatus::kActive);
  EXPECT_EQ(k->last_counter, std::nullopt);
}

// prepare_race_database enrolls one FIDO2 key and closes the database again (so that no
// connection exists when the racers are forked).
std::string prepare_race_database(const std::string& path) {
  auto store = Store::open(path);
  EXPECT_TRUE(store.has_value());
  if (!store) return {};
  auto k = (*store)->add_key(new_key("alice", "fido_ecdsa.pub", KeyKind::kFido2), kNow);
  EXPECT_TRUE(k.has_value());
  return k ? k->fingerprint : std::string();
}

void expect_intact(const std::string& path) {
  RawDb raw(path);
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
}

TEST(StoreConcurrencyTest, TwoConnectionsRaceForTheSameCounterAndExactlyOneWins) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  const std::string fp = prepare_race_database(path);
  ASSERT_FALSE(fp.empty());
  auto race = std::make_unique<Race>();
  int status[2] = {-1, -1};
  std::thread a([&] { status[0] = racer(path, fp, race.get(), 0); });
  std::thread b([&] { status[1] = racer(path, fp, race.get(), 1); });
  coordinate(path, fp, race.get());
  if (race->round < kRounds) race->round = kRounds + 1;  // release the racers after a failure
  a.join();
  b.join();
  EXPECT_EQ(status[0], 0);
  EXPECT_EQ(status[1], 0);
  expect_intact(path);
}

TEST(StoreConcurrencyTest, TwoProcessesRaceForTheSameCounterAndExactlyOneWins) {
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  const std::string fp = prepare_race_database(path);
  ASSERT_FALSE(fp.empty());
  void* shared =
      ::mmap(nullptr, sizeof(Race), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  Race* race = new (shared) Race();
  pid_t pids[2];
  for (int who = 0; who < 2; ++who) {
    pids[who] = ::fork();
    ASSERT_GE(pids[who], 0);
    if (pids[who] == 0) ::_exit(racer(path, fp, race, who));
  }
  coordinate(path, fp, race);
  if (race->round < kRounds) race->round = kRounds + 1;
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "racer status " << status;
  }
  race->~Race();
  ::munmap(shared, sizeof(Race));
  expect_intact(path);
}

// Two processes each count up their own key and touch a shared PIV key in between: every touch
// is accepted and no update is lost.
TEST(StoreConcurrencyTest, TwoProcessesCountingConcurrentlyLoseNothing) {
  constexpr uint32_t kTouches = 150;
  TempDir dir;
  const std::string path = dir.file("touchgate.db");
  const std::vector<std::string> files = {"fido_ecdsa.pub", "fido_ecdsa_2.pub"};
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.has_value());
    for (const auto& f : files) {
      ASSERT_TRUE((*store)->add_key(new_key("alice", f, KeyKind::kFido2), kNow));
    }
    ASSERT_TRUE((*store)->add_key(new_key("alice", "piv_rsa.pub", KeyKind::kPiv), kNow));
  }
  const std::string piv = fingerprint("piv_rsa.pub");
  pid_t pids[2];
  for (int who = 0; who < 2; ++who) {
    pids[who] = ::fork();
    ASSERT_GE(pids[who], 0);
    if (pids[who] == 0) {
      auto store = Store::open(path);
      if (!store) ::_exit(2);
      const std::string fp = fingerprint(files[who]);
      for (uint32_t c = 1; c <= kTouches; ++c) {
        auto t = (*store)->record_touch(fp, KeyKind::kFido2, c, kNow + c);
        if (!t || *t != TouchOutcome::kAccepted) ::_exit(3);
        auto p = (*store)->record_touch(piv, KeyKind::kPiv, 0, kNow + c);
        if (!p || *p != TouchOutcome::kAccepted) ::_exit(4);
      }
      ::_exit(0);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  auto store = Store::open(path);
  ASSERT_TRUE(store.has_value());
  for (const auto& f : files) {
    auto k = (*store)->find_key(fingerprint(f));
    ASSERT_TRUE(k.has_value());
    EXPECT_EQ(k->status, KeyStatus::kActive) << f;
    EXPECT_EQ(k->last_counter, kTouches) << f;
    EXPECT_EQ(k->last_used_at, kNow + kTouches) << f;
  }
  auto p = (*store)->find_key(piv);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->last_used_at, kNow + kTouches);
  expect_intact(path);
}

}  // namespace
}  // namespace touchgate::store
