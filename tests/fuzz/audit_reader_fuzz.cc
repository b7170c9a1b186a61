// Fuzz target: the audit log line scanner and the chain verifier over one segment (trust
// boundary: log files read back from disk). Seed corpus: corpus/audit_reader/ (segments the
// writer produced, and broken ones). Invariants violated abort.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "audit/line.h"
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
  return 0;
}
