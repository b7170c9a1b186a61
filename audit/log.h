// AuditLog: the chained, segmented, checkpointed audit log writer (docs/audit-format.md).
//
// One writer thread owns the files (and an exclusive flock on <dir>/audit.lock: one writer per
// directory, across processes). append() queues a record from any thread; the writer writes
// what is queued as one batch, fdatasync()s once (group commit) and then calls each record's
// `durable` callback ON THE WRITER THREAD: callers post the result to their own loop and never
// block in it. Fail closed: when a write or sync fails, every record of that batch and every record
// queued behind it gets code "audit_unavailable", healthy() turns false, and append() refuses at
// once until the writer, retrying every retry_interval, has written an `audit_recovered` record.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/record.h"
#include "ssh/error.h"

namespace touchgate::audit {

enum class IoOp { kWrite, kSync };

struct Options {
  std::filesystem::path dir;       // created (0700) if missing
  std::filesystem::path key_path;  // audit key, created (0600) with <key_path>.pub if missing
  // open_key, when set, opens the audit key instead of key_path: a key in a PKCS#11 token
  // (gateway::audit_options sets it from [audit] pkcs11_uri). open() calls it once, after taking
  // the directory's lock; its error fails open() (fail closed: a token missing or a wrong PIN at
  // start). The key's public line is then recorded in public_key_path (see AuditKey::open).
  AuditKey::KeyOpener open_key;
  std::filesystem::path public_key_path;  // with open_key; default <key_path>.pub
  // A checkpoint that cannot be signed (a token key whose token is gone, ...) is written with an
  // empty sig: records go on being written and chained, verify reports that checkpoint as
  // bad_checkpoint, and the next checkpoint tries again. on_checkpoint_unsigned, when set, is
  // called ON THE WRITER THREAD each time, with the checkpoint's seq and the key's error;
  // on_checkpoint_signed_again at the first checkpoint signed after such failures, with its seq
  // and how many went unsigned. Both must not block (callers log).
  std::function<void(uint64_t seq, const Error& error)> on_checkpoint_unsigned;
  std::function<void(uint64_t seq, uint64_t unsigned_checkpoints)> on_checkpoint_signed_again;
  uint64_t max_segment_bytes = 64ull << 20;
  // Age of a segment, counted from when this process opened or created it.
  std::chrono::seconds max_segment_age = std::chrono::hours(24);
  uint64_t checkpoint_every = 1000;  // records
  std::chrono::milliseconds checkpoint_interval = std::chrono::seconds(60);
  size_t queue_limit = 64 * 1024;  // records waiting for the writer
  size_t max_batch = 4096;         // records per group commit
  std::chrono::milliseconds retry_interval = std::chrono::seconds(1);
  // on_written, when set, is called ON THE WRITER THREAD with each line the log wrote (without its
  // '\n'), once it is durable, in log order: callers' records and the log's own (checkpoint,
  // segment_start, recovered, audit_recovered). A copy for elsewhere (SyslogSink::send): it must
  // not block; the log does not depend on it.
  std::function<void(std::string_view line)> on_written;
  // Clock for `ts` (tests); system_clock::now when empty.
  std::function<std::chrono::system_clock::time_point()> clock;
  // Fault injection (tests): called before every write and sync of a segment; a non-zero return
  // fails that call with that errno.
  std::function<int(IoOp)> fault;
};

class AuditLog {
 public:
  using Durable = std::function<void(Result<uint64_t>)>;

  // open continues the log in options.dir (or starts it). What follows the last intact record of
  // the last segment (a torn last line, lines that do not parse or whose hash does not hold) is
  // cut off after it was copied to a side file "<segment>.cut-<seq>" (mode 0600, fsynced);
  // recovered() then says so and a `recovered` record (segment, dropped_bytes, complete_lines,
  // side_file, sha256) is the first record written. Nothing is changed when the log is refused.
  // Codes "audit_unavailable" (directory or file I/O), "audit_corrupt" (no good record in the
  // tail of the last segment), "audit_truncated" (audit.head names a checkpoint past the end of
  // the log, or is unreadable), "audit_head_missing" (the log holds checkpoints but audit.head is
  // missing), "audit_locked" (another writer holds <dir>/audit.lock), and the key's codes.
  static Result<std::unique_ptr<AuditLog>> open(Options options);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // append queues r. On success `durable` is later called exactly once, on the writer thread, with
  // the record's seq once it is on disk, or with an "audit_unavailable" error. It fails at once
  // (durable not called) with "audit_overloaded" when the queue is full, "audit_unavailable" while
  // the log is unhealthy, "audit_closed" after close(), "audit_bad_record" for an invalid record or
  // one whose line would be longer than kMaxLine.
  Result<void> append(Record r, Durable durable);

  bool healthy() const { return healthy_.load(); }
  // recovered is the note open() left about a cut tail (and its side file), or "".
  const std::string& recovered() const { return recovered_; }
  const AuditKey& key() const { return *key_; }
  // syncs is how many batches were made durable (fdatasync of a segment); lines how many records
  // they held, the log's own included. lines() / syncs() is the average group-commit batch.
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }
  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }

  // close writes what is queued, then a final checkpoint, syncs, and stops the writer. Idempotent.
  Result<void> close();

 private:
  struct Item {
    Record record;
    Durable durable;
  };
  struct Segment;

  explicit AuditLog(Options options);
  std::chrono::system_clock::time_point now() const;
  Result<void> start();
  Result<void> lock_dir();
  void run();
  void fail_items(std::vector<Item>& items, const Error& e);
  // write_records formats records (and any due segment_start / checkpoint) and commits them.
  Result<void> write_records(std::vector<Item>& items, std::vector<uint64_t>* seqs,
                             bool force_checkpoint);
  Result<void> commit(const std::string& buf, uint64_t lines);
  // notify_written hands what commit() made durable to opts_.on_written.
  void notify_written();
  Result<void> rotate_if_due();
  Result<void> open_segment(bool create);
  Result<void> try_recover();
  void append_checkpoint(std::string& buf);
  Result<void> write_head();

  Options opts_;
  std::unique_ptr<AuditKey> key_;
  std::string recovered_;

  int lock_fd_ = -1;  // holds the flock on <dir>/audit.lock

  // Writer state (writer thread, or open() before it starts).
  int fd_ = -1;
  std::string segment_;         // current segment file name
  uint64_t segment_bytes_ = 0;  // durable, complete-line length of the current segment
  std::chrono::system_clock::time_point segment_opened_;
  bool need_segment_start_ = false;
  std::string prev_segment_;
  uint64_t next_seq_ = 1;
  std::string prev_hash_;
  uint64_t since_checkpoint_ = 0;
  std::chrono::system_clock::time_point last_checkpoint_;
  std::optional<std::pair<uint64_t, std::string>> pending_head_;
  std::vector<Record> pending_notes_;  // `recovered` records to write first
  std::chrono::system_clock::time_point outage_since_;
  std::chrono::steady_clock::time_point next_retry_;
  uint64_t failed_records_ = 0;
  std::string written_;  // durable lines not yet given to on_written
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> lines_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  bool closed_ = false;
  std::string last_error_;
  std::atomic<bool> healthy_{true};
  Result<void> close_result_;
  std::thread thread_;
};

}  // namespace touchgate::audit
