// Helpers for the audit tests: a scratch directory and synchronous appends.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "audit/log.h"
#include "tests/unit/test_util.h"

namespace touchgate::audit::testing {

using ::touchgate::testing::read_all;
using ::touchgate::testing::write_all;

// TempDir: a scratch directory named tg-audit-*.
class TempDir : public ::touchgate::testing::TempDir {
 public:
  TempDir() : ::touchgate::testing::TempDir("tg-audit") {}
};

inline Options options_for(const TempDir& t) {
  Options o;
  o.dir = t.path() / "log";
  o.key_path = t.path() / "audit_key";
  return o;
}

// append_wait appends r and waits until it is durable (or failed).
inline Result<uint64_t> append_wait(AuditLog& log, Record r) {
  auto p = std::make_shared<std::promise<Result<uint64_t>>>();
  auto f = p->get_future();
  auto a = log.append(std::move(r), [p](Result<uint64_t> seq) { p->set_value(std::move(seq)); });
  if (!a) return tl::unexpected(a.error());
  return f.get();
}

inline std::vector<std::string> read_lines(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

inline void write_lines(const std::filesystem::path& file, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_all(file, text);
}

}  // namespace touchgate::audit::testing
