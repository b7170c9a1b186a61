// Fuzz target: the audit log line scanner, the chain verifier over one segment, and the review
// reader (audit::Cursor with a Filter and Stats, what `touchgate audit search|stats` run) over
// the same bytes as a segment file (trust boundary: log files read back from disk). Seed corpus: corpus/audit_reader/ (segments the
// writer produced, and broken ones). Invariants violated abort.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "audit/line.h"
#include "audit/query.h"
#include "audit/record.h"
#include "audit/verify.h"

namespace {

using namespace touchgate::audit;

void check_line(std::string_view line, ParsedLine* p) {
  if (parse_line(line, p) != nullptr) return;
  if (p->fields.size() < 5 || p->seq == 0) __builtin_trap();
  if (p->prev.size() != 64 || p->hash.size() != 64 || p->event.empty()) __builtin_trap();
  // The hashed part is a prefix of the line that ends right before ,"hash":".
  if (line.substr(0, p->hashed.size()) != p->hashed) __builtin_trap();
  if (line.substr(p->hashed.size(), 9) != ",\"hash\":\"") __builtin_trap();
  for (const auto& f : p->fields) {
    if (f.kind == ValueKind::kString) {
      // A canonical string survives a round trip through the writer's escaping.
      std::string again;
      append_json_string(again, unescape_string(f.raw));
      if (std::string_view(again).substr(1, again.size() - 2) != f.raw) __builtin_trap();
    }
  }
}

// review reads input as the only segment of a log directory, like touchgate audit does.
void review(std::string_view input) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("tg-fuzz-audit-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                      ("tg-fuzz-audit-" + std::to_string(::getpid())),
                                  ec);
    });
    return d;
  }();
  const auto file = dir / segment_name(1);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t done = 0;
  while (done < input.size()) {
    const ssize_t n = ::write(fd, input.data() + done, input.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  Filter filter;
  filter.user = "alice";
  filter.events = {"policy_decision", "auth_refused"};
  filter.outcome = "deny";
  Stats stats(4);
  uint64_t delivered = 0;
  Cursor cursor(dir);
  cursor.read([&](const RecordRef& r) {
    ++delivered;
    // A delivered record is a whole line that parses.
    ParsedLine again;
    if (parse_line(r.text, &again) != nullptr) __builtin_trap();
    (void)filter.matches(r.parsed);
    (void)field_text(r.parsed, "conn");
    (void)parse_record_time(r.parsed.ts);
    stats.add(r.parsed);
    return true;
  });
  if (cursor.records() != delivered || stats.records != delivered) __builtin_trap();
  if (stats.users.size() > 4 || stats.targets.size() > 4) __builtin_trap();
  (void)find_tail_start(dir, 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  ParsedLine p;
  ChainVerifier v(std::nullopt);
  v.begin_segment(segment_name(1), true);
  size_t start = 0;
  while (start < input.size()) {
    const size_t nl = input.find('\n', start);
    if (nl == std::string_view::npos) {
      check_line(input.substr(start), &p);
      v.line(input.substr(start), false);
      break;
    }
    const auto line = input.substr(start, nl - start);
    check_line(line, &p);
    v.line(line, true, line.size() > kMaxLine);
    start = nl + 1;
  }
  v.finish();
  const auto report = v.take();
  if (report.findings.size() > kMaxFindings) __builtin_trap();
  review(input);
  return 0;
}
