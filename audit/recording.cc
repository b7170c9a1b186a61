// Trust boundary: writes bytes a session's peers sent; only valid JSON reaches the file.
#include "audit/recording.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <vector>

#include <openssl/evp.h>

#include <fmt/format.h>

#include "audit/record.h"
#include "ssh/text.h"

namespace touchgate::audit {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;         // flush when the buffer holds this much
constexpr size_t kAsyncBufferBytes = 256 * 1024;   // ... when an executor writes it
constexpr size_t kSpareBuffers = 1;  // a buffer kept for reuse (async): double buffering
constexpr size_t kChunkBytes = 16 * 1024;   // one event holds at most this many input bytes
// Room kept below the cap for the marker event: "[<time>, "m", "<kCapMarker>"]\n" is < 100 bytes.
constexpr uint64_t kMarkerReserve = 128;

Error io_failure(const std::string& what, const std::string& path) {
  return Error{"recording_io", "recording " + path + ": " + what + ": " + std::strerror(errno)};
}

tl::unexpected<Error> io_error(const std::string& what, const std::string& path) {
  return tl::unexpected(io_failure(what, path));
}

// sequence_length is the length of a UTF-8 sequence starting with lead (0: not a lead byte).
size_t sequence_length(uint8_t lead) {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

// second_byte_ok applies RFC 3629's narrower ranges to the byte after lead (no overlong forms,
// no surrogates, nothing above U+10FFFF).
bool second_byte_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xe0:
      return b >= 0xa0 && b <= 0xbf;
    case 0xed:
      return b >= 0x80 && b <= 0x9f;
    case 0xf0:
      return b >= 0x90 && b <= 0xbf;
    case 0xf4:
      return b >= 0x80 && b <= 0x8f;
    default:
      return (b & 0xc0) == 0x80;
  }
}

// incomplete_suffix is the length (0-3) of the start of a well-formed UTF-8 sequence that s ends
// with and that the next bytes may complete.
size_t incomplete_suffix(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    const auto lead = static_cast<uint8_t>(s[s.size() - k]);
    if ((lead & 0xc0) == 0x80) continue;  // a continuation byte: look further back
    const size_t n = sequence_length(lead);
    if (n <= k) return 0;  // ASCII, an invalid byte, or a sequence that is already whole
    for (size_t j = 1; j < k; ++j) {
      const auto b = static_cast<uint8_t>(s[s.size() - k + j]);
      if (!(j == 1 ? second_byte_ok(lead, b) : (b & 0xc0) == 0x80)) return 0;
    }
    return k;
  }
  return 0;
}

std::string format_time(std::chrono::microseconds t) {
  const auto us = static_cast<uint64_t>(t.count());
  return fmt::format("{}.{:06}", us / 1000000, us % 1000000);
}

void add_field(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  if (out.back() != '{') out += ", ";
  append_json_string(out, name);
  out += ": ";
  append_json_string(out, value);
}

std::string header_line(const Recording::Header& h) {
  std::string line = fmt::format(R"({{"version": 2, "width": {}, "height": {}, "timestamp": {})",
                                 h.width, h.height, h.timestamp);
  if (!h.term.empty()) {
    line += R"(, "env": {"TERM": )";
    append_json_string(line, h.term);
    line += "}";
  }
  if (!h.title.empty()) {
    line += R"(, "title": )";
    append_json_string(line, h.title);
  }
  line += R"(, "touchgate": {)";
  add_field(line, "target", h.target);
  add_field(line, "user", h.user);
  add_field(line, "key_id", h.key_id);
  if (line.back() != '{') line += ", ";
  line += fmt::format(R"("serial": {})", h.serial);
  add_field(line, "connection", h.connection);
  add_field(line, "touch_key_fp", h.touch_key_fp);
  line += "}}\n";
  return line;
}

}  // namespace

// ---- the writing side -------------------------------------------------------------------------

struct Recording::File {
  File(int fd_in, std::string path_in)
      : fd(fd_in), path(std::move(path_in)), sha(EVP_MD_CTX_new(), EVP_MD_CTX_free) {}
  ~File() {
    if (fd >= 0) ::close(fd);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Touched by one thread at a time: the executor's (or the owner's, without one).
  int fd;
  const std::string path;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha;
  uint64_t written = 0;

  // Shared between the owner and the executor.
  mutable std::mutex mu;
  std::optional<Error> failed;  // the first write error, repeated to every later call
  std::vector<std::string> spare;
  uint64_t backlog = 0;
  bool want_drain = false;
  std::function<void()> drained;

  std::optional<Error> failure() const {
    std::lock_guard lock(mu);
    return failed;
  }
  void set_failed(Error e) {
    std::lock_guard lock(mu);
    if (!failed) failed = std::move(e);
  }

  // write_out hashes and writes data (nothing once a write failed).
  void write_out(std::string_view data) {
    if (data.empty() || failure()) return;
    if (EVP_DigestUpdate(sha.get(), data.data(), data.size()) != 1) {
      set_failed(Error{"recording_io", "recording " + path + ": SHA-256 failed"});
      return;
    }
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        set_failed(io_failure("write failed", path));
        return;
      }
      done += static_cast<size_t>(n);
    }
    written += data.size();
  }

  // written_back returns a handed-over buffer: the backlog shrinks, the buffer is kept for
  // reuse, and the drain callback runs when the owner waits for it.
  void written_back(std::string buffer) {
    std::function<void()> call;
    {
      std::lock_guard lock(mu);
      backlog -= std::min<uint64_t>(backlog, buffer.size());
      buffer.clear();
      if (spare.size() < kSpareBuffers) spare.push_back(std::move(buffer));
      if (want_drain && backlog <= kResumeBacklog) {
        want_drain = false;
        call = drained;
      }
    }
    if (call) call();
  }

  // finish fsyncs and closes the file, fsyncs its directory and returns the summary.
  Result<Summary> finish() {
    auto result = [&]() -> Result<Summary> {
      if (auto e = failure()) return tl::unexpected(*e);
      if (::fsync(fd) != 0) return io_error("fsync failed", path);
      const int rc = ::close(fd);
      fd = -1;
      if (rc != 0) return io_error("close failed", path);
      const std::string dir = std::filesystem::path(path).parent_path().string();
      const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        const int drc = ::fsync(dfd);
        ::close(dfd);
        if (drc != 0) return io_error("fsync of its directory failed", path);
      }
      std::array<uint8_t, 32> digest{};
      unsigned int len = 0;
      if (EVP_DigestFinal_ex(sha.get(), digest.data(), &len) != 1 || len != digest.size()) {
        return fail("recording_io", "recording " + path + ": SHA-256 failed");
      }
      return Summary{to_hex(digest), written};
    }();
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
    return result;
  }
};

// ---- the formatting side -----------------------------------------------------------------------

Recording::Recording(std::shared_ptr<File> file, uint64_t max_bytes, Executor executor)
    : file_(std::move(file)), max_bytes_(max_bytes), executor_(std::move(executor)) {}

Recording::~Recording() {
  if (!closed_) (void)flush();  // the file closes when its last queued write is done
}

Result<std::unique_ptr<Recording>> Recording::create(const std::string& path, const Header& header,
                                                     uint64_t max_bytes, Executor executor) {
  if (header.width <= 0 || header.height <= 0) {
    return fail("recording_invalid", "recording " + path + ": terminal size must be positive");
  }
  if (max_bytes < kMinMaxBytes) {
    return fail("recording_invalid", fmt::format("recording {}: size cap {} is below {}", path,
                                                 max_bytes, kMinMaxBytes));
  }
  const std::string line = header_line(header);
  if (line.size() + kMarkerReserve > max_bytes) {
    return fail("recording_invalid", "recording " + path + ": header does not fit the size cap");
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return fail("recording_exists", "recording " + path + " already exists");
    return io_error("cannot create", path);
  }
  auto file = std::make_shared<File>(fd, path);
  if (!file->sha || EVP_DigestInit_ex(file->sha.get(), EVP_sha256(), nullptr) != 1) {
    return fail("recording_io", "recording " + path + ": SHA-256 unavailable");
  }
  // The header is written here, in the caller's thread: a recording that cannot be written is
  // known before the session starts.
  file->write_out(line);
  if (auto e = file->failure()) return tl::unexpected(*e);
  std::unique_ptr<Recording> r(new Recording(std::move(file), max_bytes, std::move(executor)));
  r->size_ = line.size();
  return r;
}

Result<void> Recording::usable() const {
  if (closed_) return fail("recording_closed", "recording " + file_->path + " is closed");
  if (auto e = file_->failure()) return tl::unexpected(*e);
  return {};
}

Result<Recording::Status> Recording::output(std::chrono::microseconds elapsed,
                                            std::span<const uint8_t> bytes) {
  return record(out_, elapsed, bytes);
}

Result<Recording::Status> Recording::input(std::chrono::microseconds elapsed,
                                           std::span<const uint8_t> bytes) {
  return record(in_, elapsed, bytes);
}

Result<Recording::Status> Recording::resize(std::chrono::microseconds elapsed, uint32_t cols,
                                            uint32_t rows) {
  if (auto ok = usable(); !ok) return tl::unexpected(ok.error());
  if (capped_) return Status::kCapReached;
  return event(elapsed, 'r', fmt::format("{}x{}", cols, rows));
}

Result<Recording::Status> Recording::record(Stream& stream, std::chrono::microseconds elapsed,
                                            std::span<const uint8_t> bytes) {
  if (auto ok = usable(); !ok) return tl::unexpected(ok.error());
  if (capped_) return Status::kCapReached;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  size_t pos = 0;
  std::string chunk;
  do {
    const size_t n = std::min(kChunkBytes, text.size() - pos);
    std::string_view piece = text.substr(pos, n);
    pos += n;
    if (!stream.pending.empty()) {
      // An incomplete sequence from the last call goes in front (the rare, copying case).
      chunk = std::move(stream.pending);
      stream.pending.clear();
      chunk.append(piece);
      piece = chunk;
    }
    const size_t keep = incomplete_suffix(piece);
    stream.pending.assign(piece.substr(piece.size() - keep));
    piece.remove_suffix(keep);
    if (piece.empty()) continue;
    auto status = event(elapsed, stream.type, piece);
    if (!status || *status == Status::kCapReached) return status;
  } while (pos < text.size());
  return Status::kRecorded;
}

Result<Recording::Status> Recording::event(std::chrono::microseconds elapsed, char type,
                                           std::string_view data) {
  last_ = std::max(last_, elapsed);
  const std::string time = format_time(last_);
  // The common case, far from the cap: the event is escaped straight into the buffer (an
  // escaped byte takes at most 6).
  const uint64_t worst = time.size() + 16 + 6 * static_cast<uint64_t>(data.size());
  if (size_ + worst + kMarkerReserve <= max_bytes_) {
    const size_t start = buf_.size();
    buf_.push_back('[');
    buf_.append(time);
    buf_.append(", \"");
    buf_.push_back(type);
    buf_.append("\", ");
    append_json_string(buf_, data);
    buf_.append("]\n");
    return commit(start);
  }
  std::string line = "[" + time + ", \"" + type + "\", ";
  append_json_string(line, data);
  line += "]\n";
  if (size_ + line.size() + kMarkerReserve > max_bytes_) {
    capped_ = true;
    std::string marker = "[" + time + ", \"m\", ";
    append_json_string(marker, kCapMarker);
    marker += "]\n";
    if (auto ok = append(marker); !ok) return tl::unexpected(ok.error());
    return Status::kCapReached;
  }
  if (auto ok = append(line); !ok) return tl::unexpected(ok.error());
  return Status::kRecorded;
}

Result<Recording::Status> Recording::commit(size_t start) {
  size_ += buf_.size() - start;
  if (buf_.size() >= (executor_ ? kAsyncBufferBytes : kBufferBytes)) {
    if (auto ok = flush(); !ok) return tl::unexpected(ok.error());
  }
  return Status::kRecorded;
}

Result<void> Recording::append(std::string_view line) {
  buf_.append(line);
  size_ += line.size();
  if (buf_.size() >= (executor_ ? kAsyncBufferBytes : kBufferBytes)) return flush();
  return {};
}

Result<void> Recording::flush() {
  if (auto ok = usable(); !ok) return ok;
  if (buf_.empty()) return {};
  if (!executor_) {
    file_->write_out(buf_);
    buf_.clear();
    return usable();
  }
  std::string next;
  {
    std::lock_guard lock(file_->mu);
    if (!file_->spare.empty()) {
      next = std::move(file_->spare.back());
      file_->spare.pop_back();
    }
    file_->backlog += buf_.size();
  }
  std::swap(next, buf_);  // next: the events; buf_: an empty buffer, reused when there was one
  executor_([file = file_, data = std::make_shared<std::string>(std::move(next))]() {
    file->write_out(*data);
    file->written_back(std::move(*data));
  });
  return {};
}

bool Recording::backlogged() {
  std::lock_guard lock(file_->mu);
  if (file_->backlog < kMaxBacklog) return false;
  file_->want_drain = true;
  return true;
}

void Recording::set_drain_callback(std::function<void()> drained) {
  std::lock_guard lock(file_->mu);
  file_->drained = std::move(drained);
}

Result<void> Recording::finish_events() {
  for (Stream* s : {&out_, &in_}) {
    if (s->pending.empty() || capped_) continue;
    const std::string rest = std::move(s->pending);
    s->pending.clear();
    if (auto st = event(last_, s->type, rest); !st) return tl::unexpected(st.error());
  }
  return flush();
}

Result<Recording::Summary> Recording::close() {
  if (!executor_) {
    if (auto ok = usable(); !ok) {
      closed_ = true;
      return tl::unexpected(ok.error());
    }
    auto done = finish_events();
    closed_ = true;
    if (!done) return tl::unexpected(done.error());
    return file_->finish();
  }
  std::promise<Result<Summary>> promise;
  auto future = promise.get_future();
  close_async([&promise](Result<Summary> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Recording::close_async(std::function<void(Result<Summary>)> done) {
  if (auto ok = usable(); !ok) {
    closed_ = true;
    done(tl::unexpected(ok.error()));
    return;
  }
  auto finished = finish_events();
  closed_ = true;
  if (!finished) {
    done(tl::unexpected(finished.error()));
    return;
  }
  {
    std::lock_guard lock(file_->mu);
    file_->drained = nullptr;  // nobody waits for a drain any more
  }
  if (!executor_) {
    done(file_->finish());
    return;
  }
  executor_([file = file_, done = std::move(done)]() { done(file->finish()); });
}

}  // namespace touchgate::audit
