#include "audit/log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "audit/line.h"
#include "audit/verify.h"
#include "ssh/digest.h"

namespace touchgate::audit {
namespace {

constexpr std::string_view kHeadFile = "audit.head";
constexpr std::string_view kLockFile = "audit.lock";
// How much of the last segment open() reads to find the last good record.
constexpr size_t kTailWindow = 2 * kMaxLine + 2;

Error io_error(const std::string& what, int err) {
  return Error{"audit_unavailable", fmt::format("{}: {}", what, std::strerror(err))};
}

Result<void> fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(io_error(dir.string(), errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return tl::unexpected(io_error(dir.string() + ": fsync", err));
  return {};
}

struct Tail {
  uint64_t good_size = 0;
  uint64_t dropped = 0;
  uint64_t last_seq = 0;
  std::string last_hash;
  std::string last_event;
  std::string cut;  // the bytes after good_size (dropped of them)
};

// read_tail finds the last complete, well-formed record of a segment whose hash holds, and the
// length of the file up to and including it.
Result<Tail> read_tail(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(io_error(file.string(), errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return tl::unexpected(io_error(file.string(), err));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  const uint64_t from = size > kTailWindow ? size - kTailWindow : 0;
  std::string buf(size - from, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n =
        ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  buf.resize(got);

  Tail t;
  ParsedLine p;
  size_t end = buf.rfind('\n');  // end of the last complete line
  while (end != std::string::npos) {
    const size_t prev_nl = end == 0 ? std::string::npos : buf.rfind('\n', end - 1);
    if (prev_nl == std::string::npos && from > 0) break;  // the line may start before the window
    const size_t start = prev_nl == std::string::npos ? 0 : prev_nl + 1;
    const std::string_view line(buf.data() + start, end - start);
    if (parse_line(line, &p) == nullptr && record_hash(p.hashed) == p.hash) {
      t.good_size = from + end + 1;
      t.last_seq = p.seq;
      t.last_hash = std::string(p.hash);
      t.last_event = std::string(p.event);
      t.dropped = size - t.good_size;
      t.cut = buf.substr(end + 1);
      return t;
    }
    if (prev_nl == std::string::npos) {
      end = std::string::npos;
      break;
    }
    end = prev_nl;
  }
  if (from > 0)
    return fail("audit_corrupt", fmt::format("{}: no intact record in its last {} bytes",
                                             file.string(), kTailWindow));
  t.dropped = size;  // nothing good: the whole file is cut
  t.cut = std::move(buf);
  return t;
}

// holds_checkpoint is true when file (its first `limit` bytes) holds a checkpoint record. The
// text `,"event":"checkpoint",` occurs nowhere else: inside a string every '"' is escaped.
Result<bool> holds_checkpoint(const std::filesystem::path& file, uint64_t limit) {
  static constexpr std::string_view kNeedle = ",\"event\":\"checkpoint\",";
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(io_error(file.string(), errno));
  std::string buf(kNeedle.size() - 1 + (1u << 20), '\0');
  size_t kept = 0;  // bytes carried over from the previous chunk
  uint64_t off = 0;
  bool found = false;
  while (!found && off < limit) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size() - kept, limit - off));
    const ssize_t n = ::pread(fd, buf.data() + kept, want, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return tl::unexpected(io_error(file.string(), err));
    }
    if (n == 0) break;
    off += static_cast<uint64_t>(n);
    const std::string_view have(buf.data(), kept + static_cast<size_t>(n));
    found = have.find(kNeedle) != std::string_view::npos;
    kept = std::min(have.size(), kNeedle.size() - 1);
    std::memmove(buf.data(), have.data() + have.size() - kept, kept);
  }
  ::close(fd);
  return found;
}

// keep_cut writes the bytes the writer is about to cut off segment into a new side file beside
// it (mode 0600, fsynced, directory fsynced) and returns its name. Nothing is cut unless they
// are kept.
Result<std::string> keep_cut(const std::filesystem::path& dir, const std::string& segment,
                             uint64_t seq, std::string_view bytes) {
  for (unsigned n = 1; n <= 100; ++n) {
    const std::string name = cut_file_name(segment, seq, n);
    const auto path = dir / name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) return tl::unexpected(io_error(path.string(), errno));
    size_t done = 0;
    int err = 0;
    while (done < bytes.size()) {
      const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        err = w < 0 ? errno : EIO;
        break;
      }
      done += static_cast<size_t>(w);
    }
    if (err == 0 && ::fsync(fd) != 0) err = errno;
    ::close(fd);
    if (err != 0) {
      ::unlink(path.c_str());  // a partial copy is no copy
      return tl::unexpected(io_error(path.string(), err));
    }
    if (auto d = fsync_dir(dir); !d) return tl::unexpected(d.error());
    return name;
  }
  return fail("audit_unavailable",
              fmt::format("{}: too many side files for {} at seq {}", dir.string(), segment, seq));
}

}  // namespace

AuditLog::AuditLog(Options options) : opts_(std::move(options)) {}

AuditLog::~AuditLog() {
  (void)close();
}

std::chrono::system_clock::time_point AuditLog::now() const {
  return opts_.clock ? opts_.clock() : std::chrono::system_clock::now();
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(Options options) {
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options)));
  if (auto s = log->start(); !s) return tl::unexpected(s.error());
  return log;
}

Result<void> AuditLog::start() {
  std::error_code ec;
  std::filesystem::create_directories(opts_.dir, ec);
  if (ec) return fail("audit_unavailable", fmt::format("{}: {}", opts_.dir.string(), ec.message()));
  if (auto l = lock_dir(); !l) return l;
  auto key = AuditKey::open(opts_.key_path, opts_.open_key, opts_.public_key_path);
  if (!key) return tl::unexpected(key.error());
  key_ = std::move(*key);

  prev_hash_ = std::string(kGenesisHash);
  // Find where the log ends (the last intact record) without changing anything yet: a log that
  // must not be continued stays exactly as it was found.
  struct Cut {
    std::string segment;
    uint64_t keep = 0;  // bytes that stay
    uint64_t seq = 0;   // the seq the first cut record would have had
    std::string bytes;
  };
  std::vector<Cut> cuts;
  std::vector<std::string> empty_segments;  // left with no record: removed
  auto segments = list_segments(opts_.dir);
  bool create = true;
  std::string last_event;
  while (!segments.empty()) {
    const auto path = opts_.dir / segments.back();
    auto tail = read_tail(path);
    if (!tail) return tl::unexpected(tail.error());
    uint64_t first_seq = 0;
    (void)parse_segment_name(segments.back(), &first_seq);
    if (tail->cut.size() != tail->dropped)  // what would be cut must be kept whole
      return fail("audit_unavailable",
                  fmt::format("{}: could not read the {} bytes after its last intact record",
                              path.string(), tail->dropped));
    if (tail->dropped > 0)
      cuts.push_back(Cut{segments.back(), tail->good_size,
                         tail->good_size > 0 ? tail->last_seq + 1 : first_seq,
                         std::move(tail->cut)});
    if (tail->good_size == 0 && segments.size() > 1) {
      // An empty segment (a crash right after rotation): continue the previous one.
      empty_segments.push_back(segments.back());
      segments.pop_back();
      continue;
    }
    if (tail->good_size == 0 && first_seq != 1)
      return fail("audit_corrupt", fmt::format("{}: no intact record, and no earlier segment to "
                                               "continue from",
                                               path.string()));
    segment_ = segments.back();
    segment_bytes_ = tail->good_size;
    if (tail->good_size > 0) {
      next_seq_ = tail->last_seq + 1;
      prev_hash_ = tail->last_hash;
      since_checkpoint_ = tail->last_event == "checkpoint" ? 0 : 1;
      last_event = tail->last_event;
    }
    create = false;
    break;
  }
  if (create) segment_ = segment_name(1);
  // A log cut back to before the checkpoint audit.head names is not continued: the next
  // checkpoint would overwrite the evidence. Nor is a log with checkpoints but no audit.head:
  // deleting audit.head must not hide such a cut.
  const auto head_file = opts_.dir / kHeadFile;
  const bool head_exists = std::filesystem::exists(head_file, ec);
  if (ec) return fail("audit_unavailable", fmt::format("{}: {}", head_file.string(), ec.message()));
  if (head_exists) {
    const auto head = read_head(head_file);
    const uint64_t last = next_seq_ - 1;
    if (!head || head->first > last || (head->first == last && head->second != prev_hash_))
      return fail("audit_truncated",
                  fmt::format("{}: audit.head names checkpoint seq {} but the log ends at seq {}; "
                              "run touchgate audit verify and move the log aside",
                              opts_.dir.string(), head ? head->first : 0, last));
  } else if (!create) {
    // Every segment before the last ends in a checkpoint (rotation writes one); the last one is
    // searched only up to where it stays.
    bool checkpoints = segments.size() > 1 || last_event == "checkpoint";
    if (!checkpoints) {
      auto found = holds_checkpoint(opts_.dir / segment_, segment_bytes_);
      if (!found) return tl::unexpected(found.error());
      checkpoints = *found;
    }
    if (checkpoints)
      return fail("audit_head_missing",
                  fmt::format("{}: audit.head is missing but the log holds checkpoints (a log cut "
                              "back past its last checkpoint would go unnoticed); run touchgate "
                              "audit verify and move the log aside",
                              opts_.dir.string()));
  }
  // Now repair: keep every byte that is cut in a side file first.
  for (auto& c : cuts) {
    const auto path = opts_.dir / c.segment;
    auto kept = keep_cut(opts_.dir, c.segment, c.seq, c.bytes);
    if (!kept) return tl::unexpected(kept.error());
    if (::truncate(path.c_str(), static_cast<off_t>(c.keep)) != 0)
      return tl::unexpected(io_error(path.string() + ": truncate", errno));
    const auto lines = static_cast<uint64_t>(std::count(c.bytes.begin(), c.bytes.end(), '\n'));
    if (!recovered_.empty()) recovered_ += "; ";
    recovered_ +=
        fmt::format("{}: cut {} bytes ({} complete lines) after its last intact record, kept in {}",
                    c.segment, c.bytes.size(), lines, *kept);
    pending_notes_.push_back(Record("recovered")
                                 .str("segment", c.segment)
                                 .u64("dropped_bytes", c.bytes.size())
                                 .u64("complete_lines", lines)
                                 .str("side_file", *kept)
                                 .str("sha256", to_hex(ssh::sha256(ssh::as_bytes(c.bytes)))));
  }
  for (const auto& e : empty_segments) {
    std::filesystem::remove(opts_.dir / e, ec);
    if (ec) return fail("audit_unavailable", fmt::format("{}: {}", e, ec.message()));
  }
  // The notes go in log order: the earliest segment's cut first.
  std::reverse(pending_notes_.begin(), pending_notes_.end());
  if (auto o = open_segment(create); !o) return o;
  last_checkpoint_ = now();
  thread_ = std::thread([this] { run(); });
  return {};
}

Result<void> AuditLog::lock_dir() {
  // One writer per directory: a second writer would fork the chain. The lock lives as long as the
  // descriptor (released by close() or by the process's exit, also a crash).
  const auto path = opts_.dir / kLockFile;
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd_ < 0) return tl::unexpected(io_error(path.string(), errno));
  while (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK)
      return fail("audit_locked",
                  fmt::format("{}: another touchgated (or touchgate command) is writing this audit "
                              "log",
                              opts_.dir.string()));
    return tl::unexpected(io_error(path.string() + ": flock", err));
  }
  return {};
}

Result<void> AuditLog::open_segment(bool create) {
  if (fd_ >= 0) ::close(fd_);
  const auto path = opts_.dir / segment_;
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd_ < 0) return tl::unexpected(io_error(path.string(), errno));
  if (::ftruncate(fd_, static_cast<off_t>(segment_bytes_)) != 0)
    return tl::unexpected(io_error(path.string() + ": truncate", errno));
  if (create) {
    if (auto d = fsync_dir(opts_.dir); !d) return d;
  }
  segment_opened_ = now();
  return {};
}

Result<void> AuditLog::append(Record r, Durable durable) {
  if (!r.valid())
    return fail("audit_bad_record", fmt::format("record {} has an invalid name", r.event()));
  // seq, ts, prev, event and hash take at most 300 bytes: the line stays readable by verify.
  if (r.fields().size() + r.event().size() + 300 > kMaxLine)
    return fail("audit_bad_record", fmt::format("record {} is too long", r.event()));
  std::lock_guard lk(mu_);
  if (stopping_ || closed_) return fail("audit_closed", "the audit log is closed");
  if (!healthy_.load()) return fail("audit_unavailable", last_error_);
  if (queue_.size() >= opts_.queue_limit)
    return fail("audit_overloaded",
                fmt::format("{} records wait for the audit log", queue_.size()));
  queue_.push_back(Item{std::move(r), std::move(durable)});
  if (queue_.size() == 1) cv_.notify_one();
  return {};
}

void AuditLog::fail_items(std::vector<Item>& items, const Error& e) {
  failed_records_ += items.size();
  for (auto& it : items)
    if (it.durable) it.durable(tl::unexpected(e));
  items.clear();
}

void AuditLog::append_checkpoint(std::string& buf) {
  const uint64_t head_seq = next_seq_ - 1;
  const uint64_t missed = key_->unsigned_streak();
  auto sig = key_->sign_checkpoint(head_seq, prev_hash_);
  if (!sig && opts_.on_checkpoint_unsigned) opts_.on_checkpoint_unsigned(next_seq_, sig.error());
  if (sig && missed > 0 && opts_.on_checkpoint_signed_again)
    opts_.on_checkpoint_signed_again(next_seq_, missed);
  Record cp("checkpoint");
  cp.u64("head_seq", head_seq).str("head", prev_hash_).str("key_fp", key_->fingerprint());
  cp.str("sig", sig ? ssh::base64_encode(*sig) : std::string());
  const auto line = format_line(next_seq_, now(), prev_hash_, cp);
  buf += line.text;
  pending_head_ = std::make_pair(next_seq_, line.hash);
  prev_hash_ = line.hash;
  ++next_seq_;
  since_checkpoint_ = 0;
}

Result<void> AuditLog::commit(const std::string& buf, uint64_t lines) {
  size_t done = 0;
  int err = 0;
  while (done < buf.size()) {
    const size_t n = std::min<size_t>(buf.size() - done, 1u << 20);
    if (opts_.fault) err = opts_.fault(IoOp::kWrite);
    if (err != 0) break;
    const ssize_t w = ::write(fd_, buf.data() + done, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(w);
  }
  if (err == 0) {
    if (opts_.fault) err = opts_.fault(IoOp::kSync);
    if (err == 0 && ::fdatasync(fd_) != 0) err = errno;
  }
  if (err != 0) {
    // Never leave half a batch: cut back to the last complete, durable line (retried on recovery).
    (void)!::ftruncate(fd_, static_cast<off_t>(segment_bytes_));
    return tl::unexpected(io_error(fmt::format("{}", segment_), err));
  }
  segment_bytes_ += buf.size();
  syncs_.fetch_add(1, std::memory_order_relaxed);
  lines_.fetch_add(lines, std::memory_order_relaxed);
  if (opts_.on_written) written_ += buf;
  return {};
}

void AuditLog::notify_written() {
  if (written_.empty()) return;
  const std::string_view all(written_);
  size_t start = 0;
  while (start < all.size()) {
    const size_t nl = all.find('\n', start);  // every committed line ends in '\n'
    opts_.on_written(all.substr(start, nl - start));
    start = nl + 1;
  }
  written_.clear();
}

Result<void> AuditLog::write_head() {
  if (!pending_head_) return {};
  const auto file = opts_.dir / kHeadFile;
  auto tmp = file;
  tmp += ".tmp";
  const std::string text = fmt::format("touchgate-audit-head-v1\nseq: {}\nhash: {}\n",
                                       pending_head_->first, pending_head_->second);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return tl::unexpected(io_error(tmp.string(), errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return tl::unexpected(io_error(tmp.string(), err));
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    return tl::unexpected(io_error(file.string(), errno));
  pending_head_.reset();
  return fsync_dir(opts_.dir);
}

Result<void> AuditLog::rotate_if_due() {
  if (segment_bytes_ == 0) return {};
  if (segment_bytes_ < opts_.max_segment_bytes && now() - segment_opened_ < opts_.max_segment_age)
    return {};
  if (since_checkpoint_ > 0) {
    std::string buf;
    const auto saved_seq = next_seq_;
    const auto saved_prev = prev_hash_;
    append_checkpoint(buf);
    if (auto c = commit(buf, 1); !c) {
      next_seq_ = saved_seq;
      prev_hash_ = saved_prev;
      since_checkpoint_ = 1;
      pending_head_.reset();
      return c;
    }
    last_checkpoint_ = now();
    (void)write_head();
  }
  prev_segment_ = segment_;
  segment_ = segment_name(next_seq_);
  segment_bytes_ = 0;
  need_segment_start_ = true;
  return open_segment(true);
}

Result<void> AuditLog::write_records(std::vector<Item>& items, std::vector<uint64_t>* seqs,
                                     bool force_checkpoint) {
  if (auto r = rotate_if_due(); !r) return r;
  const auto saved_seq = next_seq_;
  const auto saved_prev = prev_hash_;
  const auto saved_since = since_checkpoint_;
  std::string buf;
  const auto emit = [&](const Record& r) {
    const auto line = format_line(next_seq_, now(), prev_hash_, r);
    buf += line.text;
    prev_hash_ = line.hash;
    ++next_seq_;
    ++since_checkpoint_;
  };
  if (need_segment_start_) emit(Record("segment_start").str("prev_segment", prev_segment_));
  for (const auto& note : pending_notes_) emit(note);
  if (!healthy_.load())
    emit(Record("audit_recovered")
             .str("since", format_timestamp(outage_since_))
             .u64("failed_records", failed_records_)
             .str("error", last_error_));
  for (auto& it : items) {
    seqs->push_back(next_seq_);
    emit(it.record);
    if (since_checkpoint_ >= opts_.checkpoint_every) append_checkpoint(buf);
  }
  if (force_checkpoint && since_checkpoint_ > 0) append_checkpoint(buf);
  if (buf.empty()) return {};
  if (auto c = commit(buf, next_seq_ - saved_seq); !c) {
    next_seq_ = saved_seq;
    prev_hash_ = saved_prev;
    since_checkpoint_ = saved_since;
    pending_head_.reset();
    seqs->clear();
    return c;
  }
  need_segment_start_ = false;
  pending_notes_.clear();
  // The records are durable: run() answers their callers first and then replaces audit.head
  // (two more syncs), so that a checkpoint does not add to the batch's latency.
  if (pending_head_) last_checkpoint_ = now();
  return {};
}

Result<void> AuditLog::try_recover() {
  if (auto o = open_segment(segment_bytes_ == 0); !o) return o;
  std::vector<Item> none;
  std::vector<uint64_t> seqs;
  return write_records(none, &seqs, false);
}

void AuditLog::run() {
  std::unique_lock lk(mu_);
  while (true) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
    if (!healthy_.load()) {
      deadline = next_retry_;
    } else if (since_checkpoint_ > 0) {
      const auto sys_due = last_checkpoint_ + opts_.checkpoint_interval;
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(sys_due - now());
    }
    cv_.wait_until(lk, deadline, [&] {
      return !queue_.empty() || stopping_ || (!pending_notes_.empty() && healthy_.load());
    });

    if (!healthy_.load()) {
      if (std::chrono::steady_clock::now() >= next_retry_) {
        lk.unlock();
        auto r = try_recover();
        notify_written();
        (void)write_head();
        lk.lock();
        if (r) {
          healthy_ = true;
          failed_records_ = 0;
        } else {
          last_error_ = r.error().message;
          next_retry_ = std::chrono::steady_clock::now() + opts_.retry_interval;
        }
      }
      if (!healthy_.load()) {
        std::vector<Item> items(std::make_move_iterator(queue_.begin()),
                                std::make_move_iterator(queue_.end()));
        queue_.clear();
        const Error e{"audit_unavailable", last_error_};
        if (stopping_) {
          lk.unlock();
          fail_items(items, e);
          lk.lock();
          close_result_ = tl::unexpected(e);
          break;
        }
        lk.unlock();
        fail_items(items, e);
        lk.lock();
        continue;
      }
    }

    std::vector<Item> items;
    while (!queue_.empty() && items.size() < opts_.max_batch) {
      items.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    const bool stop = stopping_ && queue_.empty();
    lk.unlock();
    const bool due = since_checkpoint_ > 0 && now() >= last_checkpoint_ + opts_.checkpoint_interval;
    std::vector<uint64_t> seqs;
    Result<void> r;
    if (!items.empty() || due || stop || !pending_notes_.empty())
      r = write_records(items, &seqs, due || stop);
    if (r) {
      for (size_t i = 0; i < items.size(); ++i)
        if (items[i].durable) items[i].durable(seqs[i]);
    } else {
      lk.lock();
      last_error_ = r.error().message;
      healthy_ = false;
      outage_since_ = now();
      next_retry_ = std::chrono::steady_clock::now() + opts_.retry_interval;
      lk.unlock();
      fail_items(items, Error{"audit_unavailable", r.error().message});
    }
    notify_written();
    (void)write_head();  // a failure leaves it pending: tried again after the next batch
    lk.lock();
    if (stop) {
      if (!r) {
        close_result_ = tl::unexpected(r.error());
        // Records queued meanwhile were refused by append (stopping_), so nothing is left.
      }
      break;
    }
  }
}

Result<void> AuditLog::close() {
  {
    std::lock_guard lk(mu_);
    if (closed_) return close_result_;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lk(mu_);
  closed_ = true;
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the lock
    lock_fd_ = -1;
  }
  return close_result_;
}

}  // namespace touchgate::audit
