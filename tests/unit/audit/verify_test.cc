#include "audit/verify.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "audit/checkpoint.h"
#include "audit/line.h"
#include "audit/log.h"
#include "audit_test_util.h"
#include "ssh/digest.h"

namespace touchgate::audit {
namespace {

using namespace touchgate::audit::testing;

std::string findings_text(const VerifyReport& r) {
  std::string s;
  for (const auto& f : r.findings)
    s += f.kind + " " + f.file + ":" + std::to_string(f.line) + " seq " + std::to_string(f.seq) +
         " " + f.message + "\n";
  return s;
}

// A log of 20 records with a checkpoint after every 5: lines 1-5 records 1-5, line 6 checkpoint
// 6, ..., the last checkpoint is line 24 (seq 24).
class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    o_ = options_for(t_);
    o_.checkpoint_every = 5;
    auto log = AuditLog::open(o_);
    ASSERT_TRUE(log);
    for (int i = 1; i <= 20; ++i)
      ASSERT_TRUE(append_wait(**log, Record("login").str("user", "alice").u64("i", i)));
    ASSERT_TRUE((*log)->close());
    seg_ = o_.dir / "audit-00000000000000000001.jsonl";
    lines_ = read_lines(seg_);
    ASSERT_EQ(lines_.size(), 24u);
    auto pub = o_.key_path;
    pub += ".pub";
    pub_ = pub;
    auto key = load_audit_public_key(pub);
    ASSERT_TRUE(key);
    key_ = *key;
  }
  VerifyReport verify() { return verify_directory(o_.dir, key_); }

  TempDir t_;
  Options o_;
  std::filesystem::path seg_, pub_;
  std::vector<std::string> lines_;
  std::optional<ssh::PublicKey> key_;
};

TEST_F(VerifyTest, IntactLogIsClean) {
  const auto r = verify();
  EXPECT_TRUE(r.clean());
  EXPECT_TRUE(r.findings.empty()) << findings_text(r);
  EXPECT_EQ(r.records, 24u);
  EXPECT_EQ(r.checkpoints, 4u);
  EXPECT_EQ(r.last_seq, 24u);
}

TEST_F(VerifyTest, ModifiedField) {
  auto l = lines_;
  l[8].replace(l[8].find("alice"), 5, "alicf");  // seq 9
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  ASSERT_EQ(r.findings.size(), 1u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "modified");
  EXPECT_EQ(r.findings[0].seq, 9u);
  EXPECT_EQ(r.findings[0].line, 9u);
  EXPECT_EQ(r.findings[0].file, "audit-00000000000000000001.jsonl");
}

TEST_F(VerifyTest, RemovedLine) {
  auto l = lines_;
  l.erase(l.begin() + 9);  // seq 10
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  ASSERT_EQ(r.findings.size(), 1u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "removed");
  EXPECT_EQ(r.findings[0].seq, 10u);
  EXPECT_EQ(r.findings[0].line, 10u);  // where seq 11 now is
}

TEST_F(VerifyTest, InsertedCopy) {
  auto l = lines_;
  l.insert(l.begin() + 13, l[2]);  // a copy of seq 3 as line 14
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  ASSERT_EQ(r.findings.size(), 1u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "inserted");
  EXPECT_EQ(r.findings[0].seq, 3u);
  EXPECT_EQ(r.findings[0].line, 14u);
}

TEST_F(VerifyTest, SwappedLines) {
  auto l = lines_;
  std::swap(l[14], l[15]);  // seq 15 and 16
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  ASSERT_EQ(r.findings.size(), 1u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "reordered");
  EXPECT_EQ(r.findings[0].seq, 15u);
  EXPECT_EQ(r.findings[0].line, 16u);
}

// A record forged with a valid hash and prev (the hash of seq 3) next to the genuine seq 4:
// whichever comes first in the file, the forged line is named, and nothing else.
TEST_F(VerifyTest, ForgedInsertIsNamed) {
  ParsedLine p3;
  ASSERT_EQ(parse_line(lines_[2], &p3), nullptr);
  const auto forged = format_line(4, std::chrono::system_clock::now(), p3.hash,
                                  Record("login").str("user", "mallory").u64("i", 4));
  const std::string forged_line = forged.text.substr(0, forged.text.size() - 1);
  for (const size_t at : {3u, 4u}) {  // before the genuine seq 4 (line 4), after it (line 5)
    auto l = lines_;
    l.insert(l.begin() + static_cast<std::ptrdiff_t>(at), forged_line);
    write_lines(seg_, l);
    const auto r = verify();
    EXPECT_EQ(r.verdict(), "tampered");
    ASSERT_EQ(r.findings.size(), 1u) << "forged line " << at + 1 << ":\n" << findings_text(r);
    EXPECT_EQ(r.findings[0].kind, "inserted");
    EXPECT_EQ(r.findings[0].seq, 4u);
    EXPECT_EQ(r.findings[0].line, at + 1) << findings_text(r);
    EXPECT_EQ(r.last_seq, 24u);
  }
}

// A forged branch of several records linked to each other, placed before the genuine records:
// the chain the later records and checkpoints continue is kept, the branch is named line by line.
TEST_F(VerifyTest, ForgedBranchIsNamed) {
  ParsedLine p;
  ASSERT_EQ(parse_line(lines_[6], &p), nullptr);  // seq 7
  std::string prev(p.hash);
  std::vector<std::string> branch;
  for (uint64_t seq = 8; seq <= 10; ++seq) {
    const auto f = format_line(seq, std::chrono::system_clock::now(), prev,
                               Record("login").str("user", "mallory").u64("i", seq));
    branch.push_back(f.text.substr(0, f.text.size() - 1));
    prev = f.hash;
  }
  auto l = lines_;
  l.insert(l.begin() + 7, branch.begin(), branch.end());  // lines 8-10, genuine seq 8 on line 11
  write_lines(seg_, l);
  const auto r = verify();
  ASSERT_EQ(r.findings.size(), 3u) << findings_text(r);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.findings[i].kind, "inserted");
    EXPECT_EQ(r.findings[i].seq, 8 + i);
    EXPECT_EQ(r.findings[i].line, 8 + i);
  }
}

// Seq 3 and seq 7 swapped (not next to each other): exactly the two moved records are named,
// each at its line; seq 4..6 between them are untouched and not reported.
TEST_F(VerifyTest, NonAdjacentSwapNamesBothRecords) {
  auto l = lines_;
  std::swap(l[2], l[6]);
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_EQ(r.verdict(), "tampered");
  ASSERT_EQ(r.findings.size(), 2u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "reordered");
  EXPECT_EQ(r.findings[0].seq, 7u);
  EXPECT_EQ(r.findings[0].line, 3u);
  EXPECT_EQ(r.findings[1].kind, "reordered");
  EXPECT_EQ(r.findings[1].seq, 3u);
  EXPECT_EQ(r.findings[1].line, 7u);
}

// A record moved a few lines down, and one moved up across a checkpoint.
TEST_F(VerifyTest, MovedRecordsAreNamed) {
  auto l = lines_;
  const std::string seq2 = l[1];
  l.erase(l.begin() + 1);
  l.insert(l.begin() + 9, seq2);  // seq 2 now on line 10, after seq 10
  write_lines(seg_, l);
  auto r = verify();
  ASSERT_EQ(r.findings.size(), 1u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "reordered");
  EXPECT_EQ(r.findings[0].seq, 2u);
  EXPECT_EQ(r.findings[0].line, 10u);

  l = lines_;
  const std::string seq14 = l[13];
  l.erase(l.begin() + 13);
  l.insert(l.begin() + 8, seq14);  // seq 14 now on line 9, before seq 9
  write_lines(seg_, l);
  r = verify();
  ASSERT_EQ(r.findings.size(), 1u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "reordered");
  EXPECT_EQ(r.findings[0].seq, 14u);
  EXPECT_EQ(r.findings[0].line, 9u);
}

TEST_F(VerifyTest, BadLink) {
  // A record rewritten consistently (hash recomputed) but linked to the wrong predecessor.
  ParsedLine p;
  ASSERT_EQ(parse_line(lines_[4], &p), nullptr);
  std::string body(p.hashed);
  const size_t at = body.find("\"prev\":\"") + 8;
  body.replace(at, 64, std::string(kGenesisHash));
  auto l = lines_;
  l[4] = body + ",\"hash\":\"" + record_hash(body) + "\"}";
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  ASSERT_FALSE(r.findings.empty());
  EXPECT_EQ(r.findings[0].kind, "bad_link");
  EXPECT_EQ(r.findings[0].seq, 5u);
  // Seq 5's hash changed, so seq 6 (the checkpoint) no longer links either.
  EXPECT_TRUE(r.has("bad_checkpoint") || r.findings.size() > 1) << findings_text(r);
}

TEST_F(VerifyTest, TruncatedPastLastCheckpoint) {
  auto l = lines_;
  l.resize(20);  // the last checkpoint (seq 24) and the records before it are gone
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  const auto* f = r.first("truncated");
  ASSERT_NE(f, nullptr) << findings_text(r);
  EXPECT_EQ(f->seq, 24u);
  // Deleting audit.head as well does not hide the cut: a log with checkpoints needs its head.
  std::filesystem::remove(o_.dir / "audit.head");
  const auto h = verify();
  EXPECT_EQ(h.verdict(), "tampered");
  const auto* m = h.first("head_missing");
  ASSERT_NE(m, nullptr) << findings_text(h);
  EXPECT_EQ(m->file, "audit.head");
  EXPECT_TRUE(m->tampering);
  EXPECT_FALSE(h.has("truncated"));
}

TEST_F(VerifyTest, MissingHeadWithoutCheckpointsIsNoFinding) {
  // Before the first checkpoint there is no audit.head yet (a crash before it): nothing wrong.
  auto l = lines_;
  l.resize(5);  // seq 1..5, the first checkpoint (seq 6) not yet written
  write_lines(seg_, l);
  std::filesystem::remove(o_.dir / "audit.head");
  const auto r = verify();
  EXPECT_TRUE(r.clean()) << findings_text(r);
  EXPECT_FALSE(r.has("head_missing"));
  EXPECT_TRUE(r.has("unsigned_tail"));
}

TEST_F(VerifyTest, TornLastLineIsAWarning) {
  std::string text = read_all(seg_);
  write_all(seg_, text + "{\"seq\":25,\"ts\":");
  const auto r = verify();
  EXPECT_TRUE(r.clean()) << findings_text(r);
  const auto* f = r.first("torn_tail");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 25u);
  EXPECT_FALSE(f->tampering);
}

TEST_F(VerifyTest, UnsignedTailIsAWarning) {
  auto l = lines_;
  l.pop_back();  // the final checkpoint
  write_lines(seg_, l);
  // audit.head as the writer left it after checkpoint seq 18.
  ParsedLine p;
  ASSERT_EQ(parse_line(l[17], &p), nullptr);
  ASSERT_EQ(p.event, "checkpoint");
  write_all(o_.dir / "audit.head",
            "touchgate-audit-head-v1\nseq: 18\nhash: " + std::string(p.hash) + "\n");
  const auto r = verify();
  EXPECT_TRUE(r.clean()) << findings_text(r);
  const auto* f = r.first("unsigned_tail");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(r.unsigned_tail, 5u);  // seq 19..23, after the checkpoint seq 18
  EXPECT_EQ(f->seq, 19u);
}

TEST_F(VerifyTest, ForgedCheckpoint) {
  // Another key's valid checkpoint over the same head is refused by the pinned key.
  TempDir other;
  auto other_key = AuditKey::load_or_create(other.path() / "k");
  ASSERT_TRUE(other_key);
  ParsedLine p;
  ASSERT_EQ(parse_line(lines_[5], &p), nullptr);
  Record cp("checkpoint");
  cp.u64("head_seq", 5).str("head", std::string(p.find("head")->raw));
  cp.str("key_fp", (*other_key)->fingerprint());
  cp.str("sig", ssh::base64_encode(*(*other_key)->sign_checkpoint(5, p.find("head")->raw)));
  const auto forged = format_line(6, std::chrono::system_clock::now(), p.prev, cp);
  auto l = lines_;
  l[5] = forged.text.substr(0, forged.text.size() - 1);
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  const auto* f = r.first("bad_checkpoint");
  ASSERT_NE(f, nullptr) << findings_text(r);
  EXPECT_EQ(f->seq, 6u);
  // Unpinned, the forgery is self-consistent: only the link to seq 7 breaks.
  const auto u = verify_directory(o_.dir, std::nullopt);
  EXPECT_FALSE(u.has("bad_checkpoint")) << findings_text(u);
  EXPECT_TRUE(u.has("bad_link"));
}

TEST_F(VerifyTest, CheckpointSignatureBitFlip) {
  ParsedLine p;
  ASSERT_EQ(parse_line(lines_[11], &p), nullptr);  // checkpoint seq 12
  std::string sig(p.find("sig")->raw);
  sig[sig.size() - 10] = sig[sig.size() - 10] == 'A' ? 'B' : 'A';
  Record cp("checkpoint");
  cp.u64("head_seq", 11).str("head", std::string(p.find("head")->raw));
  cp.str("key_fp", std::string(p.find("key_fp")->raw)).str("sig", sig);
  // Keep the chain intact so that only the signature is wrong.
  auto l = lines_;
  const auto line = format_line(12, std::chrono::system_clock::now(), p.prev, cp);
  l[11] = line.text.substr(0, line.text.size() - 1);
  write_lines(seg_, l);
  const auto r = verify();
  const auto* f = r.first("bad_checkpoint");
  ASSERT_NE(f, nullptr) << findings_text(r);
  EXPECT_EQ(f->seq, 12u);
  EXPECT_EQ(f->line, 12u);
}

TEST_F(VerifyTest, MalformedAndOverlongLines) {
  auto l = lines_;
  l[2] = "not json";
  l.insert(l.begin() + 7, std::string(kMaxLine + 5, 'x'));
  write_lines(seg_, l);
  const auto r = verify();
  EXPECT_FALSE(r.clean());
  ASSERT_GE(r.findings.size(), 2u) << findings_text(r);
  EXPECT_EQ(r.findings[0].kind, "malformed");
  EXPECT_EQ(r.findings[0].line, 3u);
  EXPECT_TRUE(r.has("removed"));  // seq 3 is gone as far as the chain can tell
  bool long_found = false;
  for (const auto& f : r.findings)
    if (f.kind == "malformed" && f.line == 8) long_found = true;
  EXPECT_TRUE(long_found) << findings_text(r);
}

TEST_F(VerifyTest, SshKeygenVerifiesACheckpoint) {
  if (!std::filesystem::exists("/usr/bin/ssh-keygen")) GTEST_SKIP() << "no /usr/bin/ssh-keygen";
  const std::string script = std::string(AUDIT_TEST_DIR) + "/checkpoint_ssh_keygen.sh";
  const std::string cmd =
      "PATH=/usr/bin:/bin sh '" + script + "' '" + o_.dir.string() + "' '" + pub_.string() + "'";
  EXPECT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
  // The same steps over another head fail.
  EXPECT_NE(std::system((cmd + " " + std::string(64, 'a') + " >/dev/null 2>&1").c_str()), 0);
}

TEST_F(VerifyTest, HeadNamingAnotherRecord) {
  write_all(o_.dir / "audit.head",
            "touchgate-audit-head-v1\nseq: 18\nhash: " + std::string(64, 'a') + "\n");
  const auto r = verify();
  EXPECT_EQ(r.verdict(), "tampered");
  ASSERT_NE(r.first("bad_head"), nullptr) << findings_text(r);
  EXPECT_EQ(r.first("bad_head")->seq, 18u);
  write_all(o_.dir / "audit.head", "garbage");
  EXPECT_TRUE(verify().has("bad_head"));
}

TEST(VerifySegmentsTest, RemovedSegmentAndForgedSegmentStart) {
  TempDir t;
  auto o = options_for(t);
  o.max_segment_bytes = 1500;
  {
    auto log = AuditLog::open(o);
    ASSERT_TRUE(log);
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(append_wait(**log, Record("e").u64("i", i)));
    ASSERT_TRUE((*log)->close());
  }
  auto key = load_audit_public_key(o.key_path.string() + ".pub");
  ASSERT_TRUE(key);
  const auto segs = list_segments(o.dir);
  ASSERT_GE(segs.size(), 4u);
  EXPECT_EQ(verify_directory(o.dir, *key).verdict(), "clean");

  // The second segment's segment_start renamed to claim another predecessor (hash recomputed).
  const auto second = o.dir / segs[1];
  const auto original = read_all(second);
  auto lines = read_lines(second);
  ParsedLine p;
  ASSERT_EQ(parse_line(lines[0], &p), nullptr);
  std::string body(p.hashed);
  body.replace(body.find(segs[0]), segs[0].size(), segment_name(999));
  lines[0] = body + ",\"hash\":\"" + record_hash(body) + "\"}";
  write_lines(second, lines);
  auto r = verify_directory(o.dir, *key);
  ASSERT_NE(r.first("bad_segment"), nullptr);
  EXPECT_EQ(r.first("bad_segment")->file, segs[1]);
  EXPECT_EQ(r.first("bad_segment")->line, 1u);
  write_all(second, original);

  // A whole segment in the middle removed.
  std::filesystem::remove(o.dir / segs[2]);
  r = verify_directory(o.dir, *key);
  EXPECT_EQ(r.verdict(), "tampered");
  const auto* f = r.first("removed");
  ASSERT_NE(f, nullptr) << findings_text(r);
  EXPECT_EQ(f->file, segs[3]);
  EXPECT_EQ(f->line, 1u);
  uint64_t from = 0;
  ASSERT_TRUE(parse_segment_name(segs[2], &from));
  EXPECT_EQ(f->seq, from);
}

// A log built in memory (no fsync): n records chained from seq 1, no checkpoint.
std::vector<std::string> make_chain(uint64_t n) {
  std::vector<std::string> lines;
  std::string prev(kGenesisHash);
  const auto ts = std::chrono::system_clock::now();
  for (uint64_t seq = 1; seq <= n; ++seq) {
    const auto f = format_line(seq, ts, prev, Record("e").u64("i", seq));
    lines.push_back(f.text.substr(0, f.text.size() - 1));
    prev = f.hash;
  }
  return lines;
}

// Beyond the chain window a moved record is still named: its gap is first reported removed,
// then turned into reordered where the record turns up. A copy that far away is inserted.
TEST(VerifyWindowTest, FarMovedRecordAndFarCopy) {
  TempDir t;
  const auto seg = t.path() / segment_name(1);
  auto l = make_chain(2 * kChainWindow + 100);
  const std::string copied = l[19];  // seq 20
  const std::string moved = l[9];    // seq 10
  l.erase(l.begin() + 9);
  l.insert(l.begin() + static_cast<std::ptrdiff_t>(kChainWindow + 500), moved);
  l.push_back(copied);  // a copy of seq 20 at the end
  write_lines(seg, l);
  const auto r = verify_directory(t.path(), std::nullopt);
  std::vector<std::string> tampering;
  for (const auto& f : r.findings)
    if (f.tampering) tampering.push_back(f.kind);
  ASSERT_EQ(tampering.size(), 2u) << findings_text(r);
  const auto* f = r.first("reordered");
  ASSERT_NE(f, nullptr) << findings_text(r);
  EXPECT_EQ(f->seq, 10u);
  EXPECT_EQ(f->line, kChainWindow + 501);
  const auto* c = r.first("inserted");
  ASSERT_NE(c, nullptr) << findings_text(r);
  EXPECT_EQ(c->seq, 20u);
  EXPECT_EQ(c->line, l.size());
  EXPECT_EQ(r.last_seq, 2 * kChainWindow + 100);
}

// A removed record and a broken link in a long log: named once each, and the rest (far more
// records than the window holds) is checked as usual.
TEST(VerifyWindowTest, RemovedAndBadLinkInALongLog) {
  TempDir t;
  const auto seg = t.path() / segment_name(1);
  auto l = make_chain(3 * kChainWindow);
  l.erase(l.begin() + 99);  // seq 100
  // seq 5000 rewritten to link to the genesis hash (its hash recomputed).
  ParsedLine p;
  ASSERT_EQ(parse_line(l[4998], &p), nullptr);
  ASSERT_EQ(p.seq, 5000u);
  std::string body(p.hashed);
  body.replace(body.find("\"prev\":\"") + 8, 64, std::string(kGenesisHash));
  l[4998] = body + ",\"hash\":\"" + record_hash(body) + "\"}";
  write_lines(seg, l);
  const auto r = verify_directory(t.path(), std::nullopt);
  std::vector<const Finding*> tampering;
  for (const auto& f : r.findings)
    if (f.tampering) tampering.push_back(&f);
  ASSERT_EQ(tampering.size(), 3u) << findings_text(r);
  EXPECT_EQ(tampering[0]->kind, "removed");
  EXPECT_EQ(tampering[0]->seq, 100u);
  EXPECT_EQ(tampering[0]->line, 100u);
  EXPECT_EQ(tampering[1]->kind, "bad_link");
  EXPECT_EQ(tampering[1]->seq, 5000u);
  EXPECT_EQ(tampering[2]->kind, "bad_link");  // seq 5001 no longer links to seq 5000
  EXPECT_EQ(tampering[2]->seq, 5001u);
}

// One tampering at a random place in a chain of 300 records: it is named exactly (kind, seq,
// line) and nothing else is reported. Kinds of tampering: a record moved by 2 or more lines,
// two records swapped with 2 or more between them, a record removed, a copy of a record put
// elsewhere (before or after the original), a forged record linked to an earlier one.
TEST(VerifyWindowTest, SingleTamperingIsNamedExactly) {
  constexpr uint64_t kRecords = 300;
  const auto chain = make_chain(kRecords);
  TempDir t;
  const auto seg = t.path() / segment_name(1);
  std::mt19937 rng(20261130);
  // Indexes 1 .. kRecords - 4: the first record and the last three stay where they are.
  std::uniform_int_distribution<size_t> any(1, kRecords - 4);
  for (int round = 0; round < 500; ++round) {
    auto l = chain;
    struct Expect {
      std::string kind;
      uint64_t seq, line;
    };
    std::vector<Expect> want;
    std::string what;
    switch (round % 5) {
      case 0: {  // move
        size_t from = any(rng), to = any(rng);
        while (to + 1 >= from && to <= from + 1) to = any(rng);
        const std::string x = l[from];
        l.erase(l.begin() + static_cast<std::ptrdiff_t>(from));
        l.insert(l.begin() + static_cast<std::ptrdiff_t>(to), x);
        want.push_back({"reordered", from + 1, to + 1});
        what = fmt::format("move seq {} to line {}", from + 1, to + 1);
        break;
      }
      case 1: {  // swap
        size_t i = any(rng), j = any(rng);
        while (j < i + 3 && i < j + 3) j = any(rng);
        if (i > j) std::swap(i, j);
        std::swap(l[i], l[j]);
        want.push_back({"reordered", j + 1, i + 1});
        want.push_back({"reordered", i + 1, j + 1});
        what = fmt::format("swap seq {} and seq {}", i + 1, j + 1);
        break;
      }
      case 2: {  // remove
        const size_t i = any(rng);
        l.erase(l.begin() + static_cast<std::ptrdiff_t>(i));
        want.push_back({"removed", i + 1, i + 1});
        what = fmt::format("remove seq {}", i + 1);
        break;
      }
      case 3: {  // copy
        const size_t from = any(rng);
        size_t to = any(rng);
        while (to == from || to == from + 1) to = any(rng);
        l.insert(l.begin() + static_cast<std::ptrdiff_t>(to), chain[from]);
        // Inserted before the original, the original moves down one line.
        want.push_back({"inserted", from + 1, to + 1});
        what = fmt::format("copy seq {} to line {}", from + 1, to + 1);
        break;
      }
      default: {  // forged record after seq k (k + 1 .. kRecords: a fork), put anywhere
        const size_t k = any(rng);
        ParsedLine p;
        EXPECT_EQ(parse_line(chain[k - 1], &p), nullptr);
        const auto f = format_line(k + 1, std::chrono::system_clock::now(), p.hash,
                                   Record("e").str("forged", "yes"));
        const size_t to = any(rng);
        l.insert(l.begin() + static_cast<std::ptrdiff_t>(to), f.text.substr(0, f.text.size() - 1));
        want.push_back({"inserted", k + 1, to + 1});
        what = fmt::format("forge seq {} at line {}", k + 1, to + 1);
        break;
      }
    }
    std::sort(want.begin(), want.end(),
              [](const Expect& a, const Expect& b) { return a.line < b.line; });
    write_lines(seg, l);
    const auto r = verify_directory(t.path(), std::nullopt);
    std::vector<Expect> got;
    for (const auto& f : r.findings)
      if (f.tampering) got.push_back({f.kind, f.seq, f.line});
    bool same = got.size() == want.size();
    for (size_t i = 0; same && i < got.size(); ++i)
      same =
          got[i].kind == want[i].kind && got[i].seq == want[i].seq && got[i].line == want[i].line;
    EXPECT_TRUE(same) << what << ":\n" << findings_text(r);
    EXPECT_EQ(r.last_seq, kRecords) << what;
  }
}

// Several tamperings at once, some of them overlapping: whatever the attribution, the log is
// tampered, findings stay within the cap and the chain check does not lose its way.
TEST(VerifyWindowTest, ManyTamperingsAreTampered) {
  constexpr uint64_t kRecords = 400;
  const auto chain = make_chain(kRecords);
  TempDir t;
  const auto seg = t.path() / segment_name(1);
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    auto l = chain;
    const int ops = 1 + round % 6;
    for (int k = 0; k < ops; ++k) {
      std::uniform_int_distribution<size_t> any(0, l.size() - 2);  // never the last line
      const size_t i = any(rng), j = any(rng);
      switch (rng() % 4) {
        case 0:
          std::swap(l[i], l[j]);
          break;
        case 1:
          l.erase(l.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        case 2:
          l.insert(l.begin() + static_cast<std::ptrdiff_t>(j), l[i]);
          break;
        default: {
          ParsedLine p;
          ASSERT_EQ(parse_line(l[i], &p), nullptr);
          const auto f = format_line(p.seq + 1, std::chrono::system_clock::now(), p.hash,
                                     Record("e").u64("k", static_cast<uint64_t>(k)));
          l.insert(l.begin() + static_cast<std::ptrdiff_t>(j), f.text.substr(0, f.text.size() - 1));
        }
      }
    }
    write_lines(seg, l);
    const auto r = verify_directory(t.path(), std::nullopt);
    if (l == chain) continue;
    EXPECT_EQ(r.verdict(), "tampered") << "round " << round;
    EXPECT_LE(r.findings.size(), kMaxFindings);
    EXPECT_EQ(r.records, l.size());
  }
}

TEST(VerifyDirTest, EmptyDirectoryIsClean) {
  TempDir t;
  const auto r = verify_directory(t.path(), std::nullopt);
  EXPECT_TRUE(r.clean());
  EXPECT_EQ(r.records, 0u);
}

TEST(VerifyDirTest, SegmentNames) {
  EXPECT_EQ(segment_name(42), "audit-00000000000000000042.jsonl");
  uint64_t s = 0;
  EXPECT_TRUE(parse_segment_name("audit-00000000000000000042.jsonl", &s));
  EXPECT_EQ(s, 42u);
  EXPECT_FALSE(parse_segment_name("audit-0000000000000000004.jsonl", &s));
  EXPECT_FALSE(parse_segment_name("audit-00000000000000000000.jsonl", &s));
  EXPECT_FALSE(parse_segment_name("audit-0000000000000000004x.jsonl", &s));
}

}  // namespace
}  // namespace touchgate::audit

namespace touchgate::audit {
namespace {

using namespace touchgate::audit::testing;

// A log whose recording_closed record names a recording file: the file must stay as recorded.
// A recording that could not be written whole is not tampering, but the auditor is told:
// warnings for the first few, a count of all.
TEST(VerifyRecordingsTest, FailedRecordingsAreWarningsAndCounted) {
  TempDir t;
  Options o = options_for(t);
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(append_wait(**log, Record("recording_failed")
                                       .str("conn", "c-1")
                                       .str("file", "/rec/" + std::to_string(i) + ".cast")
                                       .str("reason", "recording_io")
                                       .str("message", "write failed: No space left on device")));
  }
  ASSERT_TRUE((*log)->close());
  auto r = verify_directory(o.dir, std::nullopt);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  EXPECT_EQ(r.recordings_failed, 25u);
  size_t warnings = 0;
  for (const auto& f : r.findings) {
    if (f.kind != "recording_incomplete") continue;
    ++warnings;
    EXPECT_FALSE(f.tampering);
  }
  EXPECT_EQ(warnings, kMaxIncompleteFindings);
  ASSERT_TRUE(r.has("recording_incomplete"));
  EXPECT_EQ(r.first("recording_incomplete")->message,
            "the recording /rec/0.cast could not be written whole: write failed: No space left "
            "on device");
}

TEST(VerifyRecordingsTest, RecordingsAreCheckedAgainstTheirRecords) {
  TempDir t;
  Options o = options_for(t);
  const auto file = t.path() / "rec.cast";
  {
    std::ofstream out(file, std::ios::binary);
    out << "{\"version\":2,\"width\":80,\"height\":24}\n[0.5,\"o\",\"hello\"]\n";
  }
  const std::string content = read_all(file);
  const auto digest = ssh::sha256(ssh::as_bytes(content));
  auto log = AuditLog::open(o);
  ASSERT_TRUE(log);
  ASSERT_TRUE(append_wait(**log, Record("recording_closed")
                                     .str("conn", "c-1")
                                     .str("file", file.string())
                                     .str("sha256", to_hex(digest))
                                     .u64("size", content.size())));
  ASSERT_TRUE((*log)->close());

  auto r = verify_directory(o.dir, std::nullopt);
  EXPECT_TRUE(r.clean()) << findings_text(r);
  EXPECT_EQ(r.recordings, 1u);

  {
    std::ofstream out(file, std::ios::binary);
    out << "{\"version\":2,\"width\":80,\"height\":24}\n[0.5,\"o\",\"jello\"]\n";  // same size
  }
  r = verify_directory(o.dir, std::nullopt);
  EXPECT_FALSE(r.clean());
  ASSERT_TRUE(r.has("recording_modified")) << findings_text(r);
  EXPECT_EQ(r.first("recording_modified")->seq, 1u);
  EXPECT_EQ(r.first("recording_modified")->file, "audit-00000000000000000001.jsonl");

  std::filesystem::remove(file);
  r = verify_directory(o.dir, std::nullopt);
  EXPECT_FALSE(r.clean());
  EXPECT_TRUE(r.has("recording_missing")) << findings_text(r);
}

}  // namespace
}  // namespace touchgate::audit
