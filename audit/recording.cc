// Trust boundary: writes bytes a session's peers sent; only valid JSON reaches the file.
#include "audit/recording.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "audit/record.h"
#include "ssh/text.h"

namespace touchgate::audit {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;  // flush when the buffer holds this much
constexpr size_t kChunkBytes = 16 * 1024;   // one event holds at most this many input bytes
// Room kept below the cap for the marker event: "[<time>, "m", "<kCapMarker>"]\n" is < 100 bytes.
constexpr uint64_t kMarkerReserve = 128;

tl::unexpected<Error> io_error(const std::string& what, const std::string& path) {
  return fail("recording_io", "recording " + path + ": " + what + ": " + std::strerror(errno));
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

Recording::Recording(int fd, std::string path, uint64_t max_bytes)
    : fd_(fd),
      path_(std::move(path)),
      max_bytes_(max_bytes),
      sha_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {}

Recording::~Recording() {
  if (!closed_) {
    (void)flush();
    ::close(fd_);
  }
}

Result<std::unique_ptr<Recording>> Recording::create(const std::string& path, const Header& header,
                                                     uint64_t max_bytes) {
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
  std::unique_ptr<Recording> r(new Recording(fd, path, max_bytes));
  if (!r->sha_ || EVP_DigestInit_ex(r->sha_.get(), EVP_sha256(), nullptr) != 1) {
    return fail("recording_io", "recording " + path + ": SHA-256 unavailable");
  }
  if (auto ok = r->append(line); !ok) return tl::unexpected(ok.error());
  if (auto ok = r->flush(); !ok) return tl::unexpected(ok.error());
  return r;
}

Result<void> Recording::usable() const {
  if (closed_) return fail("recording_closed", "recording " + path_ + " is closed");
  if (!failed_.empty()) return fail("recording_io", failed_);
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
  const size_t n = buf_.size() - start;
  size_ += n;
  if (EVP_DigestUpdate(sha_.get(), buf_.data() + start, n) != 1) {
    failed_ = "recording " + path_ + ": SHA-256 failed";
    return fail("recording_io", failed_);
  }
  if (buf_.size() >= kBufferBytes) {
    if (auto ok = flush(); !ok) return tl::unexpected(ok.error());
  }
  return Status::kRecorded;
}

Result<void> Recording::append(std::string_view line) {
  buf_.append(line);
  size_ += line.size();
  if (EVP_DigestUpdate(sha_.get(), line.data(), line.size()) != 1) {
    failed_ = "recording " + path_ + ": SHA-256 failed";
    return fail("recording_io", failed_);
  }
  if (buf_.size() >= kBufferBytes) return flush();
  return {};
}

Result<void> Recording::flush() {
  if (auto ok = usable(); !ok) return ok;
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto e = io_error("write failed", path_);
      failed_ = e.value().message;
      buf_.clear();
      return e;
    }
    done += static_cast<size_t>(n);
  }
  buf_.clear();
  return {};
}

Result<Recording::Summary> Recording::close() {
  if (auto ok = usable(); !ok) {
    if (!closed_) {
      ::close(fd_);
      closed_ = true;
    }
    return tl::unexpected(ok.error());
  }
  auto finish = [&]() -> Result<void> {
    for (Stream* s : {&out_, &in_}) {
      if (s->pending.empty() || capped_) continue;
      const std::string rest = std::move(s->pending);
      s->pending.clear();
      if (auto st = event(last_, s->type, rest); !st) return tl::unexpected(st.error());
    }
    if (auto ok = flush(); !ok) return ok;
    if (::fsync(fd_) != 0) return io_error("fsync failed", path_);
    return {};
  };
  auto done = finish();
  ::close(fd_);
  closed_ = true;
  if (!done) return tl::unexpected(done.error());

  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int rc = ::fsync(dfd);
    ::close(dfd);
    if (rc != 0) return io_error("fsync of its directory failed", path_);
  }

  std::array<uint8_t, 32> digest{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(sha_.get(), digest.data(), &len) != 1 || len != digest.size()) {
    return fail("recording_io", "recording " + path_ + ": SHA-256 failed");
  }
  return Summary{to_hex(digest), size_};
}

}  // namespace touchgate::audit
