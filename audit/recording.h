// Recording: one terminating-mode channel written as an asciicast v2 file
// (docs/audit-format.md, "Recordings"). The bytes are the session's (untrusted, any encoding):
// every event's data is written as valid JSON whatever they hold.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>


#include "ssh/error.h"

namespace touchgate::audit {

class Recording {
 public:
  // The first line of the file. term, title and an empty touchgate field are omitted.
  struct Header {
    int width = 80;         // columns, > 0
    int height = 24;        // rows, > 0
    int64_t timestamp = 0;  // start of the recording, seconds since the epoch
    std::string term;       // written as "env": {"TERM": term}
    std::string title;
    // touchgate's own fields, written under the extra header key "touchgate" (players ignore
    // keys they do not know).
    std::string target, user, key_id, connection, touch_key_fp;
    uint64_t serial = 0;
  };

  enum class Status {
    kRecorded,    // the event is in the file (or pending: an incomplete UTF-8 sequence)
    kCapReached,  // the size cap was hit: this event (or its tail) and all later ones are dropped
  };

  struct Summary {
    std::string sha256;  // lowercase hex SHA-256 of the whole file
    uint64_t size = 0;   // bytes in the file
  };

  // kMinMaxBytes is the smallest cap create accepts; kDefaultMaxBytes is used when none is given.
  static constexpr uint64_t kMinMaxBytes = 4096;
  static constexpr uint64_t kDefaultMaxBytes = uint64_t{1} << 30;
  // kCapMarker is the label of the "m" event written when the cap is reached.
  static constexpr std::string_view kCapMarker = "touchgate: recording size limit reached";

  // Executor runs a job on another thread, jobs in the order given (the gateway's recorder
  // thread). With one, the disk work — SHA-256, write(), fsync — happens there and the caller
  // only formats events; without, everything happens in the calling thread.
  using Executor = std::function<void(std::function<void()>)>;

  // kMaxBacklog: bytes of events handed to the executor and not yet written at which
  // backlogged() turns true; kResumeBacklog: the level at which the drain callback runs.
  static constexpr uint64_t kMaxBacklog = 4u << 20;
  static constexpr uint64_t kResumeBacklog = 1u << 20;

  // create makes `path` (O_EXCL, mode 0600; its directory must exist) and writes the header.
  // The file never grows past max_bytes. Codes: "recording_exists", "recording_invalid" (width or
  // height <= 0, max_bytes < kMinMaxBytes, a header longer than the cap allows),
  // "recording_io" (any other failure to create or write).
  static Result<std::unique_ptr<Recording>> create(const std::string& path, const Header& header,
                                                   uint64_t max_bytes = kDefaultMaxBytes,
                                                   Executor executor = {});

  ~Recording();  // closes the file (best effort, no fsync) if close() was not called
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;

  // output / input record bytes the target sent / the user typed, `elapsed` after the start.
  // Times are made non-decreasing (an earlier time is written as the latest one seen). Bytes
  // may split a UTF-8 sequence across calls: an incomplete sequence at the end is held until the
  // next call of the same stream. Invalid bytes are written as U+FFFD. Large calls are written
  // as several events. Events are buffered (see flush). Errors: "recording_io" (and every later
  // call fails the same way), "recording_closed".
  Result<Status> output(std::chrono::microseconds elapsed, std::span<const uint8_t> bytes);
  Result<Status> input(std::chrono::microseconds elapsed, std::span<const uint8_t> bytes);
  // resize records the terminal's new size ("r" event, "COLSxROWS").
  Result<Status> resize(std::chrono::microseconds elapsed, uint32_t cols, uint32_t rows);

  // flush writes the buffered events to the file (without fsync); with an executor it hands
  // them over to be written there. A write that failed on the executor's thread is reported by
  // the next call of any method ("recording_io").
  Result<void> flush();

  // close writes what is held (an incomplete UTF-8 sequence becomes U+FFFD), flushes, fsyncs
  // the file and its directory and closes it. Summary is computed while writing. With an
  // executor, close waits for it (so never call it on the executor's own thread).
  Result<Summary> close();
  // close_async is close without waiting: done runs with the result on the executor's thread
  // (at once on this one when there is no executor, or the recording is already unusable).
  void close_async(std::function<void(Result<Summary>)> done);

  // backlogged is true while kMaxBacklog or more bytes wait on the executor: the caller should
  // stop producing output until the drain callback runs (on the executor's thread, once the
  // backlog is down to kResumeBacklog after backlogged() returned true).
  bool backlogged();
  void set_drain_callback(std::function<void()> drained);

  // size is the file's size once everything buffered is written; buffered what flush() would
  // hand over or write now.
  uint64_t size() const { return size_; }
  size_t buffered() const { return buf_.size(); }
  bool cap_reached() const { return capped_; }

 private:
  struct Stream {
    char type;            // 'o' or 'i'
    std::string pending;  // an incomplete UTF-8 sequence held for the next call (<= 3 bytes)
  };

  // File is what the writing side owns: shared with the executor's queued jobs, so it outlives
  // a Recording destroyed while they run.
  struct File;

  Recording(std::shared_ptr<File> file, uint64_t max_bytes, Executor executor);
  Result<Status> record(Stream& stream, std::chrono::microseconds elapsed,
                        std::span<const uint8_t> bytes);
  Result<Status> event(std::chrono::microseconds elapsed, char type, std::string_view data);
  Result<void> append(std::string_view line);
  // commit accounts for (size) what was written into buf_ from `start` on.
  Result<Status> commit(size_t start);
  Result<void> usable() const;
  // finish_events writes what close() writes before the file is closed: held UTF-8 tails.
  Result<void> finish_events();

  std::shared_ptr<File> file_;
  uint64_t max_bytes_;
  Executor executor_;
  uint64_t size_ = 0;  // written + buffered
  std::chrono::microseconds last_{0};
  std::string buf_;
  Stream out_{'o', {}};
  Stream in_{'i', {}};
  bool capped_ = false;
  bool closed_ = false;
};

}  // namespace touchgate::audit
