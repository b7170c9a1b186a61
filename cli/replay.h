// Playing a session recording (asciicast v2, docs/audit-format.md "Recordings") for
// `touchgate audit replay`. Trust boundary: a recording file read back from disk. Each line is
// parsed on its own as JSON with a length cap and memory stays bounded whatever the file's
// size. The "o" events are the target's bytes and are written as they are (that is what a replay
// is for); every other value that is printed is escaped by the caller.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "ssh/error.h"

namespace touchgate::cli {

// kMaxReplayLine is the longest line play_recording accepts; a longer one is skipped (and
// counted) without being held whole. The writer splits large reads into several events, so a
// genuine recording has no line near it.
inline constexpr size_t kMaxReplayLine = size_t{1} << 20;

// FileDigest is a file's size and the lowercase hex SHA-256 of its bytes.
struct FileDigest {
  uint64_t size = 0;
  std::string sha256;
};

// digest_fd reads the open file fd from its current offset to its end, in fixed chunks. Code
// "recording_unreadable".
Result<FileDigest> digest_fd(int fd);

// The header fields a replay shows (the touchgate extra key's values, empty when absent).
struct ReplayHeader {
  int64_t width = 0, height = 0;
  int64_t timestamp = 0;
  std::string target, user, connection;
};

struct ReplayOptions {
  double speed = 1.0;       // 0: write everything at once
  double idle_limit = 2.0;  // seconds; a longer pause between two events is shortened to it
};

struct ReplayStats {
  uint64_t events = 0;        // event lines read (every type)
  uint64_t output_bytes = 0;  // bytes of "o" events written
  uint64_t skipped = 0;       // lines that are not an event (or longer than kMaxReplayLine)
  double last_time = 0;       // the recording's time of the last event delivered, seconds
  bool stopped = false;       // `stop` was set before the end
};

// ReplaySink receives what a replay produces. output gets the data of "o" events, marker the
// label of "m" events (after the output before it was flushed), skipped a warning for each line
// that is not an event (line number and why), header the header once it is read.
struct ReplaySink {
  std::function<void(const ReplayHeader&)> header;
  std::function<void(std::string_view)> output;
  std::function<void()> flush;  // called before each wait and before a marker
  std::function<void(double time, std::string_view label)> marker;
  std::function<void(uint64_t line, std::string_view why)> skipped;
};

// play_recording reads the recording from fd (from its current offset) line by line. The first
// line must be an asciicast v2 header (code "recording_invalid" otherwise; "recording_unreadable"
// for a read error). Each event [time, type, data] is then delivered at its time, scaled by
// options.speed, pauses capped at options.idle_limit: "o" to sink.output, "m" to sink.marker;
// "i" (input) and "r" (resize) are read and not delivered. Lines that are not events are skipped
// and reported. It returns early, with stopped set, once `stop` is set (checked between events
// and every 50 ms while waiting).
Result<ReplayStats> play_recording(int fd, const ReplayOptions& options, const ReplaySink& sink,
                                   const std::atomic<bool>& stop);

}  // namespace touchgate::cli
