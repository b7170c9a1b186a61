// Verification of an audit directory: every line, the chain, the segments, the checkpoints and
// audit.head (trust boundary: files an attacker may have edited; memory stays bounded whatever
// their size).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/line.h"
#include "ssh/key.h"

namespace touchgate::audit {

// Finding kinds (stable codes):
//   modified       a record's hash does not match its bytes
//   removed        a gap in seq (seq N..M missing)
//   inserted       a seq seen before appears again
//   reordered      a seq reported missing appears later
//   bad_link       prev is not the previous record's hash
//   malformed      a line that does not parse (or is too long)
//   bad_segment    a segment's name or segment_start record does not fit the chain
//   bad_checkpoint a checkpoint whose fields or signature are wrong
//   truncated      audit.head names a checkpoint past the end of the log
//   bad_head       audit.head names a record that is not that checkpoint, or is unreadable
//   recording_modified  a session recording's SHA-256 or size is not what its
//                  recording_closed record says
//   recording_missing   a recording a recording_closed record names is gone
//   recordings_unchecked more recordings than kMaxRecordings (warning: the rest not checked)
//   recording_incomplete a recording_failed record: that session's recording is incomplete
//                        (warning, the first kMaxIncompleteFindings; all are counted)
//   torn_tail      the last line of the last segment has no '\n' (a crash; warning)
//   unsigned_tail  records after the last checkpoint (warning)
struct Finding {
  std::string kind;
  std::string file;   // segment file name ("" for audit.head)
  uint64_t line = 0;  // 1-based line in file, 0 if none
  uint64_t seq = 0;   // the seq concerned, 0 if none
  std::string message;
  bool tampering = true;  // false for warnings
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
  VerifyReport& report() { return report_; }

 private:
  void add(std::string_view kind, uint64_t seq, std::string message, bool tampering = true);
  void check_checkpoint(const ParsedLine& p);

  std::optional<ssh::PublicKey> key_;
  VerifyReport report_;
  std::vector<RecordingRef> recordings_;
  bool recordings_overflow_ = false;
  ParsedLine parsed_;
  std::string file_;
  std::string prev_file_;
  uint64_t line_no_ = 0;
  uint64_t last_seq_ = 0;
  std::string last_hash_;  // empty until a record was read
  bool chain_known_ = true;
  bool first_in_segment_ = false;
  bool last_segment_ = false;
  bool head_expected_ = false;
  std::string head_hash_wanted_;
  uint64_t segment_index_ = 0;
  uint64_t last_checkpoint_seq_ = 0;
  std::string head_hash_seen_;  // hash of the record whose seq audit.head names
  uint64_t head_seq_wanted_ = 0;
  // The last gap reported as removed: a seq inside it turning up later was reordered.
  uint64_t gap_from_ = 0, gap_to_ = 0;
  size_t gap_finding_ = SIZE_MAX;
};

// verify_recordings hashes each recording and adds recording_modified / recording_missing
// findings to report (memory bounded: files are read in chunks).
void verify_recordings(const std::vector<RecordingRef>& recordings, VerifyReport* report);

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

}  // namespace touchgate::audit
