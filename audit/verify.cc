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

// hash_to_end reads fd to its end through buf: its size and SHA-256. False on a read or digest
// error.
bool hash_to_end(int fd, std::vector<unsigned char>& buf, uint64_t* size,
                 unsigned char (&digest)[SHA256_DIGEST_LENGTH]) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return false;
  *size = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n)) != 1) return false;
    *size += static_cast<uint64_t>(n);
  }
  return EVP_DigestFinal_ex(ctx.get(), digest, nullptr) == 1;
}

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

std::string cut_file_name(std::string_view segment, uint64_t seq, unsigned n) {
  return n <= 1 ? fmt::format("{}.cut-{}", segment, seq)
                : fmt::format("{}.cut-{}.{}", segment, seq, n);
}

bool is_cut_file_name(std::string_view name) {
  const size_t at = name.find(".cut-");
  uint64_t seq = 0;
  if (at == std::string_view::npos || !parse_segment_name(name.substr(0, at), &seq)) return false;
  const auto rest = name.substr(at + 5);
  return !rest.empty() && rest.size() <= 40 && std::all_of(rest.begin(), rest.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.';
  });
}

std::vector<std::string> list_cut_files(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (is_cut_file_name(name)) out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

ChainVerifier::ChainVerifier(std::optional<ssh::PublicKey> key) : key_(std::move(key)) {
  report_.key_pinned = key_.has_value();
  parsed_.fields.reserve(32);
  tip_hash_.fill('0');  // the genesis hash
  history_.resize(kChainWindow);
}

void ChainVerifier::expect_head(uint64_t seq, std::string hash) {
  head_expected_ = true;
  head_seq_wanted_ = seq;
  head_hash_wanted_ = std::move(hash);
}

void ChainVerifier::add(std::string_view kind, uint64_t seq, std::string message, bool tampering) {
  add_at(kind, static_cast<uint32_t>(files_.size()), line_no_, seq, std::move(message), tampering);
}

void ChainVerifier::add_at(std::string_view kind, uint32_t file, uint64_t line, uint64_t seq,
                           std::string message, bool tampering) {
  if (report_.findings.size() >= kMaxFindings) {
    ++report_.suppressed;
    return;
  }
  // file is 1-based (0: no file).
  report_.findings.push_back(Finding{std::string(kind),
                                     file > 0 && file <= files_.size() ? files_[file - 1] : "",
                                     line, seq, std::move(message), tampering, std::nullopt});
}

std::string ChainVerifier::where(uint32_t file, uint64_t line) const {
  if (file == 0 || file > files_.size()) return fmt::format("line {}", line);
  return fmt::format("{}:{}", files_[file - 1], line);
}

void ChainVerifier::begin_segment(std::string_view name, bool last) {
  prev_file_ = std::move(file_);
  file_ = std::string(name);
  files_.push_back(file_);
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
    return;
  }
  if (!complete) {
    if (last_segment_) {
      add("torn_tail", 0,
          fmt::format("last line is incomplete ({} bytes, no newline)", text.size()), false);
    } else {
      add("malformed", 0, "segment ends in an incomplete line");
    }
    return;
  }
  if (const char* why = parse_line(text, &parsed_)) {
    add("malformed", 0, why);
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
  if (intact && p.event == "recovered") note_recovered(p);

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
  bool checkpoint_ok = false;
  if (p.event == "checkpoint") {
    ++checkpoint_records_;
    checkpoint_ok = intact && check_checkpoint(p);
  }
  if (head_expected_ && p.seq == head_seq_wanted_ && p.hash == head_hash_wanted_)
    head_found_ = true;
  chain(p, checkpoint_ok);
}

void ChainVerifier::note_recovered(const ParsedLine& p) {
  const auto text = [&](const char* name) {
    const Field* f = p.find(name);
    return f != nullptr && f->kind == ValueKind::kString ? unescape_string(f->raw) : std::string();
  };
  const auto number = [&](const char* name) {
    const Field* f = p.find(name);
    uint64_t v = 0;
    return f != nullptr && f->kind == ValueKind::kInteger && parse_u64(f->raw, &v) ? v : 0;
  };
  CutInfo cut{text("segment"),   number("dropped_bytes"), number("complete_lines"),
              text("side_file"), text("sha256"),          ""};
  std::string message =
      fmt::format("the writer cut {} bytes off the end of {} when it started", cut.bytes,
                  cut.segment.empty() ? std::string("(no segment named)") : cut.segment);
  if (cut.lines > 0)
    message += fmt::format(
        ", {} of them complete lines that did not parse or whose hash did not hold", cut.lines);
  message += cut.side_file.empty() ? std::string(" (not kept)")
                                   : fmt::format("; kept in {}", cut.side_file);
  const size_t at = report_.findings.size();
  add("recovered", p.seq, std::move(message), false);
  if (at == report_.findings.size()) return;  // over kMaxFindings
  report_.findings[at].cut = std::move(cut);
  if (!report_.findings[at].cut->side_file.empty() && cuts_.size() < kMaxCuts) cuts_.push_back(at);
}

// The chain check. Each record is known by its claimed hash (a modified record was reported
// already). While records follow one another (seq + 1, prev = the previous hash) they are placed
// at once. Anything else opens a window that holds the records until the shape is clear: every
// record in it has its predecessor, and kSettle records have followed one another since the
// last irregular one, on the branch the chain takes (or the window is full, or the log ended).
// resolve() then follows the links from the tip: where two records follow the same one (a fork),
// the branch that holds more valid checkpoints, else the one more records continue, else the
// first in the file, is the chain and the other is `inserted`;
// where no record follows, the next seq found is taken (the seqs between are `removed`); of the
// records so placed, those the longest run in file order leaves out are `reordered`.
namespace {
constexpr uint64_t kSettle = 8;
constexpr size_t kMaxGaps = 64;   // gaps remembered for records that turn up later
constexpr size_t kMaxTwins = 64;  // copies within one window weighed against their original
}  // namespace

const ChainVerifier::Placed* ChainVerifier::history(size_t back) const {
  if (back >= history_size_) return nullptr;
  return &history_[(history_next_ + kChainWindow - 1 - back) % kChainWindow];
}

void ChainVerifier::place(const Node& n, bool linked) {
  Placed& h = history_[history_next_];
  h.hash = n.hash;
  h.seq = n.seq;
  h.pos = n.pos;
  h.line = n.line;
  h.file = n.file;
  h.linked = linked;
  h.checkpoint = n.checkpoint;
  history_next_ = (history_next_ + 1) % kChainWindow;
  if (history_size_ < kChainWindow) ++history_size_;
  tip_seq_ = n.seq;
  tip_hash_ = n.hash;
  tip_set_ = true;
}

void ChainVerifier::chain(const ParsedLine& p, bool checkpoint_ok) {
  const uint64_t pos = pos_++;
  if (window_.empty() && p.seq == tip_seq_ + 1 &&
      std::memcmp(p.prev.data(), tip_hash_.data(), 64) == 0) {
    // The common case: the next record. Straight to the history.
    Placed& h = history_[history_next_];
    std::memcpy(h.hash.data(), p.hash.data(), 64);
    h.seq = p.seq;
    h.pos = pos;
    h.line = line_no_;
    h.file = static_cast<uint32_t>(files_.size());
    h.linked = true;
    h.checkpoint = checkpoint_ok;
    history_next_ = (history_next_ + 1) % kChainWindow;
    if (history_size_ < kChainWindow) ++history_size_;
    tip_seq_ = p.seq;
    tip_hash_ = h.hash;
    tip_set_ = true;
    return;
  }
  Node n;
  std::memcpy(n.hash.data(), p.hash.data(), 64);
  std::memcpy(n.prev.data(), p.prev.data(), 64);
  n.seq = p.seq;
  n.pos = pos;
  n.line = line_no_;
  n.file = static_cast<uint32_t>(files_.size());
  n.checkpoint = checkpoint_ok;
  window_add(n);
}

void ChainVerifier::window_add(Node n) {
  if (window_.capacity() == 0) window_.reserve(2 * kChainWindow + 1);  // views stay valid
  const std::string_view hash(n.hash.data(), 64), prev(n.prev.data(), 64);
  // A record seen before (same hash): a copy. Which of the two is out of place is decided with
  // the rest of the window.
  if (auto it = by_hash_.find(hash); it != by_hash_.end()) {
    if (twins_.size() < kMaxTwins) {
      twins_.push_back(Twin{it->second, n.pos, n.line, n.file});
    } else {
      const Node& o = window_[it->second];
      add_at("inserted", n.file, n.line, n.seq,
             fmt::format("seq {} appears again (a copy of {})", n.seq, where(o.file, o.line)));
    }
    run_ = 0;
    return;
  }
  if (tip_set_ && std::string_view(tip_hash_.data(), 64) == hash) {
    const Placed* t = history(0);
    add_at("inserted", n.file, n.line, n.seq,
           fmt::format("seq {} appears again (a copy of {})", n.seq,
                       t ? where(t->file, t->line) : std::string("an earlier record")));
    return;
  }
  // Its predecessor: in the window, the tip, or further back in the history (a fork).
  int32_t parent = kNoParent;
  if (auto it = by_hash_.find(prev); it != by_hash_.end()) {
    parent = static_cast<int32_t>(it->second);
  } else if (std::string_view(tip_hash_.data(), 64) == prev) {
    parent = kTipParent;
  } else {
    size_t back = SIZE_MAX;
    for (size_t i = 1; i < history_size_; ++i) {
      if (std::memcmp(history(i)->hash.data(), n.prev.data(), 64) == 0) {
        back = i;
        break;
      }
    }
    if (back != SIZE_MAX) {
      const Placed* next = history(back - 1);  // what the chain took after it
      if (std::memcmp(next->hash.data(), n.hash.data(), 64) == 0) {
        add_at("inserted", n.file, n.line, n.seq,
               fmt::format("seq {} appears again (a copy of {})", n.seq,
                           where(next->file, next->line)));
        return;
      }
      if (take_back(back)) parent = kTipParent;
    }
  }
  if (parent == kNoParent && n.seq <= tip_seq_) {
    stale(n);
    return;
  }
  n.parent = parent;
  const auto index = static_cast<uint32_t>(window_.size());
  window_.push_back(n);
  const Node& added = window_.back();
  by_hash_.emplace(std::string_view(added.hash.data(), 64), index);
  if (parent == kNoParent) orphans_.emplace(std::string_view(added.prev.data(), 64), index);
  // Records that came before their predecessor now have it.
  if (!orphans_.empty()) {
    auto [it, end] = orphans_.equal_range(std::string_view(added.hash.data(), 64));
    while (it != end) {
      window_[it->second].parent = static_cast<int32_t>(index);
      it = orphans_.erase(it);
    }
  }
  if (last_added_ >= 0 && parent == last_added_ &&
      n.seq == window_[static_cast<size_t>(last_added_)].seq + 1) {
    ++run_;
  } else {
    run_ = 0;
  }
  last_added_ = static_cast<int64_t>(index);
  if (window_.size() >= kChainWindow) {
    resolve(true);
  } else if (orphans_.empty() && run_ >= kSettle && run_ % kSettle == 0) {
    (void)resolve(false);
  }
}

bool ChainVerifier::take_back(size_t back) {
  // A record follows history entry `back`, which the chain already continued: take the entries
  // after it back into the window, unless something was reported about them.
  for (size_t i = 0; i < back; ++i)
    if (!history(i)->linked) return false;
  const auto first = static_cast<uint32_t>(window_.size());
  for (size_t i = back; i-- > 0;) {
    const Placed* h = history(i);
    Node n;
    n.hash = h->hash;
    n.prev.fill('0');  // not looked at: its parent is set
    n.seq = h->seq;
    n.pos = h->pos;
    n.line = h->line;
    n.file = h->file;
    n.checkpoint = h->checkpoint;
    n.parent = i + 1 == back ? kTipParent : static_cast<int32_t>(window_.size() - 1);
    const auto index = static_cast<uint32_t>(window_.size());
    window_.push_back(n);
    const std::string_view hash(window_.back().hash.data(), 64);
    by_hash_.emplace(hash, index);
    auto [it, end] = orphans_.equal_range(hash);
    while (it != end) {
      window_[it->second].parent = static_cast<int32_t>(index);
      it = orphans_.erase(it);
    }
  }
  const auto old_tip = static_cast<int32_t>(window_.size() - 1);
  for (uint32_t i = 0; i < first; ++i)
    if (window_[i].parent == kTipParent) window_[i].parent = old_tip;
  history_next_ = (history_next_ + kChainWindow - back) % kChainWindow;
  history_size_ -= back;
  const Placed* t = history(0);
  tip_seq_ = t->seq;
  tip_hash_ = t->hash;
  last_added_ = -1;
  run_ = 0;
  return true;
}

void ChainVerifier::stale(const Node& n) {
  // A record whose place on the chain was passed: it fills a gap reported earlier (out of
  // place), or it is one too many.
  for (auto g = gaps_.rbegin(); g != gaps_.rend(); ++g) {
    if (n.seq < g->from || n.seq > g->to) continue;
    const std::string file = n.file > 0 && n.file <= files_.size() ? files_[n.file - 1] : "";
    if (g->from == g->to && g->finding < report_.findings.size() &&
        report_.findings[g->finding].kind == "removed") {
      Finding& f = report_.findings[g->finding];
      f.kind = "reordered";
      f.file = file;
      f.line = n.line;
      f.seq = n.seq;
      f.message = fmt::format("seq {} appears after seq {}", n.seq, tip_seq_);
      gaps_.erase(std::next(g).base());
    } else {
      add_at("reordered", n.file, n.line, n.seq,
             fmt::format("seq {} (reported missing) appears after seq {}", n.seq, tip_seq_));
    }
    return;
  }
  add_at("inserted", n.file, n.line, n.seq,
         fmt::format("seq {} appears again after seq {}", n.seq, tip_seq_));
}

bool ChainVerifier::resolve(bool force) {
  const size_t n = window_.size();
  if (n == 0) return true;
  const auto slot = [n](int32_t parent) {
    return parent == kTipParent ? n : static_cast<size_t>(parent);
  };
  // Children lists (slot n: the tip's).
  std::vector<uint32_t> start(n + 2, 0);
  for (const Node& x : window_)
    if (x.parent != kNoParent) ++start[slot(x.parent) + 1];
  for (size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
  std::vector<uint32_t> kids(start[n + 1]);
  {
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < n; ++i)
      if (window_[i].parent != kNoParent)
        kids[fill[slot(window_[i].parent)]++] = static_cast<uint32_t>(i);
  }
  std::vector<uint32_t> roots;  // orphans, by seq then file order
  for (size_t i = 0; i < n; ++i)
    if (window_[i].parent == kNoParent) roots.push_back(static_cast<uint32_t>(i));
  std::sort(roots.begin(), roots.end(), [this](uint32_t a, uint32_t b) {
    return window_[a].seq != window_[b].seq ? window_[a].seq < window_[b].seq
                                            : window_[a].pos < window_[b].pos;
  });

  // What each subtree holds: valid checkpoints, records, and its first position in the file.
  struct Score {
    uint64_t checkpoints = 0;
    uint64_t records = 0;
    uint64_t first = 0;
  };
  std::vector<Score> score(n);
  std::vector<uint32_t> order;  // parents before their children
  order.reserve(n);
  for (uint32_t k = start[n]; k < start[n + 1]; ++k) order.push_back(kids[k]);
  order.insert(order.end(), roots.begin(), roots.end());
  for (size_t i = 0; i < order.size(); ++i)
    for (uint32_t k = start[order[i]]; k < start[order[i] + 1]; ++k) order.push_back(kids[k]);
  for (size_t i = 0; i < n; ++i)
    score[i] = Score{window_[i].checkpoint ? 1u : 0u, 1, window_[i].pos};
  for (size_t k = order.size(); k-- > 0;) {
    const Node& x = window_[order[k]];
    if (x.parent < 0) continue;
    Score& up = score[static_cast<size_t>(x.parent)];
    up.checkpoints += score[order[k]].checkpoints;
    up.records += score[order[k]].records;
    up.first = std::min(up.first, score[order[k]].first);
  }
  // At a fork the chain takes the branch with more valid checkpoints, then the one more records
  // continue, then the one that comes first in the file.
  const auto better = [&score](uint32_t a, uint32_t b) {
    const Score& x = score[a];
    const Score& y = score[b];
    if (x.checkpoints != y.checkpoints) return x.checkpoints > y.checkpoints;
    if (x.records != y.records) return x.records > y.records;
    return x.first < y.first;
  };

  // The chain through the window.
  enum How : uint8_t { kOff, kLinked, kBadLink, kBadSeq, kAfterGap };
  std::vector<uint8_t> how(n, kOff);
  std::vector<uint32_t> path;
  path.reserve(n);
  size_t cur = n;  // the tip
  uint64_t cur_seq = tip_seq_;
  while (true) {
    int64_t best = -1;
    for (uint32_t k = start[cur]; k < start[cur + 1]; ++k) {
      const uint32_t c = kids[k];
      if (best < 0 || better(c, static_cast<uint32_t>(best))) best = c;
    }
    if (best >= 0) {
      how[static_cast<size_t>(best)] =
          window_[static_cast<size_t>(best)].seq == cur_seq + 1 ? kLinked : kBadSeq;
    } else {
      // Nothing links to it: the orphan with the next seq (a broken link), or the smallest seq
      // after it (the seqs between were removed).
      auto it = std::upper_bound(roots.begin(), roots.end(), cur_seq,
                                 [this](uint64_t seq, uint32_t r) { return seq < window_[r].seq; });
      while (it != roots.end() && how[*it] != kOff) ++it;
      if (it == roots.end()) break;
      best = *it;
      how[*it] = window_[*it].seq == cur_seq + 1 ? kBadLink : kAfterGap;
    }
    cur = static_cast<size_t>(best);
    cur_seq = window_[cur].seq;
    path.push_back(static_cast<uint32_t>(cur));
  }
  // Settling early, the chain must end in the record added last (the branch being extended);
  // else wait for more records.
  if (!force && (path.empty() || last_added_ != static_cast<int64_t>(path.back()))) return false;

  // Of the chain, the longest run in file order stays; the rest is out of place.
  std::vector<uint8_t> moved(path.size(), 1);
  const auto in_place = [&](std::vector<uint8_t>* out) {
    std::vector<size_t> tails, link(path.size(), SIZE_MAX);  // indexes into path
    for (size_t i = 0; i < path.size(); ++i) {
      const uint64_t at = window_[path[i]].pos;
      auto it = std::lower_bound(tails.begin(), tails.end(), at,
                                 [&](size_t t, uint64_t v) { return window_[path[t]].pos < v; });
      if (it != tails.begin()) link[i] = *(it - 1);
      if (it == tails.end()) {
        tails.push_back(i);
      } else {
        *it = i;
      }
    }
    out->assign(path.size(), 1);
    for (size_t i = tails.empty() ? SIZE_MAX : tails.back(); i != SIZE_MAX; i = link[i])
      (*out)[i] = 0;
    return tails.size();
  };
  size_t kept = in_place(&moved);
  // A record and its copy: the chain takes the one that stands in place.
  std::vector<size_t> path_at(n, SIZE_MAX);
  for (size_t i = 0; i < path.size(); ++i) path_at[path[i]] = i;
  for (Twin& t : twins_) {
    if (path_at[t.node] == SIZE_MAX || kept == path.size()) continue;
    Node& x = window_[t.node];
    std::swap(x.pos, t.pos);
    std::swap(x.line, t.line);
    std::swap(x.file, t.file);
    std::vector<uint8_t> other;
    if (const size_t k = in_place(&other); k > kept) {
      kept = k;
      moved = std::move(other);
    } else {
      std::swap(x.pos, t.pos);
      std::swap(x.line, t.line);
      std::swap(x.file, t.file);
    }
  }

  struct Pending {
    uint64_t pos;
    std::string kind;
    uint32_t file;
    uint64_t line, seq;
    std::string message;
    uint64_t gap_from = 0, gap_to = 0;  // removed
  };
  std::vector<Pending> found;
  const auto report = [&](const Node& x, std::string_view kind, std::string message) {
    found.push_back(
        Pending{x.pos, std::string(kind), x.file, x.line, x.seq, std::move(message), 0, 0});
  };
  const Placed* tip = tip_set_ ? history(0) : nullptr;
  const std::string tip_where = tip ? where(tip->file, tip->line) : "the start of the log";
  std::string prev_where = tip_where;
  uint64_t prev_seq = tip_seq_;
  for (size_t i = 0; i < path.size(); ++i) {
    const Node& x = window_[path[i]];
    switch (how[path[i]]) {
      case kBadLink:
        report(x, "bad_link",
               fmt::format("prev of seq {} is not the hash of seq {}", x.seq, prev_seq));
        break;
      case kBadSeq:
        report(x, "bad_link",
               fmt::format("seq {} links to seq {} but does not follow it", x.seq, prev_seq));
        break;
      case kAfterGap: {
        const uint64_t from = prev_seq + 1, to = x.seq - 1;
        report(x, "removed",
               from == to ? fmt::format("seq {} missing", from)
                          : fmt::format("seq {}..{} missing", from, to));
        found.back().seq = from;  // the first missing seq, where the next record stands
        found.back().gap_from = from;
        found.back().gap_to = to;
        break;
      }
      default:
        break;
    }
    if (moved[i])
      report(x, "reordered",
             fmt::format("seq {} is out of place: it belongs after seq {} ({})", x.seq, prev_seq,
                         prev_where));
    prev_seq = x.seq;
    prev_where = where(x.file, x.line);
  }
  // Records off the chain: forks (and what follows them); orphans are judged once the chain is
  // placed.
  std::vector<uint32_t> strays;
  for (size_t i = 0; i < n; ++i) {
    if (how[i] != kOff) continue;
    const Node& x = window_[i];
    if (x.parent == kNoParent) {
      strays.push_back(static_cast<uint32_t>(i));
      continue;
    }
    const bool fork = x.parent == kTipParent || how[static_cast<size_t>(x.parent)] != kOff;
    if (!fork) {
      report(
          x, "inserted",
          fmt::format("seq {} is not on the chain: it follows a record that is not either", x.seq));
      continue;
    }
    std::string pred = fmt::format("seq {} ({})", tip_seq_, tip_where);
    if (x.parent != kTipParent) {
      const Node& up = window_[static_cast<size_t>(x.parent)];
      pred = fmt::format("seq {} ({})", up.seq, where(up.file, up.line));
    }
    report(x, "inserted",
           fmt::format("seq {} is not on the chain: it links to {}, which the chain continues "
                       "with another record",
                       x.seq, pred));
  }
  for (const Twin& t : twins_) {
    const Node& x = window_[t.node];
    found.push_back(Pending{
        t.pos, "inserted", t.file, t.line, x.seq,
        fmt::format("seq {} appears again (a copy of {})", x.seq, where(x.file, x.line)), 0, 0});
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const Pending& a, const Pending& b) { return a.pos < b.pos; });
  for (auto& f : found) {
    const size_t at = report_.findings.size();
    add_at(f.kind, f.file, f.line, f.seq, std::move(f.message));
    if (f.kind == "removed" && at < report_.findings.size()) {
      if (gaps_.size() >= kMaxGaps) gaps_.erase(gaps_.begin());
      gaps_.push_back(Gap{f.gap_from, f.gap_to, at});
    }
  }

  // Place the chain, then judge the strays against it.
  by_hash_.clear();
  orphans_.clear();
  twins_.clear();
  last_added_ = -1;
  run_ = 0;
  for (size_t i = 0; i < path.size(); ++i)
    place(window_[path[i]], how[path[i]] == kLinked && !moved[i]);
  for (uint32_t s : strays) stale(window_[s]);
  window_.clear();  // keeps its capacity: the views of a later window stay valid
  return true;
}

bool ChainVerifier::check_checkpoint(const ParsedLine& p) {
  const Field* hs = p.find("head_seq");
  const Field* h = p.find("head");
  const Field* fp = p.find("key_fp");
  const Field* sig = p.find("sig");
  uint64_t head_seq = 0;
  if (!hs || !h || !fp || !sig || hs->kind != ValueKind::kInteger ||
      !parse_u64(hs->raw, &head_seq) || h->kind != ValueKind::kString ||
      fp->kind != ValueKind::kString || sig->kind != ValueKind::kString) {
    add("bad_checkpoint", p.seq, "checkpoint fields missing or of the wrong type");
    return false;
  }
  // The record before it is its prev (the chain check ties prev to that record).
  if (head_seq + 1 != p.seq || h->raw != p.prev) {
    add("bad_checkpoint", p.seq,
        fmt::format("checkpoint names seq {}, not the record before it", head_seq));
    return false;
  }
  if (sig->raw.empty()) {
    // The writer could not sign (its key or token was unavailable; it logged
    // audit_checkpoint_unsigned): the chain up to here is not vouched for by this checkpoint.
    add("bad_checkpoint", p.seq,
        "checkpoint not signed (the audit key was unavailable when it was written)");
    return false;
  }
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
      return false;
    }
  }
  if (signer->fingerprint() != key_fp) {
    add("bad_checkpoint", p.seq, "key_fp is not the audit key");
    return false;
  }
  if (auto v = verify_checkpoint(*signer, head_seq, h->raw, sig->raw); !v) {
    add("bad_checkpoint", p.seq, v.error().message);
    return false;
  }
  ++report_.checkpoints;
  last_checkpoint_seq_ = std::max(last_checkpoint_seq_, p.seq);
  return true;
}

void ChainVerifier::finish() {
  resolve(true);
  file_.clear();
  line_no_ = 0;
  if (head_expected_) {
    if (tip_seq_ < head_seq_wanted_) {
      add_at("truncated", 0, 0, head_seq_wanted_,
             fmt::format("audit.head names checkpoint seq {} but the log ends at seq {}",
                         head_seq_wanted_, tip_seq_));
    } else if (!head_found_) {
      add_at("bad_head", 0, 0, head_seq_wanted_,
             fmt::format("seq {} is not the checkpoint audit.head names", head_seq_wanted_));
    }
  } else if (head_absent_ && checkpoint_records_ > 0) {
    const size_t at = report_.findings.size();
    add_at("head_missing", 0, 0, 0,
           fmt::format("audit.head is missing but the log holds {} checkpoint{}: a log cut back "
                       "past its last checkpoint would go unnoticed",
                       checkpoint_records_, checkpoint_records_ == 1 ? "" : "s"));
    if (at < report_.findings.size()) report_.findings[at].file = "audit.head";
  }
  if (tip_seq_ > last_checkpoint_seq_) {
    report_.unsigned_tail = tip_seq_ - last_checkpoint_seq_;
    add_at("unsigned_tail", 0, 0, last_checkpoint_seq_ + 1,
           fmt::format("{} records after the last checkpoint", report_.unsigned_tail), false);
  }
  report_.last_seq = tip_seq_;
  report_.last_hash = tip_set_ ? std::string(tip_hash_.data(), 64) : std::string();
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
          Finding{"bad_head", "audit.head", 0, 0, "audit.head is unreadable", true, std::nullopt});
    }
  } else if (!ec) {
    v.expect_no_head();
  } else {
    v.report().findings.push_back(
        Finding{"bad_head", "audit.head", 0, 0, "audit.head: " + ec.message(), true, std::nullopt});
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
  const std::vector<size_t> cuts = v.cuts();
  VerifyReport report = v.take();
  verify_cuts(dir, cuts, &report);
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
    report->findings.push_back(
        Finding{std::move(kind), r.segment, r.line, r.seq, std::move(message), true, std::nullopt});
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
    uint64_t size = 0;
    unsigned char digest[SHA256_DIGEST_LENGTH] = {};
    const bool failed = !hash_to_end(fd, buf, &size, digest);
    ::close(fd);
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

void verify_cuts(const std::filesystem::path& dir, const std::vector<size_t>& cuts,
                 VerifyReport* report) {
  std::vector<std::string> named;
  for (size_t at : cuts) {
    if (at >= report->findings.size() || !report->findings[at].cut) continue;
    Finding& f = report->findings[at];
    CutInfo& cut = *f.cut;
    // A side file is a name in the audit directory, nothing else.
    if (!is_cut_file_name(cut.side_file)) {
      cut.side_status = "missing";
      f.message += " (not a side file name)";
      continue;
    }
    named.push_back(cut.side_file);
    const auto path = dir / cut.side_file;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      cut.side_status = "missing";
      f.message += fmt::format(", which cannot be read now: {}", std::strerror(errno));
      continue;
    }
    uint64_t size = 0;
    unsigned char digest[SHA256_DIGEST_LENGTH] = {};
    std::vector<unsigned char> buf(kChunk);
    const bool failed = !hash_to_end(fd, buf, &size, digest);
    ::close(fd);
    if (failed) {
      cut.side_status = "missing";
      f.message += ", which could not be read to its end";
    } else if (size != cut.bytes || to_hex(digest) != cut.sha256) {
      cut.side_status = "modified";
      f.message += " (changed since)";
      if (report->findings.size() >= kMaxFindings) {
        ++report->suppressed;
        continue;
      }
      std::string message = fmt::format(
          "{} does not hold what seq {} says was cut: {} bytes, SHA-256 {} "
          "(recorded: {} bytes, {})",
          cut.side_file, f.seq, size, to_hex(digest), cut.bytes, cut.sha256);
      Finding m{"cut_modified", f.file, f.line, f.seq, std::move(message), true, cut};
      report->findings.push_back(std::move(m));  // f and cut are not used after this
    } else {
      cut.side_status = "intact";
      f.message += " (intact)";
    }
  }
  std::sort(named.begin(), named.end());
  for (const auto& name : list_cut_files(dir)) {
    if (std::binary_search(named.begin(), named.end(), name)) continue;
    if (report->findings.size() >= kMaxFindings) {
      // Warnings beyond the cap are dropped: only tampering counts as suppressed.
      break;
    }
    std::error_code ec;
    const auto size = std::filesystem::file_size(dir / name, ec);
    CutInfo cut;
    cut.segment = name.substr(0, name.find(".cut-"));
    cut.bytes = ec ? 0 : size;
    cut.side_file = name;
    report->findings.push_back(
        Finding{"cut_unrecorded", name, 0, 0,
                fmt::format("{} holds {} bytes the writer cut off {}, but no recovered record "
                            "names it (a crash between the cut and its record)",
                            name, cut.bytes, cut.segment),
                false, cut});
  }
}

}  // namespace touchgate::audit
