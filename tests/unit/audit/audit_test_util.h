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

namespace touchgate::audit::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tg-audit-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
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

inline std::string read_all(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_all(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
}

inline void write_lines(const std::filesystem::path& file, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_all(file, text);
}

}  // namespace touchgate::audit::testing
