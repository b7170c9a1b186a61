// Recording: one terminating-mode channel written as an asciicast v2 file
// (docs/audit-format.md, "Recordings"). The bytes are the session's (untrusted, any encoding):
// every event's data is written as valid JSON whatever they hold.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <openssl/evp.h>

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

  // create makes `path` (O_EXCL, mode 0600; its directory must exist) and writes the header.
  // The file never grows past max_bytes. Codes: "recording_exists", "recording_invalid" (width or
  // height <= 0, max_bytes < kMinMaxBytes, a header longer than the cap allows),
  // "recording_io" (any other failure to create or write).
  static Result<std::unique_ptr<Recording>> create(const std::string& path, const Header& header,
                                                   uint64_t max_bytes = kDefaultMaxBytes);

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

  // flush writes the buffered events to the file (without fsync).
  Result<void> flush();

  // close writes what is held (an incomplete UTF-8 sequence becomes U+FFFD), flushes, fsyncs
  // the file and its directory and closes it. Summary is computed while writing.
  Result<Summary> close();

  // size is the file's size once everything buffered is written.
  uint64_t size() const { return size_; }
  bool cap_reached() const { return capped_; }

 private:
  struct Stream {
    char type;            // 'o' or 'i'
    std::string pending;  // an incomplete UTF-8 sequence held for the next call (<= 3 bytes)
  };

  Recording(int fd, std::string path, uint64_t max_bytes);
  Result<Status> record(Stream& stream, std::chrono::microseconds elapsed,
                        std::span<const uint8_t> bytes);
  Result<Status> event(std::chrono::microseconds elapsed, char type, std::string_view data);
  Result<void> append(std::string_view line);
  // commit accounts for (size, SHA-256) what was written into buf_ from `start` on.
  Result<Status> commit(size_t start);
  Result<void> usable() const;

  int fd_;
  std::string path_;
  uint64_t max_bytes_;
  uint64_t size_ = 0;  // written + buffered
  std::chrono::microseconds last_{0};
  std::string buf_;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha_;
  Stream out_{'o', {}};
  Stream in_{'i', {}};
  bool capped_ = false;
  bool closed_ = false;
  std::string failed_;  // the first write error, repeated to every later call
};

}  // namespace touchgate::audit
