#include "audit/recording.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/unit/audit/audit_test_util.h"

namespace touchgate::audit {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using testing::read_all;
using testing::read_lines;
using testing::TempDir;

using Status = Recording::Status;

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Recording::Header header() {
  Recording::Header h;
  h.width = 120;
  h.height = 40;
  h.timestamp = 1700000000;
  h.term = "xterm-256color";
  h.title = "alice@db1";
  h.target = "db1";
  h.user = "alice";
  h.key_id = "alice@sso";
  h.serial = 77;
  h.connection = "ab-1";
  h.touch_key_fp = "SHA256:abc";
  return h;
}

using ::touchgate::testing::run_command;
using ::touchgate::testing::RunResult;

// Cast is a recording read back: the header and each event, every line parsed as strict JSON.
struct Cast {
  nlohmann::json header;
  std::vector<nlohmann::json> events;

  std::string stream(const std::string& type) const {
    std::string out;
    for (const auto& e : events)
      if (e[1] == type) out += e[2].get<std::string>();
    return out;
  }
};

Cast read_cast(const std::filesystem::path& file) {
  Cast c;
  const auto lines = read_lines(file);
  EXPECT_FALSE(lines.empty());
  EXPECT_TRUE(read_all(file).ends_with("\n"));
  for (size_t i = 0; i < lines.size(); ++i) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[i]);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "line " << i + 1 << " is not JSON: " << e.what() << ": " << lines[i];
      continue;
    }
    if (i == 0) {
      c.header = j;
      continue;
    }
    EXPECT_TRUE(j.is_array() && j.size() == 3 && j[0].is_number() && j[1].is_string() &&
                j[2].is_string())
        << lines[i];
    c.events.push_back(j);
  }
  return c;
}

// python_checks runs Python's strict JSON reader over every line (another implementation).
void python_checks(const std::filesystem::path& file) {
  const RunResult r =
      run_command("python3 -c 'import json,sys\n"
          "lines = open(sys.argv[1], encoding=\"utf-8\", errors=\"strict\").read().split(\"\\n\")\n"
          "assert lines[-1] == \"\"\n"
          "h = json.loads(lines[0]); assert h[\"version\"] == 2\n"
          "t = [json.loads(l)[0] for l in lines[1:-1]]\n"
          "assert t == sorted(t)\n"
          "print(len(t))' '" +
          file.string() + "' 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(RecordingTest, WritesHeaderAndEventsAsAsciicastV2) {
  TempDir dir;
  const auto file = dir.path() / "ab-1-0.cast";
  auto rec = Recording::create(file, header());
  ASSERT_TRUE(rec.has_value()) << rec.error().message;
  Recording& r = **rec;
  EXPECT_EQ(r.output(milliseconds(250), bytes("$ ")), Status::kRecorded);
  EXPECT_EQ(r.input(milliseconds(1000), bytes("ls\r")), Status::kRecorded);
  EXPECT_EQ(r.resize(microseconds(1500001), 132, 43), Status::kRecorded);
  EXPECT_EQ(r.output(milliseconds(2000), bytes("a b\r\n")), Status::kRecorded);
  auto summary = r.close();
  ASSERT_TRUE(summary.has_value()) << summary.error().message;

  const auto lines = read_lines(file);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], R"({"version": 2, "width": 120, "height": 40, "timestamp": 1700000000, )"
                      R"("env": {"TERM": "xterm-256color"}, "title": "alice@db1", "touchgate": )"
                      R"({"target": "db1", "user": "alice", "key_id": "alice@sso", "serial": 77, )"
                      R"("connection": "ab-1", "touch_key_fp": "SHA256:abc"}})");
  EXPECT_EQ(lines[1], R"([0.250000, "o", "$ "])");
  EXPECT_EQ(lines[2], R"([1.000000, "i", "ls\u000d"])");
  EXPECT_EQ(lines[3], R"([1.500001, "r", "132x43"])");
  EXPECT_EQ(lines[4], R"([2.000000, "o", "a b\u000d\u000a"])");

  const Cast c = read_cast(file);
  EXPECT_EQ(c.header["touchgate"]["serial"], 77);
  EXPECT_EQ(c.stream("o"), "$ a b\r\n");
  python_checks(file);

  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(summary->size, static_cast<uint64_t>(st.st_size));
}

TEST(RecordingTest, MinimalHeaderOmitsEmptyFields) {
  TempDir dir;
  Recording::Header h;
  auto rec = Recording::create(dir.path() / "min.cast", h);
  ASSERT_TRUE(rec.has_value());
  ASSERT_TRUE((*rec)->close().has_value());
  EXPECT_EQ(read_all(dir.path() / "min.cast"),
            "{\"version\": 2, \"width\": 80, \"height\": 24, \"timestamp\": 0, "
            "\"touchgate\": {\"serial\": 0}}\n");
}

TEST(RecordingTest, Utf8SplitAcrossCallsIsKeptWhole) {
  TempDir dir;
  const auto file = dir.path() / "utf8.cast";
  auto rec = Recording::create(file, header());
  ASSERT_TRUE(rec.has_value());
  Recording& r = **rec;
  const std::string text = "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80!";  // "été € 😀!"
  // Every byte in its own call, input events interleaved: the streams are held apart.
  for (size_t i = 0; i < text.size(); ++i) {
    EXPECT_EQ(r.output(milliseconds(static_cast<int>(i)), bytes(text.substr(i, 1))),
              Status::kRecorded);
    EXPECT_EQ(r.input(milliseconds(static_cast<int>(i)), bytes("\xe2")), Status::kRecorded);
    EXPECT_EQ(r.input(milliseconds(static_cast<int>(i)), bytes("\x82\xac")), Status::kRecorded);
  }
  ASSERT_TRUE(r.close().has_value());
  const Cast c = read_cast(file);
  EXPECT_EQ(c.stream("o"), text);
  std::string euros;
  for (size_t i = 0; i < text.size(); ++i) euros += "\xe2\x82\xac";
  EXPECT_EQ(c.stream("i"), euros);
  EXPECT_THAT(read_all(file), ::testing::Not(HasSubstr("\xef\xbf\xbd")));
  // No event holds a lone byte of a sequence: 4 events carry "😀", 1 each. Lead bytes wait.
  for (const auto& e : c.events) EXPECT_FALSE(e[2].get<std::string>().empty());
  python_checks(file);
}

TEST(RecordingTest, InvalidBytesBecomeReplacementCharacters) {
  TempDir dir;
  const auto file = dir.path() / "invalid.cast";
  auto rec = Recording::create(file, header());
  ASSERT_TRUE(rec.has_value());
  Recording& r = **rec;
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(r.output(milliseconds(1), bytes("a\xff"
                                            "b")),
            Status::kRecorded);
  EXPECT_EQ(r.output(milliseconds(2), bytes("\xc0\xaf")), Status::kRecorded);      // overlong
  EXPECT_EQ(r.output(milliseconds(3), bytes("\xed\xa0\x80")), Status::kRecorded);  // surrogate
  EXPECT_EQ(r.output(milliseconds(4), bytes("\xe2\x82")), Status::kRecorded);      // held...
  EXPECT_EQ(r.output(milliseconds(5), bytes("A")), Status::kRecorded);  // ...and never completed
  EXPECT_EQ(r.output(milliseconds(6), bytes("z\xf0\x9f")), Status::kRecorded);  // held at close
  ASSERT_TRUE(r.close().has_value());
  const Cast c = read_cast(file);
  EXPECT_EQ(c.stream("o"), "a" + fffd + "b" + fffd + fffd + fffd + fffd + fffd + fffd + fffd + "A" +
                               "z" + fffd + fffd);
  python_checks(file);
}

TEST(RecordingTest, ControlCharactersAreEscaped) {
  TempDir dir;
  const auto file = dir.path() / "control.cast";
  auto rec = Recording::create(file, header());
  ASSERT_TRUE(rec.has_value());
  std::string all;
  for (int b = 0; b < 0x80; ++b) all.push_back(static_cast<char>(b));
  all += "\"\\\x1b[31mred\x1b[0m\n";
  ASSERT_EQ((*rec)->output(milliseconds(1), bytes(all)), Status::kRecorded);
  ASSERT_TRUE((*rec)->close().has_value());
  const std::string raw = read_all(file);
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto b = static_cast<unsigned char>(raw[i]);
    if (b == '\n') continue;
    ASSERT_TRUE(b >= 0x20 && b != 0x7f) << "raw control byte " << int(b) << " at " << i;
  }
  EXPECT_THAT(raw, HasSubstr(R"(\u001b[31mred\u001b[0m\u000a"])"));
  EXPECT_EQ(read_cast(file).stream("o"), all);
  python_checks(file);
}

TEST(RecordingTest, LargeWritesAreSplitIntoEventsAndTimesNeverGoBack) {
  TempDir dir;
  const auto file = dir.path() / "large.cast";
  auto rec = Recording::create(file, header());
  ASSERT_TRUE(rec.has_value());
  Recording& r = **rec;
  std::string big;
  while (big.size() < 200000) big += "\xe2\x94\x80 line of box drawing \xe2\x94\x82\r\n";
  EXPECT_EQ(r.output(milliseconds(2000), bytes(big)), Status::kRecorded);
  EXPECT_EQ(r.output(milliseconds(1000), bytes("late")), Status::kRecorded);  // clock went back
  ASSERT_TRUE(r.close().has_value());
  const Cast c = read_cast(file);
  EXPECT_EQ(c.stream("o"), big + "late");
  EXPECT_GT(c.events.size(), 10u);
  for (const auto& e : c.events) EXPECT_EQ(e[0].get<double>(), 2.0);
  for (const auto& line : read_lines(file)) EXPECT_LT(line.size(), 64u * 1024);
  python_checks(file);
}

TEST(RecordingTest, SizeCapStopsRecordingWithAMarker) {
  TempDir dir;
  const auto file = dir.path() / "cap.cast";
  constexpr uint64_t kCap = 8192;
  auto rec = Recording::create(file, header(), kCap);
  ASSERT_TRUE(rec.has_value());
  Recording& r = **rec;
  const std::string chunk(100, 'x');
  int recorded = 0;
  for (int i = 0; i < 1000; ++i) {
    auto st = r.output(milliseconds(i), bytes(chunk));
    ASSERT_TRUE(st.has_value());
    if (*st == Status::kCapReached) break;
    ++recorded;
  }
  EXPECT_TRUE(r.cap_reached());
  EXPECT_GT(recorded, 50);
  const uint64_t at_cap = r.size();
  EXPECT_LE(at_cap, kCap);
  // After the cap: nothing more is written, every call says so.
  EXPECT_EQ(r.output(milliseconds(5000), bytes("more")), Status::kCapReached);
  EXPECT_EQ(r.input(milliseconds(5000), bytes("more")), Status::kCapReached);
  EXPECT_EQ(r.resize(milliseconds(5000), 10, 10), Status::kCapReached);
  auto summary = r.close();
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->size, at_cap);
  EXPECT_EQ(std::filesystem::file_size(file), at_cap);

  const Cast c = read_cast(file);
  ASSERT_FALSE(c.events.empty());
  EXPECT_EQ(c.events.back()[1], "m");
  EXPECT_EQ(c.events.back()[2], Recording::kCapMarker);
  EXPECT_EQ(c.stream("o").size(), static_cast<size_t>(recorded) * chunk.size());
  python_checks(file);
}

TEST(RecordingTest, Sha256AndSizeMatchTheFile) {
  TempDir dir;
  const auto file = dir.path() / "hash.cast";
  auto rec = Recording::create(file, header());
  ASSERT_TRUE(rec.has_value());
  for (int i = 0; i < 5000; ++i) {  // several buffer flushes
    ASSERT_TRUE((*rec)->output(milliseconds(i), bytes("output line \xc3\xa9\r\n")).has_value());
    if (i % 7 == 0) {
      ASSERT_TRUE((*rec)->input(milliseconds(i), bytes("k")).has_value());
    }
  }
  auto summary = (*rec)->close();
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->size, std::filesystem::file_size(file));
  const RunResult r = run_command("sha256sum '" + file.string() + "'");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.output.substr(0, 64), summary->sha256);
}

TEST(RecordingTest, RefusesAnExistingFileAndAMissingDirectory) {
  TempDir dir;
  const auto file = dir.path() / "exists.cast";
  testing::write_all(file, "someone else's\n");
  auto rec = Recording::create(file, header());
  ASSERT_FALSE(rec.has_value());
  EXPECT_EQ(rec.error().code, "recording_exists");
  EXPECT_EQ(read_all(file), "someone else's\n");

  std::filesystem::create_symlink(dir.path() / "target.cast", dir.path() / "link.cast");
  rec = Recording::create(dir.path() / "link.cast", header());
  ASSERT_FALSE(rec.has_value());
  EXPECT_EQ(rec.error().code, "recording_exists");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "target.cast"));

  rec = Recording::create(dir.path() / "no-such-dir" / "x.cast", header());
  ASSERT_FALSE(rec.has_value());
  EXPECT_EQ(rec.error().code, "recording_io");

  Recording::Header bad = header();
  bad.width = 0;
  rec = Recording::create(dir.path() / "bad.cast", bad);
  ASSERT_FALSE(rec.has_value());
  EXPECT_EQ(rec.error().code, "recording_invalid");
  rec = Recording::create(dir.path() / "bad.cast", header(), 100);
  ASSERT_FALSE(rec.has_value());
  EXPECT_EQ(rec.error().code, "recording_invalid");
}

TEST(RecordingTest, NothingAfterClose) {
  TempDir dir;
  auto rec = Recording::create(dir.path() / "closed.cast", header());
  ASSERT_TRUE(rec.has_value());
  ASSERT_TRUE((*rec)->close().has_value());
  auto st = (*rec)->output(milliseconds(1), bytes("x"));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, "recording_closed");
  EXPECT_FALSE((*rec)->close().has_value());
}

// TestExecutor is a thread that runs jobs in order, like the gateway's recorder; while held,
// it runs none.
class TestExecutor {
 public:
  TestExecutor() : thread_([this] { run(); }) {}
  ~TestExecutor() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      held_ = false;
    }
    cv_.notify_all();
    thread_.join();
  }
  Recording::Executor executor() {
    return [this](std::function<void()> job) {
      {
        std::lock_guard lock(mu_);
        jobs_.push_back(std::move(job));
      }
      cv_.notify_all();
    };
  }
  void hold(bool held) {
    {
      std::lock_guard lock(mu_);
      held_ = held;
    }
    cv_.notify_all();
  }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return (!jobs_.empty() && !held_) || (stop_ && jobs_.empty()); });
      if (jobs_.empty()) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool held_ = false, stop_ = false;
  std::thread thread_;
};

// The same events give the same file, size and SHA-256 whether an executor writes them or not.
TEST(RecordingTest, AnExecutorWritesTheSameFile) {
  TempDir dir;
  TestExecutor ex;
  Recording::Summary sums[2];
  std::string contents[2];
  for (int k = 0; k < 2; ++k) {
    const auto file = dir.path() / (k == 0 ? "sync.cast" : "async.cast");
    auto rec = Recording::create(file, header(), Recording::kDefaultMaxBytes,
                                 k == 0 ? Recording::Executor{} : ex.executor());
    ASSERT_TRUE(rec.has_value());
    for (int i = 0; i < 20000; ++i) {  // ~600 KB: several handed-over buffers
      ASSERT_TRUE((*rec)->output(milliseconds(i), bytes("line \xc3\xa9 \x1b[1m\r\n")).has_value());
      if (i % 11 == 0) {
        ASSERT_TRUE((*rec)->input(milliseconds(i), bytes("k\xe2")).has_value());
      }
    }
    auto summary = (*rec)->close();
    ASSERT_TRUE(summary.has_value());
    sums[k] = *summary;
    contents[k] = read_all(file);
  }
  EXPECT_EQ(contents[0], contents[1]);
  EXPECT_EQ(sums[0].sha256, sums[1].sha256);
  EXPECT_EQ(sums[0].size, sums[1].size);
  EXPECT_EQ(sums[1].size, contents[1].size());
  const RunResult r = run_command("sha256sum '" + (dir.path() / "async.cast").string() + "'");
  EXPECT_EQ(r.output.substr(0, 64), sums[1].sha256);
}

// Output beyond kMaxBacklog that the executor has not written turns backlogged() on; once the
// executor catches up the drain callback runs (on its thread) and backlogged() is off again.
TEST(RecordingTest, BacklogStopsTheProducerUntilTheExecutorDrainsIt) {
  TempDir dir;
  TestExecutor ex;
  ex.hold(true);
  auto rec = Recording::create(dir.path() / "backlog.cast", header(), Recording::kDefaultMaxBytes,
                               ex.executor());
  ASSERT_TRUE(rec.has_value());
  Recording& r = **rec;
  std::atomic<int> drained{0};
  std::atomic<bool> on_executor{false};
  const auto executor_id = ex.id();
  r.set_drain_callback([&] {
    on_executor = std::this_thread::get_id() == executor_id;
    drained.fetch_add(1);
  });
  const std::string block(64 * 1024, 'x');
  size_t written = 0;
  while (!r.backlogged()) {
    ASSERT_TRUE(r.output(milliseconds(1), bytes(block)).has_value());
    written += block.size();
    ASSERT_LT(written, 2 * Recording::kMaxBacklog) << "never backlogged";
  }
  EXPECT_GE(written, Recording::kMaxBacklog);
  EXPECT_TRUE(r.backlogged());
  EXPECT_EQ(drained.load(), 0);
  ex.hold(false);
  for (int i = 0; i < 500 && drained.load() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(drained.load(), 1);
  EXPECT_TRUE(on_executor.load());
  EXPECT_FALSE(r.backlogged());
  auto summary = r.close();
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->size, std::filesystem::file_size(dir.path() / "backlog.cast"));
  EXPECT_GT(summary->size, written);
}

// A write that fails on the executor's thread (here: the file size limit) fails the next call
// and the close, which reports it.
TEST(RecordingTest, AWriteFailureOnTheExecutorIsReportedToTheProducer) {
  TempDir dir;
  TestExecutor ex;
  auto rec = Recording::create(dir.path() / "full.cast", header(), Recording::kDefaultMaxBytes,
                               ex.executor());
  ASSERT_TRUE(rec.has_value());
  Recording& r = **rec;
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 100 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string block(64 * 1024, 'y');
  Result<Status> st = Status::kRecorded;
  for (int i = 0; i < 500 && st.has_value(); ++i) {
    st = r.output(milliseconds(i), bytes(block));
    std::this_thread::sleep_for(milliseconds(2));
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, "recording_io");
  EXPECT_THAT(st.error().message, HasSubstr("write failed"));
  std::promise<Result<Recording::Summary>> closed;
  r.close_async([&](Result<Recording::Summary> s) { closed.set_value(std::move(s)); });
  auto summary = closed.get_future().get();
  ASSERT_FALSE(summary.has_value());
  EXPECT_EQ(summary.error().code, "recording_io");
}

// Stock asciinema (Debian's package) plays the output stream back. `asciinema cat` wants a
// terminal: script(1) gives it one.
TEST(RecordingTest, AsciinemaCatPrintsTheOutputStream) {
  if (::access("/usr/bin/asciinema", X_OK) != 0 || ::access("/usr/bin/script", X_OK) != 0) {
    GTEST_SKIP() << "asciinema or script(1) not installed";
  }
  TempDir dir;
  const auto file = dir.path() / "play.cast";
  auto rec = Recording::create(file, header());
  ASSERT_TRUE(rec.has_value());
  Recording& r = **rec;
  ASSERT_TRUE(r.output(milliseconds(10), bytes("hello \xc3")).has_value());
  ASSERT_TRUE(r.input(milliseconds(20), bytes("typed")).has_value());
  ASSERT_TRUE(r.resize(milliseconds(30), 100, 30).has_value());
  ASSERT_TRUE(r.output(milliseconds(40), bytes("\xa9t\xc3\xa9\r\nbye\r\n")).has_value());
  ASSERT_TRUE(r.close().has_value());
  const RunResult played =
      run_command("script -q -e -c \"asciinema cat '" + file.string() +
                  "'\" /dev/null </dev/null 2>&1");
  EXPECT_EQ(played.status, 0) << played.output;
  EXPECT_EQ(played.output, "hello \xc3\xa9t\xc3\xa9\r\nbye\r\n");
}

}  // namespace
}  // namespace touchgate::audit
