// Playing an asciicast v2 recording. Trust boundary: the recording file (see replay.h).
#include "cli/replay.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <nlohmann/json.hpp>

namespace touchgate::cli {
namespace {

using Json = nlohmann::json;

constexpr size_t kChunk = size_t{64} << 10;
constexpr auto kStopPoll = std::chrono::milliseconds(50);

// read_some is read(2) retried on EINTR.
ssize_t read_some(int fd, char* p, size_t n) {
  for (;;) {
    const ssize_t r = ::read(fd, p, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

// LineReader splits a file into lines with one buffer of kMaxReplayLine plus a chunk: a longer
// line is dropped as it streams past and reported as too long.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd), buf_(kMaxReplayLine + kChunk) {}

  enum class Got { kLine, kTooLong, kEnd };

  // next returns the next line (without its '\n') in *line, valid until the next call.
  Result<Got> next(std::string_view* line) {
    for (;;) {
      const char* base = buf_.data();
      if (const void* nl = std::memchr(base + scan_, '\n', end_ - scan_); nl != nullptr) {
        const size_t at = static_cast<size_t>(static_cast<const char*>(nl) - base);
        *line = std::string_view(base + start_, at - start_);
        start_ = scan_ = at + 1;
        ++number_;
        const bool too_long = discarding_ || line->size() > kMaxReplayLine;
        discarding_ = false;
        return too_long ? Got::kTooLong : Got::kLine;
      }
      scan_ = end_;
      if (end_ - start_ > kMaxReplayLine) {  // too long: drop what is held, keep skipping
        discarding_ = true;
        start_ = scan_ = end_ = 0;
      } else if (start_ > 0 && buf_.size() - end_ < kChunk) {
        std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
        end_ -= start_;
        scan_ = end_;
        start_ = 0;
      }
      const ssize_t n = read_some(fd_, buf_.data() + end_, std::min(kChunk, buf_.size() - end_));
      if (n < 0) {
        return fail("recording_unreadable",
                    fmt::format("cannot read the recording: {}", std::strerror(errno)));
      }
      if (n == 0) {  // the end: a last line without its '\n' is still a line
        if (end_ == start_ && !discarding_) return Got::kEnd;
        *line = std::string_view(buf_.data() + start_, end_ - start_);
        start_ = scan_ = end_;
        ++number_;
        const bool too_long = discarding_ || line->size() > kMaxReplayLine;
        discarding_ = false;
        return too_long ? Got::kTooLong : Got::kLine;
      }
      end_ += static_cast<size_t>(n);
    }
  }

  uint64_t number() const { return number_; }

 private:
  int fd_;
  std::vector<char> buf_;
  size_t start_ = 0, scan_ = 0, end_ = 0;  // the unconsumed bytes are buf_[start_, end_)
  bool discarding_ = false;
  uint64_t number_ = 0;
};

std::string string_or_empty(const Json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t integer_or_zero(const Json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return 0;
  const double v = it->get<double>();
  return std::isfinite(v) && std::fabs(v) < 1e15 ? static_cast<int64_t>(v) : 0;
}

Result<ReplayHeader> parse_header(std::string_view line) {
  const Json j = Json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail("recording_invalid", "the first line is not an asciicast header (a JSON object)");
  }
  const auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != 2) {
    return fail("recording_invalid", "not an asciicast v2 recording (version is not 2)");
  }
  ReplayHeader h;
  h.width = integer_or_zero(j, "width");
  h.height = integer_or_zero(j, "height");
  h.timestamp = integer_or_zero(j, "timestamp");
  if (const auto tg = j.find("touchgate"); tg != j.end() && tg->is_object()) {
    h.target = string_or_empty(*tg, "target");
    h.user = string_or_empty(*tg, "user");
    h.connection = string_or_empty(*tg, "connection");
  }
  return h;
}

struct Event {
  double time = 0;
  std::string type;
  std::string data;
};

// parse_event reads [time, type, data]; nullptr when the line is one, else why not.
const char* parse_event(std::string_view line, Event* e) {
  const Json j = Json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return "not JSON";
  if (!j.is_array() || j.size() != 3) return "not an event [time, type, data]";
  if (!j[0].is_number() || !j[1].is_string() || !j[2].is_string()) {
    return "not an event [time, type, data]";
  }
  e->time = j[0].get<double>();
  if (!std::isfinite(e->time) || e->time < 0) return "the event's time is not a time";
  e->type = j[1].get<std::string>();
  e->data = j[2].get<std::string>();
  return nullptr;
}

}  // namespace

Result<FileDigest> digest_fd(int fd) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return fail("recording_unreadable", "cannot compute SHA-256 (OpenSSL)");
  }
  std::vector<char> buf(kChunk * 4);
  FileDigest d;
  for (;;) {
    const ssize_t n = read_some(fd, buf.data(), buf.size());
    if (n < 0) {
      return fail("recording_unreadable",
                  fmt::format("cannot read the recording: {}", std::strerror(errno)));
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
    d.size += static_cast<uint64_t>(n);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  d.sha256.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) d.sha256 += fmt::format("{:02x}", md[i]);
  return d;
}

Result<ReplayStats> play_recording(int fd, const ReplayOptions& options, const ReplaySink& sink,
                                   const std::atomic<bool>& stop) {
  LineReader reader(fd);
  std::string_view line;
  auto got = reader.next(&line);
  if (!got) return tl::unexpected(got.error());
  if (*got == LineReader::Got::kEnd) return fail("recording_invalid", "the recording is empty");
  if (*got == LineReader::Got::kTooLong) {
    return fail("recording_invalid", "the first line is not an asciicast header (too long)");
  }
  auto header = parse_header(line);
  if (!header) return tl::unexpected(header.error());
  if (sink.header) sink.header(*header);

  ReplayStats stats;
  const auto start = std::chrono::steady_clock::now();
  double played = 0;  // seconds of playback so far (pauses capped, scaled)
  double previous = 0;
  // wait returns false when stopped before the event's time.
  const auto wait = [&] {
    if (options.speed <= 0) return !stop.load();
    const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(played));
    bool flushed = false;
    for (;;) {
      if (stop.load()) return false;
      const auto now = std::chrono::steady_clock::now();
      if (now >= due) return true;
      if (!flushed && sink.flush) sink.flush();
      flushed = true;
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(due - now, kStopPoll));
    }
  };

  Event e;
  for (;;) {
    if (stop.load()) {
      stats.stopped = true;
      break;
    }
    got = reader.next(&line);
    if (!got) return tl::unexpected(got.error());
    if (*got == LineReader::Got::kEnd) break;
    if (*got == LineReader::Got::kTooLong) {
      ++stats.skipped;
      if (sink.skipped) {
        sink.skipped(reader.number(), fmt::format("longer than {} bytes", kMaxReplayLine));
      }
      continue;
    }
    if (line.empty()) continue;
    if (const char* why = parse_event(line, &e)) {
      ++stats.skipped;
      if (sink.skipped) sink.skipped(reader.number(), why);
      continue;
    }
    ++stats.events;
    const double gap = std::min(std::max(e.time - previous, 0.0), options.idle_limit);
    previous = std::max(previous, e.time);
    if (options.speed > 0) played += gap / options.speed;
    if (e.type != "o" && e.type != "m") continue;  // input and resizes are not shown
    if (!wait()) {
      stats.stopped = true;
      break;
    }
    stats.last_time = previous;
    if (e.type == "o") {
      stats.output_bytes += e.data.size();
      if (sink.output) sink.output(e.data);
    } else {
      if (sink.flush) sink.flush();
      if (sink.marker) sink.marker(e.time, e.data);
    }
  }
  if (sink.flush) sink.flush();
  return stats;
}

}  // namespace touchgate::cli
