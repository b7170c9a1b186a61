// Verification of an audit directory: every line, the chain, the segments, the checkpoints and
// audit.head (trust boundary: files an attacker may have edited; memory stays bounded whatever
// their size).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "audit/line.h"
#include "ssh/key.h"

namespace touchgate::audit {

// Finding kinds (stable codes):
//   modified       a record's hash does not match its bytes
//   removed        a gap in seq (seq N..M missing)
//   inserted       a record that is not on the chain: a copy of a record, or a second record
//                  linked to the same predecessor as the one the chain continues (a fork)
//   reordered      a record of the chain that stands out of place in the file
//   bad_link       prev is not the previous record's hash (or seq does not follow its prev's)
//   malformed      a line that does not parse (or is too long)
//   bad_segment    a segment's name or segment_start record does not fit the chain
//   bad_checkpoint a checkpoint whose fields or signature are wrong
//   truncated      audit.head names a checkpoint past the end of the log
//   bad_head       audit.head names a record that is not that checkpoint, or is unreadable
//   head_missing   the log holds checkpoints but audit.head is missing
//   cut_modified   a side file a `recovered` record names differs from its size or SHA-256
//   recording_modified  a session recording's SHA-256 or size is not what its
//                  recording_closed record says
//   recording_missing   a recording a recording_closed record names is gone
//   recordings_unchecked more recordings than kMaxRecordings (warning: the rest not checked)
//   recording_incomplete a recording_failed record: that session's recording is incomplete
//                        (warning, the first kMaxIncompleteFindings; all are counted)
//   torn_tail      the last line of the last segment has no '\n' (a crash; warning)
//   unsigned_tail  records after the last checkpoint (warning)
//   recovered      a `recovered` record: the writer cut bytes off the end of a segment when it
//                  started (warning; the bytes are kept in a side file)
//   cut_unrecorded a side file (<segment>.cut-N) that no `recovered` record names: a crash
//                  between the cut and its record (warning)
// What a `recovered` record says about one cut (Finding::cut).
struct CutInfo {
  std::string segment;    // the segment that was cut
  uint64_t bytes = 0;     // how many bytes were cut
  uint64_t lines = 0;     // how many of them were complete ('\n'-terminated) lines
  std::string side_file;  // where they are kept ("" for a record written before side files)
  std::string sha256;     // of the bytes cut
  // side_status is "intact", "missing", "modified" or "" (not checked).
  std::string side_status;
};

struct Finding {
  std::string kind;
  std::string file;   // segment file name ("" or "audit.head" for audit.head)
  uint64_t line = 0;  // 1-based line in file, 0 if none
  uint64_t seq = 0;   // the seq concerned, 0 if none
  std::string message;
  bool tampering = true;  // false for warnings
  std::optional<CutInfo> cut;  // recovered, cut_modified, cut_unrecorded
};

struct VerifyReport {
  std::vector<Finding> findings;  // at most kMaxFindings; `suppressed` counts the rest
  uint64_t suppressed = 0;
  uint64_t segments = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t checkpoints = 0;
  uint64_t last_seq = 0;
  uint64_t unsigned_tail = 0;
  uint64_t recordings = 0;  // session recordings checked against their records
  // recording_failed records: sessions whose recording could not be written whole (the first
  // kMaxIncompleteFindings are also warnings recording_incomplete).
  uint64_t recordings_failed = 0;
  std::string last_hash;
  bool key_pinned = false;  // checkpoints were checked against a trusted key

  // clean is true when no finding is tampering (warnings allowed).
  bool clean() const;
  // verdict is "clean" or "tampered".
  std::string_view verdict() const { return clean() ? "clean" : "tampered"; }
  // has is true when a finding of that kind was reported.
  bool has(std::string_view kind) const;
  const Finding* first(std::string_view kind) const;
};

inline constexpr size_t kMaxFindings = 1000;
// Most recordings one verify checks (their records are kept in memory until the end).
inline constexpr size_t kMaxRecordings = 200000;
inline constexpr size_t kMaxIncompleteFindings = 20;
// How many records the chain check holds to name out-of-place, forked and copied records: a
// record displaced by more than about kChainWindow records is reported the simple way (a gap
// `removed` where it is missing, turned into `reordered` where it turns up; a copy or fork older
// than that as `inserted`).
inline constexpr size_t kChainWindow = 4096;
// Most `recovered` records whose side files one verify checks.
inline constexpr size_t kMaxCuts = 10000;

// A session recording as its recording_closed record describes it.
struct RecordingRef {
  std::string file;    // absolute path
  std::string sha256;  // lowercase hex
  uint64_t size = 0;
  uint64_t seq = 0;    // of the record
  std::string segment;
  uint64_t line = 0;
};

// ChainVerifier checks a stream of lines, segment by segment. verify_directory drives it; the
// fuzz target feeds it directly. With no trusted key, each checkpoint is checked against the key
// its own SSHSIG carries (and that key's fingerprint against key_fp): consistent, not pinned.
class ChainVerifier {
 public:
  explicit ChainVerifier(std::optional<ssh::PublicKey> key);

  // expect_head sets the checkpoint audit.head names (call before the first line).
  void expect_head(uint64_t seq, std::string hash);
  // expect_no_head says that there is no audit.head: finish() reports head_missing when the log
  // holds a checkpoint.
  void expect_no_head() { head_absent_ = true; }
  // begin_segment starts a segment file named name ("audit-<20 digits>.jsonl"); last is true
  // for the last segment of the log.
  void begin_segment(std::string_view name, bool last);
  // line checks one line (without '\n'); complete is false for a final line with no '\n'.
  // too_long marks a line longer than kMaxLine (text then holds only its start).
  void line(std::string_view text, bool complete, bool too_long = false);
  // finish checks audit.head against what was read and reports the unsigned tail.
  void finish();

  VerifyReport take() { return std::move(report_); }
  // recordings lists the recording_closed records read (intact ones only), for
  // verify_recordings.
  const std::vector<RecordingRef>& recordings() const { return recordings_; }
  // cuts lists the findings (indexes into report().findings) of the `recovered` records read
  // that name a side file, for verify_cuts.
  const std::vector<size_t>& cuts() const { return cuts_; }
  VerifyReport& report() { return report_; }

 private:
  using Hash = std::array<char, 64>;  // lowercase hex, as written
  // A record of the chain check: the window holds those not yet placed, the history the last
  // ones placed on the chain.
  struct Node {
    Hash hash;
    Hash prev;
    uint64_t seq = 0;
    uint64_t pos = 0;  // index of the record in the stream (file order)
    uint64_t line = 0;
    uint32_t file = 0;           // index into files_
    int32_t parent = kNoParent;  // window index, kTipParent or kNoParent (an orphan)
    bool checkpoint = false;     // a checkpoint whose fields and signature hold
  };
  struct Placed {  // a history entry
    Hash hash;
    uint64_t seq = 0;
    uint64_t pos = 0;
    uint64_t line = 0;
    uint32_t file = 0;
    // linked: its prev is the previous entry's hash and its seq that entry's + 1, and nothing
    // was reported about it: a fork before it may take it back into the window.
    bool linked = false;
    bool checkpoint = false;
  };
  struct Twin {  // a copy of a window record (same hash), read at pos/line/file
    uint32_t node = 0;
    uint64_t pos = 0;
    uint64_t line = 0;
    uint32_t file = 0;
  };
  struct Gap {  // a `removed` finding the window could not explain
    uint64_t from = 0, to = 0;
    size_t finding = SIZE_MAX;
  };
  static constexpr int32_t kTipParent = -1;
  static constexpr int32_t kNoParent = -2;

  void add(std::string_view kind, uint64_t seq, std::string message, bool tampering = true);
  void add_at(std::string_view kind, uint32_t file, uint64_t line, uint64_t seq,
              std::string message, bool tampering = true);
  bool check_checkpoint(const ParsedLine& p);
  void note_recovered(const ParsedLine& p);
  // chain places one intact-or-modified record (by its claimed hash) on the chain.
  void chain(const ParsedLine& p, bool checkpoint_ok);
  void window_add(Node n);
  bool take_back(size_t from_history);  // a fork at history entry from_history
  // resolve places every record of the window; unless force, only when the record added last is
  // on the chain it finds (false: nothing done).
  bool resolve(bool force);
  void place(const Node& n, bool linked);
  void stale(const Node& n);                 // a record whose place on the chain is long past
  const Placed* history(size_t back) const;  // 0 = the newest
  std::string where(uint32_t file, uint64_t line) const;

  std::optional<ssh::PublicKey> key_;
  VerifyReport report_;
  std::vector<RecordingRef> recordings_;
  bool recordings_overflow_ = false;
  std::vector<size_t> cuts_;
  ParsedLine parsed_;
  std::vector<std::string> files_;  // segment names, in order
  std::string file_;
  std::string prev_file_;
  uint64_t line_no_ = 0;
  bool first_in_segment_ = false;
  bool last_segment_ = false;
  bool head_expected_ = false;
  bool head_absent_ = false;
  bool head_found_ = false;  // a record with the seq and hash audit.head names was read
  std::string head_hash_wanted_;
  uint64_t head_seq_wanted_ = 0;
  uint64_t segment_index_ = 0;
  uint64_t last_checkpoint_seq_ = 0;
  uint64_t checkpoint_records_ = 0;  // checkpoint lines read, valid or not

  // The chain: the tip (the last record placed; seq 0 and the genesis hash before the first),
  // the history of the last kChainWindow placed, and the window of records not yet placed.
  uint64_t pos_ = 0;
  uint64_t tip_seq_ = 0;
  Hash tip_hash_{};
  bool tip_set_ = false;  // a record was placed
  std::vector<Placed> history_;
  size_t history_next_ = 0, history_size_ = 0;
  std::vector<Node> window_;
  std::unordered_multimap<std::string_view, uint32_t> by_hash_;  // window index
  std::unordered_multimap<std::string_view, uint32_t> orphans_;  // by prev
  int64_t last_added_ = -1;  // window index of the last record added
  uint64_t run_ = 0;         // records since then that extended the one before them
  std::vector<Gap> gaps_;    // the last few, newest last
  std::vector<Twin> twins_;
};

// verify_recordings hashes each recording and adds recording_modified / recording_missing
// findings to report (memory bounded: files are read in chunks).
void verify_recordings(const std::vector<RecordingRef>& recordings, VerifyReport* report);

// verify_cuts checks the side files the `recovered` findings (indexes into report->findings)
// name against their size and SHA-256 (cut_modified when they differ), and reports side files
// in dir that no `recovered` record names (cut_unrecorded).
void verify_cuts(const std::filesystem::path& dir, const std::vector<size_t>& cuts,
                 VerifyReport* report);

// read_head parses audit.head ("touchgate-audit-head-v1\nseq: N\nhash: H\n").
std::optional<std::pair<uint64_t, std::string>> read_head(const std::filesystem::path& file);

// verify_directory verifies every segment of dir in order, and audit.head if present. key is the
// trusted audit public key (see load_audit_public_key), or nullopt.
VerifyReport verify_directory(const std::filesystem::path& dir,
                              const std::optional<ssh::PublicKey>& key);

// segment_name is "audit-<first seq, 20 digits>.jsonl"; parse_segment_name is its inverse.
std::string segment_name(uint64_t first_seq);
bool parse_segment_name(std::string_view name, uint64_t* first_seq);
// list_segments returns the segment file names of dir in seq order.
std::vector<std::string> list_segments(const std::filesystem::path& dir);
// cut_file_name is the side file "<segment>.cut-<seq>" (".<n>" added for n > 1) where the writer
// keeps the bytes it cut off the end of segment; is_cut_file_name recognises one (never a
// segment name).
std::string cut_file_name(std::string_view segment, uint64_t seq, unsigned n);
bool is_cut_file_name(std::string_view name);
// list_cut_files returns the side files of dir in name order.
std::vector<std::string> list_cut_files(const std::filesystem::path& dir);

}  // namespace touchgate::audit
