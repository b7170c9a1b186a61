// Trust boundary: audit segment files and audit.head read back from disk.
#include "audit/verify.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "audit/checkpoint.h"
#include "audit/record.h"
#include "ssh/digest.h"
#include "ssh/sshsig.h"

namespace touchgate::audit {
namespace {

constexpr size_t kChunk = 256 * 1024;

bool hash_matches(std::string_view hashed, std::string_view hash_hex) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint8_t md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(hashed.data()), hashed.size(), md);
  char hex[64];
  for (size_t i = 0; i < 32; ++i) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 15];
  }
  return hash_hex == std::string_view(hex, 64);
}

}  // namespace

bool VerifyReport::clean() const {
  if (suppressed > 0) return false;
  return std::none_of(findings.begin(), findings.end(),
                      [](const Finding& f) { return f.tampering; });
}

bool VerifyReport::has(std::string_view kind) const {
  return first(kind) != nullptr;
}

const Finding* VerifyReport::first(std::string_view kind) const {
  for (const auto& f : findings)
    if (f.kind == kind) return &f;
  return nullptr;
}

std::string segment_name(uint64_t first_seq) {
  return fmt::format("audit-{:020}.jsonl", first_seq);
}

bool parse_segment_name(std::string_view name, uint64_t* first_seq) {
  if (name.size() != 32 || !name.starts_with("audit-") || !name.ends_with(".jsonl")) return false;
  const auto digits = name.substr(6, 20);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  return parse_u64(digits, first_seq) && *first_seq > 0;
}

std::vector<std::string> list_segments(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    uint64_t seq = 0;
    const std::string name = e.path().filename().string();
    if (parse_segment_name(name, &seq)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());  // fixed width: name order is seq order
  return out;
}

ChainVerifier::ChainVerifier(std::optional<ssh::PublicKey> key) : key_(std::move(key)) {
  report_.key_pinned = key_.has_value();
  parsed_.fields.reserve(32);
}

void ChainVerifier::expect_head(uint64_t seq, std::string hash) {
  head_expected_ = true;
  head_seq_wanted_ = seq;
  head_hash_wanted_ = std::move(hash);
}

void ChainVerifier::add(std::string_view kind, uint64_t seq, std::string message, bool tampering) {
  if (report_.findings.size() >= kMaxFindings) {
    ++report_.suppressed;
    return;
  }
  report_.findings.push_back(
      Finding{std::string(kind), file_, line_no_, seq, std::move(message), tampering});
}

void ChainVerifier::begin_segment(std::string_view name, bool last) {
  prev_file_ = std::move(file_);
  file_ = std::string(name);
  last_segment_ = last;
  line_no_ = 0;
  first_in_segment_ = true;
  ++segment_index_;
  ++report_.segments;
}

void ChainVerifier::line(std::string_view text, bool complete, bool too_long) {
  ++line_no_;
  report_.bytes += text.size() + (complete ? 1 : 0);
  if (too_long) {
    add("malformed", 0, fmt::format("line longer than {} bytes", kMaxLine));
    chain_known_ = false;
    return;
  }
  if (!complete) {
    if (last_segment_) {
      add("torn_tail", 0,
          fmt::format("last line is incomplete ({} bytes, no newline)", text.size()), false);
    } else {
      add("malformed", 0, "segment ends in an incomplete line");
      chain_known_ = false;
    }
    return;
  }
  if (const char* why = parse_line(text, &parsed_)) {
    add("malformed", 0, why);
    chain_known_ = false;
    return;
  }
  const ParsedLine& p = parsed_;
  ++report_.records;
  const bool intact = hash_matches(p.hashed, p.hash);
  if (!intact) add("modified", p.seq, fmt::format("hash mismatch at seq {}", p.seq));
  if (intact && p.event == "recording_failed") {
    if (++report_.recordings_failed <= kMaxIncompleteFindings) {
      auto text = [&](const char* name, const char* none) {
        const Field* f = p.find(name);
        return f != nullptr && f->kind == ValueKind::kString ? unescape_string(f->raw)
                                                             : std::string(none);
      };
      add("recording_incomplete", p.seq,
          fmt::format("the recording {} could not be written whole: {}",
                      text("file", "(no file named)"), text("message", "(no message)")),
          false);
    }
  }
  if (intact && p.event == "recording_closed") {
    const Field* file = p.find("file");
    const Field* sha = p.find("sha256");
    const Field* size = p.find("size");
    uint64_t bytes = 0;
    if (file != nullptr && sha != nullptr && size != nullptr && file->kind == ValueKind::kString &&
        sha->kind == ValueKind::kString && size->kind == ValueKind::kInteger &&
        parse_u64(size->raw, &bytes)) {
      if (recordings_.size() < kMaxRecordings) {
        recordings_.push_back(RecordingRef{unescape_string(file->raw), unescape_string(sha->raw),
                                           bytes, p.seq, file_, line_no_});
      } else if (!recordings_overflow_) {
        recordings_overflow_ = true;
        add("recordings_unchecked", p.seq,
            fmt::format("more than {} recordings: those after seq {} are not checked",
                        kMaxRecordings, p.seq),
            false);
      }
    }
  }

  const bool first_record = last_hash_.empty() && last_seq_ == 0;
  const uint64_t expected = last_seq_ + 1;
  bool check_link = chain_known_;
  if (p.seq < expected) {
    if (gap_finding_ < report_.findings.size() && p.seq >= gap_from_ && p.seq <= gap_to_) {
      auto& f = report_.findings[gap_finding_];
      f.kind = "reordered";
      f.file = file_;
      f.line = line_no_;
      f.seq = p.seq;
      f.message = fmt::format("seq {} appears after seq {}", p.seq, last_seq_);
      gap_finding_ = SIZE_MAX;
    } else {
      add("inserted", p.seq, fmt::format("seq {} appears again after seq {}", p.seq, last_seq_));
    }
    return;  // an out-of-order record does not move the chain
  }
  if (p.seq > expected) {
    if (expected == p.seq - 1) {
      add("removed", expected, fmt::format("seq {} missing", expected));
    } else {
      add("removed", expected, fmt::format("seq {}..{} missing", expected, p.seq - 1));
    }
    gap_from_ = expected;
    gap_to_ = p.seq - 1;
    gap_finding_ = report_.findings.size() - 1;
    check_link = false;
  }
  if (check_link) {
    const std::string_view want = first_record ? kGenesisHash : std::string_view(last_hash_);
    if (p.prev != want)
      add("bad_link", p.seq,
          fmt::format("prev of seq {} is not the hash of seq {}", p.seq, last_seq_));
  }

  if (first_in_segment_) {
    first_in_segment_ = false;
    if (file_ != segment_name(p.seq))
      add("bad_segment", p.seq, fmt::format("segment starts at seq {}, not as named", p.seq));
    if (segment_index_ > 1) {
      const Field* ps = p.find("prev_segment");
      if (p.event != "segment_start" || !ps || ps->kind != ValueKind::kString)
        add("bad_segment", p.seq, "segment does not begin with segment_start");
      else if (unescape_string(ps->raw) != prev_file_)
        add("bad_segment", p.seq, "prev_segment does not name the previous segment");
    }
  } else if (p.event == "segment_start") {
    add("bad_segment", p.seq, "segment_start inside a segment");
  }
  if (p.event == "checkpoint") check_checkpoint(p);
  if (head_expected_ && p.seq == head_seq_wanted_) head_hash_seen_ = std::string(p.hash);

  last_seq_ = p.seq;
  last_hash_.assign(p.hash);
  chain_known_ = true;
  report_.last_seq = last_seq_;
}

void ChainVerifier::check_checkpoint(const ParsedLine& p) {
  const Field* hs = p.find("head_seq");
  const Field* h = p.find("head");
  const Field* fp = p.find("key_fp");
  const Field* sig = p.find("sig");
  uint64_t head_seq = 0;
  if (!hs || !h || !fp || !sig || hs->kind != ValueKind::kInteger ||
      !parse_u64(hs->raw, &head_seq) || h->kind != ValueKind::kString ||
      fp->kind != ValueKind::kString || sig->kind != ValueKind::kString) {
    add("bad_checkpoint", p.seq, "checkpoint fields missing or of the wrong type");
    return;
  }
  if (head_seq != last_seq_ || h->raw != last_hash_)
    add("bad_checkpoint", p.seq,
        fmt::format("checkpoint names seq {}, not the record before it", head_seq));
  const std::string key_fp = unescape_string(fp->raw);
  std::optional<ssh::PublicKey> signer = key_;
  if (!signer) {
    auto blob = ssh::base64_decode(sig->raw);
    if (blob) {
      if (auto s = ssh::parse_sshsig(*blob)) {
        if (auto k = ssh::parse_public_key(s->public_key)) signer = *k;
      }
    }
    if (!signer) {
      add("bad_checkpoint", p.seq, "sig carries no usable key");
      return;
    }
  }
  if (signer->fingerprint() != key_fp) {
    add("bad_checkpoint", p.seq, "key_fp is not the audit key");
    return;
  }
  if (auto v = verify_checkpoint(*signer, head_seq, h->raw, sig->raw); !v) {
    add("bad_checkpoint", p.seq, v.error().message);
    return;
  }
  ++report_.checkpoints;
  last_checkpoint_seq_ = p.seq;
}

void ChainVerifier::finish() {
  file_.clear();
  line_no_ = 0;
  if (head_expected_) {
    if (last_seq_ < head_seq_wanted_) {
      add("truncated", head_seq_wanted_,
          fmt::format("audit.head names checkpoint seq {} but the log ends at seq {}",
                      head_seq_wanted_, last_seq_));
    } else if (head_hash_seen_ != head_hash_wanted_) {
      add("bad_head", head_seq_wanted_,
          fmt::format("seq {} is not the checkpoint audit.head names", head_seq_wanted_));
    }
  }
  if (last_seq_ > last_checkpoint_seq_) {
    report_.unsigned_tail = last_seq_ - last_checkpoint_seq_;
    add("unsigned_tail", last_checkpoint_seq_ + 1,
        fmt::format("{} records after the last checkpoint", report_.unsigned_tail), false);
  }
  report_.last_hash = last_hash_;
}

std::optional<std::pair<uint64_t, std::string>> read_head(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::string magic, seq_line, hash_line;
  if (!std::getline(in, magic) || !std::getline(in, seq_line) || !std::getline(in, hash_line))
    return std::nullopt;
  if (magic != "touchgate-audit-head-v1" || !seq_line.starts_with("seq: ") ||
      !hash_line.starts_with("hash: "))
    return std::nullopt;
  uint64_t seq = 0;
  if (!parse_u64(std::string_view(seq_line).substr(5), &seq)) return std::nullopt;
  std::string hash = hash_line.substr(6);
  if (hash.size() != 64) return std::nullopt;
  return std::make_pair(seq, hash);
}

VerifyReport verify_directory(const std::filesystem::path& dir,
                              const std::optional<ssh::PublicKey>& key) {
  ChainVerifier v(key);
  const auto head_file = dir / "audit.head";
  std::error_code ec;
  if (std::filesystem::exists(head_file, ec)) {
    if (auto head = read_head(head_file)) {
      v.expect_head(head->first, head->second);
    } else {
      v.report().findings.push_back(
          Finding{"bad_head", "audit.head", 0, 0, "audit.head is unreadable", true});
    }
  }
  const auto segments = list_segments(dir);
  std::vector<char> buf(kMaxLine + 1 + kChunk);
  for (size_t i = 0; i < segments.size(); ++i) {
    v.begin_segment(segments[i], i + 1 == segments.size());
    const int fd = ::open((dir / segments[i]).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      v.line({}, true, false);  // reported as malformed
      continue;
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    size_t start = 0, end = 0, scan = 0;
    bool skipping = false;  // inside a line longer than kMaxLine
    while (true) {
      if (start > 0 && (buf.size() - end) < kChunk) {
        std::memmove(buf.data(), buf.data() + start, end - start);
        end -= start;
        scan -= start;
        start = 0;
      }
      const ssize_t n = ::read(fd, buf.data() + end, buf.size() - end);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      end += static_cast<size_t>(n);
      while (true) {
        const char* nl = static_cast<const char*>(std::memchr(buf.data() + scan, '\n', end - scan));
        if (!nl) {
          scan = end;
          if (end - start > kMaxLine) {
            skipping = true;
            start = end = scan = 0;
          }
          break;
        }
        const size_t at = static_cast<size_t>(nl - buf.data());
        if (skipping) {
          v.line({}, true, true);
          skipping = false;
        } else {
          v.line(std::string_view(buf.data() + start, at - start), true);
        }
        start = scan = at + 1;
      }
    }
    ::close(fd);
    if (skipping) {
      v.line({}, false, true);
    } else if (end > start) {
      v.line(std::string_view(buf.data() + start, end - start), false);
    }
  }
  v.finish();
  const std::vector<RecordingRef> recordings = v.recordings();
  VerifyReport report = v.take();
  verify_recordings(recordings, &report);
  return report;
}

void verify_recordings(const std::vector<RecordingRef>& recordings, VerifyReport* report) {
  std::vector<unsigned char> buf(kChunk);
  const auto add = [report](const RecordingRef& r, std::string kind, std::string message) {
    if (report->findings.size() >= kMaxFindings) {
      ++report->suppressed;
      return;
    }
    report->findings.push_back(Finding{std::move(kind), r.segment, r.line, r.seq,
                                       std::move(message), true});
  };
  for (const auto& r : recordings) {
    ++report->recordings;
    const int fd = ::open(r.file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      add(r, "recording_missing",
          fmt::format("recording {} (seq {}) cannot be read: {}", r.file, r.seq,
                      std::strerror(errno)));
      continue;
    }
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    bool failed = ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1;
    uint64_t size = 0;
    while (!failed) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) failed = true;
      if (n <= 0) break;
      if (EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n)) != 1) failed = true;
      size += static_cast<uint64_t>(n);
    }
    ::close(fd);
    unsigned char digest[SHA256_DIGEST_LENGTH] = {};
    if (!failed && EVP_DigestFinal_ex(ctx.get(), digest, nullptr) != 1) failed = true;
    if (failed) {
      add(r, "recording_missing", fmt::format("recording {} (seq {}) could not be read to its end",
                                              r.file, r.seq));
    } else if (size != r.size || to_hex(digest) != r.sha256) {
      add(r, "recording_modified",
          fmt::format("recording {} does not match seq {}: {} bytes, SHA-256 {} (recorded: {} "
                      "bytes, {})",
                      r.file, r.seq, size, to_hex(digest), r.size, r.sha256));
    }
  }
}

}  // namespace touchgate::audit
