// Trust boundary: audit segment files read back from disk (any bytes, any length).
#include "audit/query.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "audit/verify.h"

namespace touchgate::audit {
namespace {

constexpr size_t kChunk = 1u << 20;
constexpr size_t kTailChunk = 64u * 1024;

// days_from_civil: days since 1970-01-01 of a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool leap_year(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : kDays[m - 1];
}

// digits reads exactly n decimal digits at s[pos].
bool digits(std::string_view s, size_t pos, size_t n, unsigned* out) {
  if (pos + n > s.size()) return false;
  unsigned v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  *out = v;
  return true;
}

Result<TimePoint> bad_time(std::string_view text) {
  return fail("bad_time",
              fmt::format("not a time: \"{}\" (use e.g. 2h, 30m, 7d, 2026-11-30 or "
                          "2026-11-30T10:00:00Z)",
                          text));
}

// Value of a field for comparisons: the raw bytes, unescaped into scratch only when needed.
std::string_view value_of(const Field& f, std::string* scratch) {
  if (f.kind != ValueKind::kString || f.raw.find('\\') == std::string_view::npos) return f.raw;
  *scratch = unescape_string(f.raw);
  return *scratch;
}

// slot returns the counter of key in m, adding it when there is room, else nullptr (and counts
// the record in *more).
template <typename Map>
typename Map::mapped_type* slot(Map& m, std::string_view key, size_t max_keys, uint64_t* more) {
  auto it = m.find(key);
  if (it != m.end()) return &it->second;
  if (m.size() >= max_keys) {
    ++*more;
    return nullptr;
  }
  return &m.emplace(std::string(key), typename Map::mapped_type{}).first->second;
}

}  // namespace

Result<void> check_audit_dir(const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return fail("audit_dir_unreadable",
                fmt::format("{}: cannot read the audit directory: {}", dir.string(),
                            std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return fail("audit_dir_unreadable", fmt::format("{}: not a directory", dir.string()));
  }
  if (::access(dir.c_str(), R_OK | X_OK) != 0) {
    return fail("audit_dir_unreadable",
                fmt::format("{}: cannot read the audit directory: {}", dir.string(),
                            std::strerror(errno)));
  }
  return {};
}

// -- Cursor ----------------------------------------------------------------------------------

Cursor::Cursor(std::filesystem::path dir) : dir_(std::move(dir)), buf_(kMaxLine + 1 + kChunk) {
  parsed_.fields.reserve(32);
}

Cursor::~Cursor() {
  close_current();
}

uint64_t Cursor::skipped_total() const {
  uint64_t n = 0;
  for (const auto& s : skipped_) n += s.count;
  return n;
}

void Cursor::seek(Position at) {
  close_current();
  segment_ = std::move(at.segment);
  offset_ = segment_.empty() ? 0 : at.offset;
  line_ = 0;
  lines_known_ = offset_ == 0;
}

void Cursor::close_current() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  start_ = end_ = scan_ = 0;
  too_long_ = false;
}

void Cursor::skip(std::string_view why) {
  if (skipped_.empty() || skipped_.back().file != segment_) {
    skipped_.push_back(SkippedLines{segment_, 0, lines_known_ ? line_ : 0, std::string(why)});
  }
  ++skipped_.back().count;
}

bool Cursor::open_current() {
  while (true) {
    if (segment_.empty()) {
      const auto segments = list_segments(dir_);
      if (segments.empty()) return false;
      segment_ = segments.front();
      offset_ = 0;
      line_ = 0;
      lines_known_ = true;
    }
    fd_ = ::open((dir_ / segment_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ >= 0) {
      ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
      if (offset_ > 0 && ::lseek(fd_, static_cast<off_t>(offset_), SEEK_SET) < 0) offset_ = 0;
      ++segments_;
      return true;
    }
    const int err = errno;
    // A segment that cannot be opened is reported once and passed over.
    const auto segments = list_segments(dir_);
    auto next = std::upper_bound(segments.begin(), segments.end(), segment_);
    if (skipped_.empty() || skipped_.back().file != segment_) {
      skipped_.push_back(SkippedLines{segment_, 0, 0,
                                      fmt::format("cannot open: {}", std::strerror(err))});
    }
    if (next == segments.end()) return false;
    segment_ = *next;
    offset_ = 0;
    line_ = 0;
    lines_known_ = true;
  }
}

bool Cursor::deliver(std::string_view text, const RecordFn& fn) {
  if (const char* why = parse_line(text, &parsed_)) {
    skip(why);
    return true;
  }
  ++records_;
  return fn(RecordRef{parsed_, text, segment_, lines_known_ ? line_ : 0});
}

bool Cursor::drain(const RecordFn& fn, bool* stopped) {
  char* const buf = buf_.data();
  while (true) {
    while (true) {
      const char* nl = static_cast<const char*>(std::memchr(buf + scan_, '\n', end_ - scan_));
      if (nl == nullptr) {
        scan_ = end_;
        if (too_long_ || end_ - start_ > kMaxLine) {
          too_long_ = true;  // drop what is held of it; its end is still to come
          start_ = end_ = scan_ = 0;
        }
        break;
      }
      const size_t at = static_cast<size_t>(nl - buf);
      const std::string_view text(buf + start_, at - start_);
      start_ = scan_ = at + 1;
      ++line_;
      if (too_long_) {
        too_long_ = false;
        skip(fmt::format("line longer than {} bytes", kMaxLine));
        continue;
      }
      bytes_ += text.size() + 1;
      if (!deliver(text, fn)) {
        *stopped = true;
        return false;
      }
    }
    if (start_ > 0 && buf_.size() - end_ < kChunk) {
      std::memmove(buf, buf + start_, end_ - start_);
      end_ -= start_;
      scan_ -= start_;
      start_ = 0;
    }
    const ssize_t n = ::read(fd_, buf + end_, buf_.size() - end_);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    end_ += static_cast<size_t>(n);
    offset_ += static_cast<uint64_t>(n);
  }
}

bool Cursor::read(const RecordFn& fn) {
  while (true) {
    if (fd_ < 0 && !open_current()) return true;  // no segment (yet)
    bool stopped = false;
    drain(fn, &stopped);
    if (stopped) return false;
    const auto segments = list_segments(dir_);
    const auto next = std::upper_bound(segments.begin(), segments.end(), segment_);
    if (next == segments.end()) return true;  // at the end of the log for now
    // The writer finished this segment before it created the next: read what it added since.
    drain(fn, &stopped);
    if (stopped) return false;
    if (too_long_) {
      ++line_;
      skip(fmt::format("line longer than {} bytes", kMaxLine));
    } else if (end_ > start_) {
      ++line_;
      skip("segment ends in an incomplete line");
    }
    close_current();
    segment_ = *next;
    offset_ = 0;
    line_ = 0;
    lines_known_ = true;
  }
}

// -- the last N lines ------------------------------------------------------------------------

Position find_tail_start(const std::filesystem::path& dir, uint64_t n) {
  const auto segments = list_segments(dir);
  if (segments.empty()) return {};
  std::vector<char> buf(kTailChunk);
  uint64_t need = n;
  for (size_t i = segments.size(); i-- > 0;) {
    const int fd = ::open((dir / segments[i]).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      continue;
    }
    // Newlines met going backwards. The first ends the last complete line (what follows it is
    // a line still being written); the (need+1)-th ends the line before the N-th last.
    uint64_t newlines = 0;
    uint64_t pos = static_cast<uint64_t>(st.st_size);
    std::optional<uint64_t> found;
    while (pos > 0 && !found) {
      const size_t len = static_cast<size_t>(std::min<uint64_t>(pos, buf.size()));
      pos -= len;
      ssize_t got = ::pread(fd, buf.data(), len, static_cast<off_t>(pos));
      if (got < 0 && errno == EINTR) got = ::pread(fd, buf.data(), len, static_cast<off_t>(pos));
      if (got != static_cast<ssize_t>(len)) break;
      for (size_t j = len; j-- > 0;) {
        if (buf[j] != '\n') continue;
        ++newlines;
        if (need == 0 || newlines == need + 1) {
          found = pos + j + 1;
          break;
        }
      }
    }
    ::close(fd);
    if (found) return Position{segments[i], *found};
    if (need == 0) return Position{segments[i], 0};
    const uint64_t lines = newlines;  // complete lines in this segment
    if (lines >= need) return Position{segments[i], 0};
    need -= lines;
  }
  return Position{segments.front(), 0};
}

// -- following -------------------------------------------------------------------------------

void follow(Cursor& cursor, const RecordFn& fn, const std::atomic<bool>& stop,
            std::chrono::milliseconds interval, const std::function<void()>& flushed) {
  constexpr auto kStep = std::chrono::milliseconds(50);
  while (!stop.load()) {
    bool delivered = false;
    const bool more = cursor.read([&](const RecordRef& r) {
      delivered = true;
      return fn(r);
    });
    if (delivered && flushed) flushed();
    if (!more) return;
    for (auto slept = std::chrono::milliseconds(0); slept < interval && !stop.load();
         slept += kStep) {
      std::this_thread::sleep_for(std::min(kStep, interval - slept));
    }
  }
}

// -- times -----------------------------------------------------------------------------------

Result<TimePoint> parse_time_spec(std::string_view text, TimePoint now) {
  if (text.empty()) return bad_time(text);
  // A duration back from now: digits and one unit.
  const char unit = text.back();
  if (text.size() >= 2 && std::string_view("smhdw").find(unit) != std::string_view::npos &&
      std::all_of(text.begin(), text.end() - 1, [](char c) { return c >= '0' && c <= '9'; })) {
    uint64_t count = 0;
    if (!parse_u64(text.substr(0, text.size() - 1), &count)) return bad_time(text);
    static constexpr uint64_t kUnit[] = {1, 60, 3600, 86400, 7 * 86400};
    const uint64_t seconds_per = kUnit[std::string_view("smhdw").find(unit)];
    constexpr uint64_t kMaxSeconds = 200ull * 366 * 86400;  // two centuries back at most
    if (count > kMaxSeconds / seconds_per) return bad_time(text);
    return now - std::chrono::seconds(static_cast<int64_t>(count * seconds_per));
  }
  // RFC 3339, or a date alone.
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(text, 0, 4, &year) || text.size() < 10 || text[4] != '-' ||
      !digits(text, 5, 2, &month) || text[7] != '-' || !digits(text, 8, 2, &day))
    return bad_time(text);
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
    return bad_time(text);
  int64_t offset_seconds = 0;
  int64_t millis = 0;
  if (text.size() > 10) {
    if ((text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(text, 11, 2, &hour) ||
        text.size() < 19 || text[13] != ':' || !digits(text, 14, 2, &minute) ||
        text[16] != ':' || !digits(text, 17, 2, &second))
      return bad_time(text);
    if (hour > 23 || minute > 59 || second > 59) return bad_time(text);
    size_t pos = 19;
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      const size_t from = pos;
      int64_t scale = 100;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        millis += (text[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == from) return bad_time(text);
    }
    const std::string_view zone = text.substr(pos);
    if (zone == "Z" || zone == "z") {
      offset_seconds = 0;
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
      unsigned oh = 0, om = 0;
      if (!digits(zone, 1, 2, &oh) || !digits(zone, 4, 2, &om) || oh > 23 || om > 59)
        return bad_time(text);
      offset_seconds = (zone[0] == '+' ? 1 : -1) * static_cast<int64_t>(oh * 3600 + om * 60);
    } else {
      return bad_time(text);
    }
  }
  const int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 +
                          minute * 60 + second - offset_seconds;
  return TimePoint(std::chrono::seconds(seconds)) + std::chrono::milliseconds(millis);
}

std::optional<TimePoint> parse_record_time(std::string_view ts) {
  // "2026-11-30T10:00:00.123Z": parse_line checked the shape.
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  if (ts.size() != 24 || !digits(ts, 0, 4, &y) || !digits(ts, 5, 2, &mo) ||
      !digits(ts, 8, 2, &d) || !digits(ts, 11, 2, &h) || !digits(ts, 14, 2, &mi) ||
      !digits(ts, 17, 2, &s) || !digits(ts, 20, 3, &ms))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  const int64_t seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
  return TimePoint(std::chrono::seconds(seconds)) + std::chrono::milliseconds(ms);
}

// -- filters ---------------------------------------------------------------------------------

bool field_equals(const ParsedLine& p, std::string_view name, std::string_view value) {
  const Field* f = p.find(name);
  if (f == nullptr) return false;
  if (f->kind != ValueKind::kString || f->raw.find('\\') == std::string_view::npos)
    return f->raw == value;
  return unescape_string(f->raw) == value;
}

std::string field_text(const ParsedLine& p, std::string_view name) {
  const Field* f = p.find(name);
  if (f == nullptr) return {};
  return f->kind == ValueKind::kString ? unescape_string(f->raw) : std::string(f->raw);
}

bool Filter::empty() const {
  return !user && !target && events.empty() && !outcome && !conn && !conn_number && !since &&
         !until;
}

bool Filter::matches(const ParsedLine& p) const {
  if (!events.empty() && std::find(events.begin(), events.end(), p.event) == events.end())
    return false;
  if (conn && !field_equals(p, "conn", *conn)) return false;
  if (conn_number) {
    const Field* f = p.find("conn");
    if (f == nullptr || f->raw.size() <= conn_number->size() ||
        !f->raw.ends_with(*conn_number) ||
        f->raw[f->raw.size() - conn_number->size() - 1] != '-')
      return false;
  }
  if (user && !field_equals(p, "user", *user)) return false;
  if (target && !field_equals(p, "target", *target)) return false;
  if (outcome && !field_equals(p, "outcome", *outcome)) return false;
  if (since || until) {
    const auto t = parse_record_time(p.ts);
    if (!t) return false;
    if (since && *t < *since) return false;
    if (until && *t >= *until) return false;
  }
  return true;
}

// -- stats -----------------------------------------------------------------------------------

Stats::Stats(size_t max_keys) : max_keys_(max_keys) {}

void Stats::add(const ParsedLine& p) {
  if (records == 0) first_seq = p.seq;
  last_seq = p.seq;
  ++records;
  if (first_ts.empty() || p.ts < first_ts) first_ts.assign(p.ts);
  if (last_ts.empty() || p.ts > last_ts) last_ts.assign(p.ts);
  if (auto* n = slot(events, p.event, max_keys_, &more_events)) ++*n;

  const Field* outcome = p.find("outcome");
  const bool allow = outcome != nullptr && outcome->raw == "allow";
  const bool deny = outcome != nullptr && outcome->raw == "deny";
  const auto count = [&](Stats::Counts* c) {
    if (c == nullptr) return;
    ++c->records;
    if (allow) ++c->allow;
    if (deny) ++c->deny;
  };
  const Field* user = p.find("user");
  if (user != nullptr) count(slot(users, value_of(*user, &scratch_), max_keys_, &more_users));
  if (const Field* target = p.find("target"))
    count(slot(targets, value_of(*target, &scratch_), max_keys_, &more_targets));
  if (deny) {
    const Field* reason = p.find("reason");
    const std::string_view why =
        reason != nullptr ? value_of(*reason, &scratch_) : std::string_view("(none)");
    if (auto* n = slot(deny_reasons, why, max_keys_, &more_reasons)) ++*n;
  }
  if (p.event == "suspected_clone") {
    std::pair<std::string, std::string> key{field_text(p, "key_fp"), field_text(p, "user")};
    auto it = clones.find(key);
    if (it != clones.end()) {
      ++it->second;
    } else if (clones.size() >= max_keys_) {
      ++more_clones;
    } else {
      clones.emplace(std::move(key), 1);
    }
  }
}

}  // namespace touchgate::audit
