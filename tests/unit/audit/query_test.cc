#include "audit/query.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "audit/line.h"
#include "audit/verify.h"
#include "audit_test_util.h"

namespace touchgate::audit {
namespace {

using namespace touchgate::audit::testing;
using namespace std::chrono_literals;

TimePoint at(std::string_view text) {
  auto t = parse_time_spec(text, TimePoint{});
  EXPECT_TRUE(t) << text;
  return t ? *t : TimePoint{};
}

// A log whose records carry the times the test sets.
struct TestLog {
  explicit TestLog(const TempDir& t, uint64_t max_segment_bytes = 64ull << 20) {
    Options o = options_for(t);
    o.max_segment_bytes = max_segment_bytes;
    o.checkpoint_every = 1'000'000;
    o.checkpoint_interval = std::chrono::hours(24 * 1000);
    o.clock = [now = now] { return TimePoint(std::chrono::milliseconds(now->load())); };
    dir = o.dir;
    auto l = AuditLog::open(o);
    EXPECT_TRUE(l) << l.error().message;
    log = std::move(*l);
  }
  void set_time(std::string_view text) {
    now->store(std::chrono::duration_cast<std::chrono::milliseconds>(at(text).time_since_epoch())
                   .count());
  }
  uint64_t add(Record r) {
    auto seq = append_wait(*log, std::move(r));
    EXPECT_TRUE(seq);
    return seq ? *seq : 0;
  }

  std::shared_ptr<std::atomic<int64_t>> now = std::make_shared<std::atomic<int64_t>>(
      std::chrono::duration_cast<std::chrono::milliseconds>(at("2026-11-30T10:00:00Z")
                                                                 .time_since_epoch())
          .count());
  std::filesystem::path dir;
  std::unique_ptr<AuditLog> log;
};

Record decision(std::string_view conn, std::string_view user, std::string_view target,
                std::string_view outcome, std::string_view reason = "") {
  Record r("policy_decision");
  r.str("conn", conn).str("user", user).str("outcome", outcome).u64("channel", 1);
  r.str("target", target).str("rule", "prod").str("reason", reason);
  return r;
}

struct Seen {
  std::vector<uint64_t> seqs;
  std::vector<std::string> events;
  std::vector<std::string> lines;
};

RecordFn collect(Seen* seen) {
  return [seen](const RecordRef& r) {
    seen->seqs.push_back(r.parsed.seq);
    seen->events.emplace_back(r.parsed.event);
    seen->lines.emplace_back(r.text);
    return true;
  };
}

std::vector<uint64_t> matching(const std::filesystem::path& dir, const Filter& f) {
  std::vector<uint64_t> out;
  Cursor c(dir);
  c.read([&](const RecordRef& r) {
    if (f.matches(r.parsed)) out.push_back(r.parsed.seq);
    return true;
  });
  return out;
}

void append_text(const std::filesystem::path& file, std::string_view text) {
  std::ofstream out(file, std::ios::binary | std::ios::app);
  out << text;
}

TEST(AuditQueryTest, ParsesRelativeAndAbsoluteTimes) {
  const TimePoint now = at("2026-11-30T12:00:00Z");
  EXPECT_EQ(*parse_time_spec("2h", now), at("2026-11-30T10:00:00Z"));
  EXPECT_EQ(*parse_time_spec("30m", now), at("2026-11-30T11:30:00Z"));
  EXPECT_EQ(*parse_time_spec("90s", now), at("2026-11-30T11:58:30Z"));
  EXPECT_EQ(*parse_time_spec("7d", now), at("2026-11-23T12:00:00Z"));
  EXPECT_EQ(*parse_time_spec("1w", now), at("2026-11-23T12:00:00Z"));
  EXPECT_EQ(*parse_time_spec("2026-11-30", now), at("2026-11-30T00:00:00Z"));
  EXPECT_EQ(*parse_time_spec("2026-11-30T10:00:00+01:00", now), at("2026-11-30T09:00:00Z"));
  EXPECT_EQ(*parse_time_spec("2026-11-30T10:00:00-02:30", now), at("2026-11-30T12:30:00Z"));
  EXPECT_EQ(*parse_time_spec("2026-11-30T10:00:00.250Z", now),
            at("2026-11-30T10:00:00Z") + std::chrono::milliseconds(250));
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(
                parse_time_spec("1970-01-01T00:00:00Z", now)->time_since_epoch())
                .count(),
            0);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(
                parse_time_spec("2024-02-29T00:00:01Z", now)->time_since_epoch())
                .count(),
            1709164801);
  for (std::string_view bad : {"", "h", "2", "-2h", "2x", "2 h", "2026-13-01", "2026-02-30",
                               "2023-02-29", "2026-11-30T25:00:00Z", "2026-11-30T10:00:00",
                               "2026-11-30T10:00Z", "2026-11-30T10:00:00+0100", "yesterday",
                               "99999999999999999999d", "2026-11-30T10:00:00.Z"}) {
    auto t = parse_time_spec(bad, now);
    EXPECT_FALSE(t) << bad;
    if (!t) {
      EXPECT_EQ(t.error().code, "bad_time");
    }
  }
}

TEST(AuditQueryTest, ParsesRecordTimes) {
  EXPECT_EQ(*parse_record_time("2026-11-30T10:00:00.123Z"),
            at("2026-11-30T10:00:00Z") + std::chrono::milliseconds(123));
  EXPECT_FALSE(parse_record_time("2026-11-30T10:00:00Z"));
}

TEST(AuditQueryTest, FiltersByEveryCriterion) {
  TempDir t;
  TestLog log(t);
  log.add(Record("connection_accepted").str("conn", "aaaa-1").str("client", "192.0.2.1"));
  log.add(decision("aaaa-1", "alice", "db1", "allow"));  // 2
  log.set_time("2026-11-30T11:00:00Z");
  log.add(decision("aaaa-2", "bob", "db1", "deny", "policy_no_match"));  // 3
  log.add(decision("bbbb-2", "al\"ice", "web\x01", "deny", "policy_window"));  // 4
  log.set_time("2026-11-30T12:00:00Z");
  log.add(Record("channel_open").str("conn", "aaaa-12").str("user", "alice").str("target", "db1"));
  ASSERT_TRUE(log.log->close());

  Filter f;
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(matching(log.dir, f).size(), 6u);  // with the final checkpoint
  f.user = "alice";
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{2, 5}));
  f.user = "al\"ice";  // escaped in the log, compared unescaped
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{4}));
  f = {};
  f.target = "web\x01";
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{4}));
  f = {};
  f.outcome = "deny";
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{3, 4}));
  f.target = "db1";
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{3}));
  f = {};
  f.events = {"connection_accepted", "channel_open"};
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{1, 5}));
  f = {};
  f.conn = "aaaa-1";
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{1, 2}));
  f = {};
  f.conn_number = "2";  // aaaa-2 and bbbb-2, not aaaa-12
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{3, 4}));
  f = {};
  f.since = at("2026-11-30T11:00:00Z");  // inclusive
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{3, 4, 5, 6}));
  f.until = at("2026-11-30T12:00:00Z");  // exclusive
  EXPECT_EQ(matching(log.dir, f), (std::vector<uint64_t>{3, 4}));
  f.since = at("2026-11-30T11:00:00.001Z");
  EXPECT_TRUE(matching(log.dir, f).empty());
}

TEST(AuditQueryTest, ReadsEverySegmentInOrder) {
  TempDir t;
  TestLog log(t, /*max_segment_bytes=*/2000);
  for (int i = 0; i < 60; ++i) log.add(decision(fmt::format("aaaa-{}", i), "alice", "db1", "allow"));
  ASSERT_TRUE(log.log->close());
  const auto segments = list_segments(log.dir);
  ASSERT_GT(segments.size(), 3u);

  Seen seen;
  Cursor c(log.dir);
  EXPECT_TRUE(c.read(collect(&seen)));
  EXPECT_EQ(c.segments(), segments.size());
  EXPECT_EQ(c.skipped_total(), 0u);
  ASSERT_FALSE(seen.seqs.empty());
  for (size_t i = 0; i < seen.seqs.size(); ++i) EXPECT_EQ(seen.seqs[i], i + 1);
  EXPECT_EQ(c.records(), seen.seqs.size());
  EXPECT_EQ(std::count(seen.events.begin(), seen.events.end(), "policy_decision"), 60);
  EXPECT_EQ(std::count(seen.events.begin(), seen.events.end(), "segment_start"),
            static_cast<long>(segments.size() - 1));

  // A callback that returns false stops the read; the next read goes on after that record.
  Cursor d(log.dir);
  uint64_t first = 0;
  EXPECT_FALSE(d.read([&](const RecordRef& r) {
    first = r.parsed.seq;
    return false;
  }));
  EXPECT_EQ(first, 1u);
  Seen rest;
  EXPECT_TRUE(d.read(collect(&rest)));
  ASSERT_FALSE(rest.seqs.empty());
  EXPECT_EQ(rest.seqs.front(), 2u);
  EXPECT_EQ(rest.seqs.size(), seen.seqs.size() - 1);
}

TEST(AuditQueryTest, SkipsALineLongerThanTheLimitWithoutHoldingIt) {
  TempDir t;
  TestLog log(t);
  for (int i = 0; i < 3; ++i) log.add(decision("aaaa-1", "alice", "db1", "allow"));
  ASSERT_TRUE(log.log->close());
  const auto file = log.dir / list_segments(log.dir).front();
  auto lines = read_lines(file);
  ASSERT_EQ(lines.size(), 4u);
  // A 3 MiB line (no '\n' for longer than the buffer) and a bad one between good records.
  lines.insert(lines.begin() + 1, std::string(3 * kMaxLine, 'x'));
  lines.insert(lines.begin() + 3, "{\"not\":\"a record\"}");
  write_lines(file, lines);

  Seen seen;
  Cursor c(log.dir);
  EXPECT_TRUE(c.read(collect(&seen)));
  EXPECT_EQ(seen.seqs, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(c.skipped_total(), 2u);
  ASSERT_EQ(c.skipped().size(), 1u);
  EXPECT_EQ(c.skipped()[0].file, file.filename().string());
  EXPECT_EQ(c.skipped()[0].first_line, 2u);
  EXPECT_NE(c.skipped()[0].first_reason.find("longer than"), std::string::npos);
  for (const auto& l : seen.lines) EXPECT_LT(l.size(), 4096u);
}

TEST(AuditQueryTest, SkipsATooLongLineAtTheEndOfAnOlderSegment) {
  TempDir t;
  const auto dir = t.path() / "log";
  std::filesystem::create_directories(dir);
  {
    TempDir src;
    TestLog log(src, 2000);
    for (int i = 0; i < 40; ++i) log.add(decision("aaaa-1", "alice", "db1", "allow"));
    ASSERT_TRUE(log.log->close());
    for (const auto& s : list_segments(log.dir)) std::filesystem::copy(log.dir / s, dir / s);
  }
  const auto first = dir / list_segments(dir).front();
  append_text(first, std::string(kMaxLine + 10, 'y'));  // no '\n'
  Seen seen;
  Cursor c(dir);
  c.read(collect(&seen));
  EXPECT_EQ(c.skipped_total(), 1u);
  for (size_t i = 0; i < seen.seqs.size(); ++i) EXPECT_EQ(seen.seqs[i], i + 1);
  EXPECT_GT(seen.seqs.size(), 40u);
}

TEST(AuditQueryTest, FollowsAppendsAndRotationNeverDeliveringATornLine) {
  TempDir src;
  TestLog log(src, 2000);
  for (int i = 0; i < 40; ++i) log.add(decision(fmt::format("aaaa-{}", i), "alice", "db1", "allow"));
  ASSERT_TRUE(log.log->close());
  const auto segments = list_segments(log.dir);
  ASSERT_GE(segments.size(), 2u);
  const auto seg1 = read_lines(log.dir / segments[0]);
  const auto seg2 = read_lines(log.dir / segments[1]);

  // Replay the log into another directory piece by piece, as a writer would.
  TempDir t;
  const auto dir = t.path();
  Cursor c(dir);
  Seen seen;
  EXPECT_TRUE(c.read(collect(&seen)));  // no segment yet
  EXPECT_TRUE(seen.seqs.empty());

  append_text(dir / segments[0], seg1[0] + "\n" + seg1[1] + "\n" + seg1[2].substr(0, 10));
  EXPECT_TRUE(c.read(collect(&seen)));
  EXPECT_EQ(seen.seqs, (std::vector<uint64_t>{1, 2}));  // not the torn third line
  append_text(dir / segments[0], seg1[2].substr(10, 5));
  EXPECT_TRUE(c.read(collect(&seen)));
  EXPECT_EQ(seen.seqs.size(), 2u);
  append_text(dir / segments[0], seg1[2].substr(15) + "\n");
  EXPECT_TRUE(c.read(collect(&seen)));
  EXPECT_EQ(seen.seqs, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(seen.lines.back(), seg1[2]);

  // The rest of the first segment and the start of the second appear between two reads.
  std::string rest;
  for (size_t i = 3; i < seg1.size(); ++i) rest += seg1[i] + "\n";
  append_text(dir / segments[0], rest);
  append_text(dir / segments[1], seg2[0] + "\n" + seg2[1].substr(0, 7));
  EXPECT_TRUE(c.read(collect(&seen)));
  EXPECT_EQ(seen.seqs.size(), seg1.size() + 1);
  EXPECT_EQ(seen.events.back(), "segment_start");
  append_text(dir / segments[1], seg2[1].substr(7) + "\n");
  EXPECT_TRUE(c.read(collect(&seen)));
  EXPECT_EQ(seen.seqs.size(), seg1.size() + 2);
  for (size_t i = 0; i < seen.seqs.size(); ++i) EXPECT_EQ(seen.seqs[i], i + 1);
  EXPECT_EQ(c.skipped_total(), 0u);
}

TEST(AuditQueryTest, FollowPicksUpALiveWriterUntilStopped) {
  TempDir t;
  TestLog log(t, 3000);
  log.add(decision("aaaa-0", "alice", "db1", "allow"));
  Cursor c(log.dir);
  c.seek(find_tail_start(log.dir, 0));  // only what comes from now on
  std::atomic<bool> stop{false};
  std::mutex mu;
  Seen seen;
  std::atomic<int> flushes{0};
  std::thread reader([&] {
    follow(
        c,
        [&](const RecordRef& r) {
          std::lock_guard lock(mu);
          seen.seqs.push_back(r.parsed.seq);
          return true;
        },
        stop, 20ms, [&] { ++flushes; });
  });
  uint64_t last = 0;
  for (int i = 1; i <= 50; ++i) last = log.add(decision("aaaa-1", "alice", "db1", "allow"));
  ASSERT_GT(list_segments(log.dir).size(), 2u);  // it rotated meanwhile
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    {
      std::lock_guard lock(mu);
      if (!seen.seqs.empty() && seen.seqs.back() == last) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  reader.join();
  ASSERT_TRUE(log.log->close());
  std::lock_guard lock(mu);
  ASSERT_FALSE(seen.seqs.empty());
  EXPECT_EQ(seen.seqs.front(), 2u);
  EXPECT_EQ(seen.seqs.back(), last);
  for (size_t i = 0; i < seen.seqs.size(); ++i) EXPECT_EQ(seen.seqs[i], i + 2);
  EXPECT_GT(flushes.load(), 0);
}

TEST(AuditQueryTest, FindsTheStartOfTheLastLinesAcrossSegments) {
  TempDir t;
  TestLog log(t, 2000);
  for (int i = 0; i < 40; ++i) log.add(decision("aaaa-1", "alice", "db1", "allow"));
  ASSERT_TRUE(log.log->close());
  uint64_t total = 0;
  {
    Cursor c(log.dir);
    c.read([&](const RecordRef&) { return true; });
    total = c.records();
  }
  const auto segments = list_segments(log.dir);
  const auto last_lines = read_lines(log.dir / segments.back()).size();
  // A torn line at the end is not a line yet.
  append_text(log.dir / segments.back(), "{\"seq\":");

  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{last_lines},
                     uint64_t{last_lines + 1}, uint64_t{last_lines + 7}, total, total + 5}) {
    Cursor c(log.dir);
    c.seek(find_tail_start(log.dir, n));
    Seen seen;
    c.read(collect(&seen));
    const uint64_t want = std::min(n, total);
    ASSERT_EQ(seen.seqs.size(), want) << n;
    if (want > 0) {
      EXPECT_EQ(seen.seqs.front(), total - want + 1) << n;
      EXPECT_EQ(seen.seqs.back(), total) << n;
    }
    EXPECT_EQ(c.skipped_total(), 0u);
  }
  EXPECT_EQ(find_tail_start(log.dir, 0).segment, segments.back());
  EXPECT_EQ(find_tail_start(t.path() / "none", 5).segment, "");
}

TEST(AuditQueryTest, CountsStatsWithCappedMaps) {
  TempDir t;
  TestLog log(t);
  log.add(decision("aaaa-1", "alice", "db1", "allow"));
  log.add(decision("aaaa-1", "alice", "db2", "deny", "policy_no_match"));
  log.add(decision("aaaa-2", "bob", "db1", "deny", "policy_no_match"));
  log.set_time("2026-11-30T13:00:00Z");
  log.add(Record("suspected_clone")
              .str("conn", "aaaa-3")
              .str("user", "carol")
              .str("outcome", "deny")
              .str("key_fp", "SHA256:abc")
              .u64("counter", 3)
              .u64("last_counter", 9));
  log.add(Record("suspected_clone")
              .str("conn", "aaaa-4")
              .str("user", "carol")
              .str("outcome", "deny")
              .str("key_fp", "SHA256:abc")
              .u64("counter", 4)
              .u64("last_counter", 9));
  ASSERT_TRUE(log.log->close());

  Stats s;
  Stats small(2);
  Cursor c(log.dir);
  c.read([&](const RecordRef& r) {
    s.add(r.parsed);
    small.add(r.parsed);
    return true;
  });
  EXPECT_EQ(s.records, 6u);  // with the final checkpoint
  EXPECT_EQ(s.first_seq, 1u);
  EXPECT_EQ(s.last_seq, 6u);
  EXPECT_EQ(s.first_ts, "2026-11-30T10:00:00.000Z");
  EXPECT_EQ(s.last_ts, "2026-11-30T13:00:00.000Z");
  EXPECT_EQ(s.events["policy_decision"], 3u);
  EXPECT_EQ(s.events["suspected_clone"], 2u);
  EXPECT_EQ(s.events["checkpoint"], 1u);
  EXPECT_EQ(s.users["alice"].records, 2u);
  EXPECT_EQ(s.users["alice"].allow, 1u);
  EXPECT_EQ(s.users["alice"].deny, 1u);
  EXPECT_EQ(s.users["carol"].deny, 2u);
  EXPECT_EQ(s.targets["db1"].records, 2u);
  EXPECT_EQ(s.deny_reasons["policy_no_match"], 2u);
  EXPECT_EQ(s.deny_reasons["(none)"], 2u);
  ASSERT_EQ(s.clones.size(), 1u);
  EXPECT_EQ((s.clones[{"SHA256:abc", "carol"}]), 2u);
  EXPECT_EQ(s.more_users, 0u);

  EXPECT_EQ(small.users.size(), 2u);
  EXPECT_EQ(small.more_users, 2u);  // carol's two records
  EXPECT_EQ(small.events.size(), 2u);
  EXPECT_EQ(small.more_events, 1u);  // the checkpoint
}

}  // namespace
}  // namespace touchgate::audit
