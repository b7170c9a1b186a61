#include "gateway/known_hosts.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ssh/key.h"
#include "tests/unit/test_util.h"

namespace touchgate::gateway {
namespace {

namespace fs = std::filesystem;
using Outcome = KnownHostKey::Outcome;

// An ssh-ed25519 public key blob whose key bytes are all `fill`.
std::vector<uint8_t> ed25519_blob(uint8_t fill) {
  const std::string type = "ssh-ed25519";
  std::vector<uint8_t> b(4 + type.size() + 4 + 32, fill);
  b[3] = static_cast<uint8_t>(type.size());
  std::copy(type.begin(), type.end(), b.begin() + 4);
  const size_t at = 4 + type.size();
  b[at] = b[at + 1] = b[at + 2] = 0;
  b[at + 3] = 32;
  b[0] = b[1] = b[2] = 0;
  return b;
}

class KnownHostsTest : public ::testing::Test {
 protected:
  std::string contents() const { return touchgate::testing::read_all(file_); }
  touchgate::testing::TempDir tmp_{"tg-known-hosts"};
  const fs::path& dir_ = tmp_.path();
  const fs::path file_ = dir_ / "known_hosts";
};

TEST_F(KnownHostsTest, FirstKeyIsRecordedThenCompared) {
  const auto a = ed25519_blob(1), b = ed25519_blob(2);
  auto r = check_or_record(file_, "db6", a);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kRecorded);
  EXPECT_EQ(contents(), "db6 " + ssh::format_key_line(a) + "\n");
  EXPECT_EQ(fs::status(file_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  r = check_or_record(file_, "db6", a);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kSame);
  r = check_or_record(file_, "db6", b);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kOther);
  EXPECT_EQ(r->known_blob, a);
  // Another target is another line; a target name that only starts the same is not a match.
  r = check_or_record(file_, "db", b);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kRecorded);
  EXPECT_EQ(contents(), "db6 " + ssh::format_key_line(a) + "\ndb " + ssh::format_key_line(b) +
                            "\n");
}

TEST_F(KnownHostsTest, BadLinesAreSkippedAndACutLastLineIsEnded) {
  const auto a = ed25519_blob(3);
  {
    std::ofstream out(file_);
    out << "garbage\ndb6 not-a-key AAAA\n\ndb6 ssh-ed25519 trunc";  // no final newline
  }
  auto r = check_or_record(file_, "db6", a);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::kRecorded);
  EXPECT_EQ(contents(), "garbage\ndb6 not-a-key AAAA\n\ndb6 ssh-ed25519 trunc\ndb6 " +
                            ssh::format_key_line(a) + "\n");
  r = check_or_record(file_, "db6", a);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, Outcome::kSame);
}

TEST_F(KnownHostsTest, ConcurrentFirstUsesFromThreadsRecordExactlyOneKey) {
  constexpr int kThreads = 8;
  std::vector<Outcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go) std::this_thread::yield();
      auto r = check_or_record(file_, "db6", ed25519_blob(static_cast<uint8_t>(10 + i)));
      outcomes[static_cast<size_t>(i)] = r ? r->outcome : Outcome::kSame;
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), Outcome::kRecorded), 1);
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), Outcome::kOther), kThreads - 1);
  const std::string text = contents();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

TEST_F(KnownHostsTest, ConcurrentFirstUsesFromProcessesRecordExactlyOneKey) {
  constexpr int kProcs = 6;
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto r = check_or_record(file_, "db7", ed25519_blob(static_cast<uint8_t>(40 + i)));
      ::_exit(!r ? 3 : r->outcome == Outcome::kRecorded ? 0 : 1);
    }
    pids.push_back(pid);
  }
  int recorded = 0, other = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 0) ++recorded;
    if (WEXITSTATUS(status) == 1) ++other;
  }
  EXPECT_EQ(recorded, 1);
  EXPECT_EQ(other, kProcs - 1);
  const std::string text = contents();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

TEST_F(KnownHostsTest, AFileThatCannotBeOpenedIsAnError) {
  auto r = check_or_record(dir_ / "no-such-dir" / "known_hosts", "db6", ed25519_blob(1));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "known_hosts_io");
  fs::create_symlink(dir_ / "elsewhere", file_);
  r = check_or_record(file_, "db6", ed25519_blob(1));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "known_hosts_io");
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere"));
}

}  // namespace
}  // namespace touchgate::gateway
