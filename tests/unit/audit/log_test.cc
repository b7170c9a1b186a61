#include "audit/log.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "audit/line.h"
#include "audit/verify.h"
#include "audit_test_util.h"
#include "ssh/digest.h"

namespace touchgate::audit {
namespace {

using namespace touchgate::audit::testing;

std::vector<ParsedLine> parse_all(const std::vector<std::string>& lines) {
  std::vector<ParsedLine> out;
  for (const auto& l : lines) {
    ParsedLine p;
    EXPECT_EQ(parse_line(l, &p), nullptr) << l;
    out.push_back(p);
  }
  return out;
}

VerifyReport verify_with_pub(const Options& o) {
  auto pub = o.key_path;
  pub += ".pub";
  auto key = load_audit_public_key(pub);
  EXPECT_TRUE(key) << key.error().message;
  return verify_directory(o.dir, key ? std::optional(*key) : std::nullopt);
}

std::string findings_text(const VerifyReport& r) {
  std::string s;
  for (const auto& f : r.findings)
    s += f.kind + " " + f.file + ":" + std::to_string(f.line) + " seq " + std::to_string(f.seq) +
         " " + f.message + "\n";
  return s;
}

TEST(AuditLogTest, StartsAChainSignsItAndWritesTheKey) {
  TempDir t;
  auto o = options_for(t);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log) << log.error().message;
    EXPECT_EQ(
        *append_wait(**log, Record("connection_accepted").str("peer", "192.0.2.1").u64("conn", 7)),
        1u);
    EXPECT_EQ(*append_wait(**log, Record("auth").str("user", "alice").boolean("ok", true)), 2u);
    ASSERT_TRUE((*log)->close());
  }
  struct stat st {};
  ASSERT_EQ(::stat(o.key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto pub = o.key_path;
  pub += ".pub";
  const std::string pub_text = read_all(pub);
  EXPECT_EQ(pub_text.rfind("ssh-ed25519 AAAA", 0), 0u);
  EXPECT_NE(pub_text.find(" touchgate-audit\n"), std::string::npos);

  const auto lines = read_lines(o.dir / "audit-00000000000000000001.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  const auto p = parse_all(lines);
  EXPECT_EQ(p[0].prev, kGenesisHash);
  EXPECT_EQ(p[1].prev, p[0].hash);
  EXPECT_EQ(p[2].event, "checkpoint");
  EXPECT_EQ(p[2].find("head_seq")->raw, "2");
  EXPECT_EQ(p[2].find("head")->raw, p[1].hash);
  EXPECT_EQ(read_all(o.dir / "audit.head"),
            "touchgate-audit-head-v1\nseq: 3\nhash: " + std::string(p[2].hash) + "\n");

  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  EXPECT_TRUE(r.findings.empty()) << findings_text(r);
  EXPECT_EQ(r.records, 3u);
  EXPECT_EQ(r.checkpoints, 1u);
  EXPECT_TRUE(r.key_pinned);
}

TEST(AuditLogTest, GroupCommitFromManyThreads) {
  TempDir t;
  auto o = options_for(t);
  o.checkpoint_every = 1'000'000;
  constexpr int kThreads = 4, kEach = 500;
  std::atomic<int> syncs{0};
  std::atomic<int> enqueued{0};
  // The first sync waits until every record is queued: whatever the scheduling, the rest must
  // then go to disk in a few batches, not one sync per record.
  o.fault = [&](IoOp op) {
    if (op == IoOp::kSync && syncs++ == 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (enqueued.load() < kThreads * kEach && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return 0;
  };
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  std::mutex mu;
  std::vector<uint64_t> seqs;
  std::atomic<int> calls{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kEach; ++k) {
        auto a = (*log)->append(Record("e").u64("thread", static_cast<uint64_t>(i)).u64("k", k),
                                [&](Result<uint64_t> seq) {
                                  ++calls;
                                  ASSERT_TRUE(seq);
                                  std::lock_guard lk(mu);
                                  seqs.push_back(*seq);
                                });
        ASSERT_TRUE(a);
        ++enqueued;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE((*log)->close());
  EXPECT_EQ(calls.load(), kThreads * kEach);
  std::sort(seqs.begin(), seqs.end());
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
  EXPECT_LE(syncs.load(), 10);  // batches, not one sync per record
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  EXPECT_EQ(r.records, static_cast<uint64_t>(kThreads * kEach + 1));
}

TEST(AuditLogTest, RotatesBySizeAndLinksSegments) {
  TempDir t;
  auto o = options_for(t);
  o.max_segment_bytes = 2000;
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    for (int i = 0; i < 40; ++i)
      ASSERT_TRUE(append_wait(**log, Record("e").u64("i", static_cast<uint64_t>(i))));
    ASSERT_TRUE((*log)->close());
  }
  const auto segs = list_segments(o.dir);
  ASSERT_GT(segs.size(), 2u);
  for (size_t i = 1; i < segs.size(); ++i) {
    const auto prev_lines = read_lines(o.dir / segs[i - 1]);
    const auto cur_lines = read_lines(o.dir / segs[i]);
    const auto prev = parse_all(prev_lines);
    const auto cur = parse_all(cur_lines);
    EXPECT_EQ(prev.back().event, "checkpoint");
    EXPECT_EQ(cur.front().event, "segment_start");
    EXPECT_EQ(unescape_string(cur.front().find("prev_segment")->raw), segs[i - 1]);
    EXPECT_EQ(cur.front().prev, prev.back().hash);
    EXPECT_EQ(segs[i], segment_name(cur.front().seq));
  }
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  EXPECT_EQ(r.segments, segs.size());
}

TEST(AuditLogTest, RotatesByAge) {
  TempDir t;
  auto o = options_for(t);
  auto offset = std::make_shared<std::atomic<int64_t>>(0);
  o.clock = [offset] { return std::chrono::system_clock::now() + std::chrono::hours(*offset); };
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(append_wait(**log, Record("a")));
  *offset = 25;
  ASSERT_TRUE(append_wait(**log, Record("b")));
  ASSERT_TRUE((*log)->close());
  EXPECT_EQ(list_segments(o.dir).size(), 2u);
  EXPECT_TRUE(verify_with_pub(o).clean());
}

TEST(AuditLogTest, ReopenContinuesTheChain) {
  TempDir t;
  auto o = options_for(t);
  for (int round = 0; round < 3; ++round) {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    EXPECT_EQ((*log)->recovered(), "");
    ASSERT_TRUE(append_wait(**log, Record("e").u64("round", static_cast<uint64_t>(round))));
    ASSERT_TRUE((*log)->close());
  }
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.findings.empty()) << findings_text(r);
  EXPECT_EQ(r.records, 6u);  // three records, three checkpoints
}

// The findings that are not warnings.
std::vector<std::string> tampering(const VerifyReport& r) {
  std::vector<std::string> out;
  for (const auto& f : r.findings)
    if (f.tampering) out.push_back(f.kind);
  return out;
}

TEST(AuditLogTest, TornTailIsCutOnReopenKeptAndRecorded) {
  TempDir t;
  auto o = options_for(t);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(append_wait(**log, Record("e")));
    ASSERT_TRUE((*log)->close());
  }
  const auto seg = o.dir / "audit-00000000000000000001.jsonl";
  const std::string good = read_all(seg);
  const std::string torn = "{\"seq\":3,\"ts\":\"2026-";
  write_all(seg, good + torn);
  EXPECT_TRUE(verify_with_pub(o).has("torn_tail"));
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log) << log.error().message;
    EXPECT_NE((*log)->recovered().find(fmt::format("cut {} bytes", torn.size())), std::string::npos)
        << (*log)->recovered();
    ASSERT_TRUE(append_wait(**log, Record("after")));
    ASSERT_TRUE((*log)->close());
  }
  // The torn bytes are kept beside the segment, 0600, and the segment is not taken for one.
  const auto side = o.dir / "audit-00000000000000000001.jsonl.cut-3";
  ASSERT_TRUE(std::filesystem::exists(side));
  EXPECT_EQ(read_all(side), torn);
  struct stat st {};
  ASSERT_EQ(::stat(side.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(list_segments(o.dir), std::vector<std::string>{"audit-00000000000000000001.jsonl"});
  EXPECT_EQ(read_all(seg).substr(0, good.size()), good);

  const auto texts = read_lines(seg);
  const auto lines = parse_all(texts);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[2].event, "recovered");
  EXPECT_EQ(unescape_string(lines[2].find("segment")->raw), "audit-00000000000000000001.jsonl");
  EXPECT_EQ(lines[2].find("dropped_bytes")->raw, std::to_string(torn.size()));
  EXPECT_EQ(lines[2].find("complete_lines")->raw, "0");
  EXPECT_EQ(unescape_string(lines[2].find("side_file")->raw),
            "audit-00000000000000000001.jsonl.cut-3");
  EXPECT_EQ(unescape_string(lines[2].find("sha256")->raw),
            to_hex(ssh::sha256(ssh::as_bytes(torn))));
  // verify tells the auditor: a warning naming the cut, its size and the side file.
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  ASSERT_EQ(r.findings.size(), 1u) << findings_text(r);
  const Finding& f = r.findings[0];
  EXPECT_EQ(f.kind, "recovered");
  EXPECT_FALSE(f.tampering);
  EXPECT_EQ(f.seq, 3u);
  EXPECT_EQ(f.line, 3u);
  ASSERT_TRUE(f.cut);
  EXPECT_EQ(f.cut->segment, "audit-00000000000000000001.jsonl");
  EXPECT_EQ(f.cut->bytes, torn.size());
  EXPECT_EQ(f.cut->lines, 0u);
  EXPECT_EQ(f.cut->side_file, "audit-00000000000000000001.jsonl.cut-3");
  EXPECT_EQ(f.cut->side_status, "intact");
  EXPECT_NE(f.message.find("audit-00000000000000000001.jsonl.cut-3"), std::string::npos);

  // A changed side file is tampering with the evidence; a deleted one is noted.
  write_all(side, "{\"seq\":3,\"ts\":\"2027-");
  auto m = verify_with_pub(o);
  EXPECT_EQ(tampering(m), std::vector<std::string>{"cut_modified"}) << findings_text(m);
  EXPECT_EQ(m.first("recovered")->cut->side_status, "modified");
  std::filesystem::remove(side);
  m = verify_with_pub(o);
  EXPECT_TRUE(m.clean()) << findings_text(m);
  EXPECT_EQ(m.first("recovered")->cut->side_status, "missing");
}

// A complete last line whose hash does not hold (past the checkpoint audit.head names) is cut
// too, but its bytes survive in the side file and verify says so.
TEST(AuditLogTest, TamperedCompleteLastLineIsKept) {
  TempDir t;
  auto o = options_for(t);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(append_wait(**log, Record("e").str("user", "alice")));
    ASSERT_TRUE((*log)->close());
  }
  const auto seg = o.dir / "audit-00000000000000000001.jsonl";
  const std::string text = read_all(seg);
  // A third line, seq 3, whose "user" was changed after it was written.
  ParsedLine p;
  const auto lines = read_lines(seg);
  ASSERT_EQ(parse_line(lines[1], &p), nullptr);
  const auto next =
      format_line(3, std::chrono::system_clock::now(), p.hash, Record("e").str("user", "bob"));
  std::string bad = next.text;
  bad.replace(bad.find("bob"), 3, "eve");
  write_all(seg, text + bad);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log) << log.error().message;
    EXPECT_NE((*log)->recovered().find("1 complete lines"), std::string::npos)
        << (*log)->recovered();
    ASSERT_TRUE((*log)->close());
  }
  const auto side = o.dir / "audit-00000000000000000001.jsonl.cut-3";
  EXPECT_EQ(read_all(side), bad);  // the line as it was found, '\n' included
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  const auto* f = r.first("recovered");
  ASSERT_NE(f, nullptr) << findings_text(r);
  EXPECT_FALSE(f->tampering);
  EXPECT_EQ(f->cut->bytes, bad.size());
  EXPECT_EQ(f->cut->lines, 1u);
  EXPECT_EQ(f->cut->side_status, "intact");
  EXPECT_NE(f->message.find("1 of them complete lines"), std::string::npos) << f->message;

  // A side file of that name already there is never overwritten: the next name is taken.
  const auto taken = o.dir / "audit-00000000000000000001.jsonl.cut-5";
  write_all(taken, "someone else's");
  write_all(seg, read_all(seg) + "{\"torn");  // after the checkpoint seq 4
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log) << log.error().message;
    ASSERT_TRUE((*log)->close());
  }
  EXPECT_EQ(read_all(side), bad);
  EXPECT_EQ(read_all(taken), "someone else's");
  EXPECT_EQ(read_all(o.dir / "audit-00000000000000000001.jsonl.cut-5.2"), "{\"torn");
  EXPECT_EQ(list_cut_files(o.dir).size(), 3u);
  const auto again = verify_with_pub(o);
  EXPECT_EQ(again.verdict(), "clean") << findings_text(again);
  ASSERT_NE(again.first("cut_unrecorded"), nullptr) << findings_text(again);
  EXPECT_EQ(again.first("cut_unrecorded")->file, "audit-00000000000000000001.jsonl.cut-5");
}

// The altered checkpoint that audit.head names is the last line: the writer refuses to start and
// changes nothing, so verify still sees the altered line (modified), not a cut log.
TEST(AuditLogTest, AlteredHeadCheckpointIsNotCut) {
  TempDir t;
  auto o = options_for(t);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(append_wait(**log, Record("e")));
    ASSERT_TRUE((*log)->close());
  }
  const auto seg = o.dir / "audit-00000000000000000001.jsonl";
  std::string text = read_all(seg);
  const std::string field = "\"head_seq\":1,";
  const size_t at = text.find(field);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, field.size(), "\"head_seq\":7,");
  write_all(seg, text);
  auto log = AuditLog::open(o);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "audit_truncated");
  EXPECT_EQ(read_all(seg), text);
  EXPECT_TRUE(list_cut_files(o.dir).empty());
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.has("modified")) << findings_text(r);
  EXPECT_EQ(r.first("modified")->line, 2u);
}

TEST(AuditLogTest, SideFileWithoutRecordIsAWarning) {
  TempDir t;
  auto o = options_for(t);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(append_wait(**log, Record("e")));
    ASSERT_TRUE((*log)->close());
  }
  // As a crash between the cut and its `recovered` record leaves it.
  const std::string cut = "{\"seq\":3";
  write_all(o.dir / "audit-00000000000000000001.jsonl.cut-3", cut);
  EXPECT_EQ(list_segments(o.dir), std::vector<std::string>{"audit-00000000000000000001.jsonl"});
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  const auto* f = r.first("cut_unrecorded");
  ASSERT_NE(f, nullptr) << findings_text(r);
  EXPECT_FALSE(f->tampering);
  EXPECT_EQ(f->file, "audit-00000000000000000001.jsonl.cut-3");
  EXPECT_EQ(f->cut->bytes, cut.size());
  // The writer goes on as usual.
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log) << log.error().message;
  EXPECT_EQ((*log)->recovered(), "");
}

TEST(AuditLogTest, RefusesToContinueALogWithoutItsHead) {
  TempDir t;
  auto o = options_for(t);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(append_wait(**log, Record("a")));
    ASSERT_TRUE(append_wait(**log, Record("b")));
    ASSERT_TRUE((*log)->close());
  }
  const auto seg = o.dir / "audit-00000000000000000001.jsonl";
  const std::string before = read_all(seg);
  std::filesystem::remove(o.dir / "audit.head");
  auto log = AuditLog::open(o);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "audit_head_missing");
  EXPECT_NE(log.error().message.find("audit.head is missing"), std::string::npos);
  EXPECT_NE(log.error().message.find("run touchgate audit verify"), std::string::npos);
  EXPECT_EQ(read_all(seg), before);
  EXPECT_FALSE(std::filesystem::exists(o.dir / "audit.head"));
  const auto r = verify_with_pub(o);
  EXPECT_EQ(tampering(r), std::vector<std::string>{"head_missing"}) << findings_text(r);

  // The same with more than one segment (the checkpoint is in an earlier one).
  TempDir t2;
  auto o2 = options_for(t2);
  o2.max_segment_bytes = 600;
  {
    auto log2 = AuditLog::open(o2);
    ASSERT_TRUE(log2);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(append_wait(**log2, Record("e").u64("i", i)));
    ASSERT_TRUE((*log2)->close());
  }
  ASSERT_GT(list_segments(o2.dir).size(), 1u);
  std::filesystem::remove(o2.dir / "audit.head");
  auto again = AuditLog::open(o2);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, "audit_head_missing");
}

TEST(AuditLogTest, ContinuesALogWithNoCheckpointYet) {
  // A crash before the first checkpoint leaves records and no audit.head: that log continues.
  TempDir t;
  auto o = options_for(t);
  std::filesystem::create_directories(o.dir);
  const auto first = format_line(1, std::chrono::system_clock::now(), kGenesisHash, Record("a"));
  const auto second = format_line(2, std::chrono::system_clock::now(), first.hash, Record("b"));
  write_all(o.dir / "audit-00000000000000000001.jsonl", first.text + second.text);
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log) << log.error().message;
  EXPECT_EQ(*append_wait(**log, Record("c")), 3u);
  ASSERT_TRUE((*log)->close());
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.findings.empty()) << findings_text(r);
}

TEST(AuditLogTest, RefusesToContinueALogCutBeforeItsHead) {
  TempDir t;
  auto o = options_for(t);
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    ASSERT_TRUE(append_wait(**log, Record("a")));
    ASSERT_TRUE(append_wait(**log, Record("b")));
    ASSERT_TRUE((*log)->close());
  }
  const auto seg = o.dir / "audit-00000000000000000001.jsonl";
  auto lines = read_lines(seg);
  ASSERT_EQ(lines.size(), 3u);
  lines.resize(1);  // "b" and the checkpoint audit.head names are gone
  write_lines(seg, lines);
  auto log = AuditLog::open(o);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().code, "audit_truncated");
  EXPECT_EQ(read_lines(seg).size(), 1u);
  EXPECT_TRUE(verify_with_pub(o).has("truncated"));
}

TEST(AuditLogTest, WriteFailureFailsClosedThenRecovers) {
  TempDir t;
  auto o = options_for(t);
  o.retry_interval = std::chrono::milliseconds(50);
  auto failing = std::make_shared<std::atomic<int>>(0);
  o.fault = [failing](IoOp op) {
    if (op == IoOp::kSync && *failing > 0) {
      --*failing;
      return ENOSPC;
    }
    return 0;
  };
  std::vector<std::string> written;  // on_written: durable lines only, in order
  o.on_written = [&](std::string_view line) { written.emplace_back(line); };
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(append_wait(**log, Record("before")));
  *failing = 3;
  auto lost = append_wait(**log, Record("lost").str("marker", "never-on-disk"));
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, "audit_unavailable");
  EXPECT_NE(lost.error().message.find("No space left on device"), std::string::npos);
  EXPECT_FALSE((*log)->healthy());
  auto refused = (*log)->append(Record("refused"), [](Result<uint64_t>) {});
  if (!refused) {
    EXPECT_EQ(refused.error().code, "audit_unavailable");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(*log)->healthy() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE((*log)->healthy());
  ASSERT_TRUE(append_wait(**log, Record("after")));
  ASSERT_TRUE((*log)->close());

  const std::string text = read_all(o.dir / "audit-00000000000000000001.jsonl");
  EXPECT_EQ(text.find("never-on-disk"), std::string::npos);
  EXPECT_EQ(written, read_lines(o.dir / "audit-00000000000000000001.jsonl"));
  EXPECT_EQ((*log)->lines(), written.size());
  EXPECT_NE(text.find("\"event\":\"audit_recovered\""), std::string::npos);
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.findings.empty()) << findings_text(r);
}

TEST(AuditLogTest, FailuresAroundRotationKeepTheChain) {
  TempDir t;
  auto o = options_for(t);
  o.max_segment_bytes = 1200;
  o.checkpoint_every = 4;
  o.retry_interval = std::chrono::milliseconds(10);
  auto failing = std::make_shared<std::atomic<int>>(0);
  o.fault = [failing](IoOp op) {
    if (op == IoOp::kWrite && *failing > 0) {
      --*failing;
      return EIO;
    }
    return 0;
  };
  std::map<uint64_t, int> durable;  // seq -> i
  int refused = 0;
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    for (int i = 0; i < 60; ++i) {
      if (i % 5 == 0) *failing = 1;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!(*log)->healthy() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      auto r = append_wait(**log, Record("e").u64("i", static_cast<uint64_t>(i)));
      if (r) {
        durable[*r] = i;
      } else {
        EXPECT_EQ(r.error().code, "audit_unavailable");
        ++refused;
      }
    }
    ASSERT_TRUE((*log)->close());
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(list_segments(o.dir).size(), 2u);
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.findings.empty()) << findings_text(r);
  // Every record reported durable is in the log under its seq.
  for (const auto& seg : list_segments(o.dir)) {
    const auto texts = read_lines(o.dir / seg);
    for (const auto& p : parse_all(texts)) {
      auto it = durable.find(p.seq);
      if (it == durable.end()) continue;
      EXPECT_EQ(p.event, "e");
      EXPECT_EQ(p.find("i")->raw, std::to_string(it->second));
      durable.erase(it);
    }
  }
  EXPECT_TRUE(durable.empty());
}

TEST(AuditLogTest, FullQueueRefusesAtOnce) {
  TempDir t;
  auto o = options_for(t);
  o.queue_limit = 1;
  auto entered = std::make_shared<std::promise<void>>();
  auto release = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  auto first = std::make_shared<std::atomic<bool>>(true);
  o.fault = [=](IoOp op) {
    if (op == IoOp::kSync && first->exchange(false)) {
      entered->set_value();
      released.wait();
    }
    return 0;
  };
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  std::atomic<int> done{0};
  ASSERT_TRUE((*log)->append(Record("a"), [&](Result<uint64_t> r) { done += r ? 1 : 100; }));
  entered->get_future().wait();
  ASSERT_TRUE((*log)->append(Record("b"), [&](Result<uint64_t> r) { done += r ? 1 : 100; }));
  auto c = (*log)->append(Record("c"), [](Result<uint64_t>) {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "audit_overloaded");
  release->set_value();
  ASSERT_TRUE((*log)->close());
  EXPECT_EQ(done.load(), 2);
}

TEST(AuditLogTest, CheckpointAfterIntervalWithoutClose) {
  TempDir t;
  auto o = options_for(t);
  o.checkpoint_interval = std::chrono::milliseconds(50);
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(append_wait(**log, Record("e")));
  const auto seg = o.dir / "audit-00000000000000000001.jsonl";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (read_all(seg).find("\"event\":\"checkpoint\"") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto lines = read_lines(seg);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find("\"event\":\"checkpoint\",\"head_seq\":1,"), std::string::npos);
  // Nothing new since: no further checkpoint, and close adds none either.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_TRUE((*log)->close());
  EXPECT_EQ(read_lines(seg).size(), 2u);
  EXPECT_TRUE(verify_with_pub(o).findings.empty());
}

TEST(AuditLogTest, OneWriterPerDirectory) {
  TempDir t;
  auto o = options_for(t);
  auto first = AuditLog::open(o);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(append_wait(**first, Record("a")));
  struct stat st {};
  ASSERT_EQ(::stat((o.dir / "audit.lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto second = AuditLog::open(o);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, "audit_locked");
  EXPECT_NE(second.error().message.find(o.dir.string()), std::string::npos);
  EXPECT_NE(second.error().message.find("another touchgated"), std::string::npos);
  // The refused writer touched nothing: the first one goes on.
  ASSERT_TRUE(append_wait(**first, Record("b")));
  ASSERT_TRUE((*first)->close());

  auto third = AuditLog::open(o);
  ASSERT_TRUE(third) << third.error().message;
  ASSERT_TRUE(append_wait(**third, Record("c")));
  third->reset();  // the destructor releases the lock too
  auto fourth = AuditLog::open(o);
  ASSERT_TRUE(fourth) << fourth.error().message;
  ASSERT_TRUE((*fourth)->close());

  // The lock file is not a segment: listing and verifying ignore it.
  ASSERT_TRUE(std::filesystem::exists(o.dir / "audit.lock"));
  EXPECT_EQ(list_segments(o.dir), std::vector<std::string>{"audit-00000000000000000001.jsonl"});
  const auto r = verify_with_pub(o);
  EXPECT_TRUE(r.findings.empty()) << findings_text(r);
  EXPECT_EQ(r.records, 5u);  // a, b, checkpoint, c, checkpoint
}

TEST(AuditLogTest, InvalidRecordIsRefused) {
  TempDir t;
  auto log = AuditLog::open(options_for(t));
  ASSERT_TRUE(log);
  auto a = (*log)->append(Record("x").str("seq", "1"), [](Result<uint64_t>) {});
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, "audit_bad_record");
  auto big =
      (*log)->append(Record("x").str("blob", std::string(kMaxLine, 'a')), [](Result<uint64_t>) {});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, "audit_bad_record");
}

}  // namespace
}  // namespace touchgate::audit
