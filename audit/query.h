// Reading the audit log for review: a streaming cursor over the segments of an audit directory,
// record filters, time bounds ("2h", "2026-11-30T10:00:00Z"), the start of the last N records,
// following a log that is being written, and per-event / per-user counts (trust boundary: log
// files read back from disk; memory stays bounded whatever their size). Integrity is verify.h's
// business: this reader skips what does not parse and counts it, it checks no hash.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/line.h"
#include "ssh/error.h"

namespace touchgate::audit {

using TimePoint = std::chrono::system_clock::time_point;

// One record as the cursor hands it over. The views are valid during the callback only.
struct RecordRef {
  const ParsedLine& parsed;
  std::string_view text;  // the line as stored, without its '\n'
  std::string_view file;  // the segment file name
  uint64_t line = 0;      // 1-based line in file; 0 when the cursor started inside the file
};

// A callback returns false to stop reading.
using RecordFn = std::function<bool(const RecordRef&)>;

// Lines of one segment that were skipped because they do not parse (or are longer than
// kMaxLine, or are an incomplete line in a segment that is not the last one), or a segment that
// could not be opened.
struct SkippedLines {
  std::string file;
  uint64_t count = 0;
  uint64_t first_line = 0;  // 0 when unknown
  std::string first_reason;
};

// Where a cursor starts: a segment file name and a byte offset at the start of a line.
struct Position {
  std::string segment;
  uint64_t offset = 0;
};

// check_audit_dir fails with "audit_dir_unreadable" unless dir is a readable directory.
Result<void> check_audit_dir(const std::filesystem::path& dir);

// Cursor reads the records of an audit directory forward, in log order, with one fixed buffer
// (kMaxLine plus 1 MiB): a longer line is skipped and counted, never held whole.
//
// read() delivers every complete line written so far and returns at the end of the log. A last
// line without its '\n' (being written, or torn by a crash) is not delivered; the next read()
// delivers it once it is complete. When a newer segment exists (rotation), the current one is
// read to its end before the cursor moves on, so that no record is lost between two reads.
class Cursor {
 public:
  explicit Cursor(std::filesystem::path dir);
  ~Cursor();
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // seek makes the next read() start at `at` (a position find_tail_start returned).
  void seek(Position at);

  // read calls fn for each record (in order) until the end of the log or until fn returns
  // false. It returns false when fn stopped it.
  bool read(const RecordFn& fn);

  // What was read so far.
  uint64_t records() const { return records_; }
  uint64_t segments() const { return segments_; }
  uint64_t bytes() const { return bytes_; }
  const std::vector<SkippedLines>& skipped() const { return skipped_; }
  uint64_t skipped_total() const;

 private:
  bool open_current();
  void close_current();
  // drain reads the current segment to its end, delivering complete lines.
  bool drain(const RecordFn& fn, bool* stopped);
  bool deliver(std::string_view text, const RecordFn& fn);
  void skip(std::string_view why);

  std::filesystem::path dir_;
  std::vector<char> buf_;
  size_t start_ = 0, end_ = 0, scan_ = 0;  // unconsumed bytes are buf_[start_, end_)
  bool too_long_ = false;                   // inside a line longer than kMaxLine
  int fd_ = -1;
  std::string segment_;  // current segment ("" before the first)
  uint64_t offset_ = 0;  // where the next read() of the file starts
  uint64_t line_ = 0;
  bool lines_known_ = true;
  ParsedLine parsed_;
  uint64_t records_ = 0;
  uint64_t segments_ = 0;
  uint64_t bytes_ = 0;
  std::vector<SkippedLines> skipped_;
};

// find_tail_start returns the position of the N-th last complete line of the log, reading the
// last segments backwards in fixed chunks (the start of the log when it has fewer lines).
Position find_tail_start(const std::filesystem::path& dir, uint64_t n);

// follow calls cursor.read(fn) again and again, every `interval`, until stop is set or fn
// returns false; after each read that delivered something, flushed() is called (for output
// buffers). It returns when stopped.
void follow(Cursor& cursor, const RecordFn& fn, const std::atomic<bool>& stop,
            std::chrono::milliseconds interval = std::chrono::milliseconds(200),
            const std::function<void()>& flushed = {});

// parse_time_spec reads a time for --since/--until: a duration back from now ("90s", "30m",
// "2h", "7d", "2w"), or RFC 3339 ("2026-11-30T10:00:00Z", with an optional fraction and an
// offset such as "+01:00" instead of "Z"), or a date ("2026-11-30", midnight UTC). Code
// "bad_time".
Result<TimePoint> parse_time_spec(std::string_view text, TimePoint now);

// parse_record_time reads a record's ts ("2026-11-30T10:00:00.123Z").
std::optional<TimePoint> parse_record_time(std::string_view ts);

// field_equals is true when the record has a field `name` whose value (unescaped) is `value`.
bool field_equals(const ParsedLine& p, std::string_view name, std::string_view value);

// field_text is the unescaped value of field `name` ("" when missing; integers and booleans as
// written).
std::string field_text(const ParsedLine& p, std::string_view name);

// Filter selects records; every criterion that is set must hold.
struct Filter {
  std::optional<std::string> user;
  std::optional<std::string> target;
  std::vector<std::string> events;  // any of them; empty = every event
  std::optional<std::string> outcome;  // "allow" or "deny"
  std::optional<std::string> conn;
  // conn_number: a connection number alone ("12"): records whose conn ends in "-12".
  std::optional<std::string> conn_number;
  std::optional<TimePoint> since;  // ts >= since
  std::optional<TimePoint> until;  // ts < until

  bool matches(const ParsedLine& p) const;
  bool empty() const;
};

// Stats counts records by event, user, target, denial reason and suspected clone. Each map
// holds at most max_keys distinct keys; records beyond that are counted in the `more` fields.
class Stats {
 public:
  struct Counts {
    uint64_t records = 0;
    uint64_t allow = 0;
    uint64_t deny = 0;
  };
  struct Clone {
    std::string key_fp;
    std::string user;
  };

  explicit Stats(size_t max_keys = kDefaultMaxKeys);
  void add(const ParsedLine& p);

  static constexpr size_t kDefaultMaxKeys = 100000;

  uint64_t records = 0;
  uint64_t first_seq = 0, last_seq = 0;
  std::string first_ts, last_ts;  // earliest and latest ts seen
  std::map<std::string, uint64_t, std::less<>> events;
  std::map<std::string, Counts, std::less<>> users;
  std::map<std::string, Counts, std::less<>> targets;
  std::map<std::string, uint64_t, std::less<>> deny_reasons;
  std::map<std::pair<std::string, std::string>, uint64_t> clones;  // (key_fp, user)
  // Records whose key did not fit in a full map.
  uint64_t more_events = 0, more_users = 0, more_targets = 0, more_reasons = 0, more_clones = 0;

 private:
  size_t max_keys_;
  std::string scratch_;
};

}  // namespace touchgate::audit
