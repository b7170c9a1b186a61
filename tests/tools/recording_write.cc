// recording_write: writes a session recording with the real writer (audit::Recording), for the
// scenarios that replay one without running a gateway.
//
// Usage: recording_write [--max-bytes N] FILE < EVENTS
//
// EVENTS: the first line is the header as a JSON object ({"width":80,"height":24,
// "timestamp":1700000000,"term":"xterm","target":"db1","user":"alice","connection":"ab-1"};
// every key optional), then one event per line: [TIME, "o"|"i", DATA] (TIME in seconds; the
// UTF-8 bytes of the string DATA are recorded) or [TIME, "r", "COLSxROWS"].
// Prints {"file":...,"sha256":...,"size":...} once the recording is closed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "audit/recording.h"

using namespace touchgate;

namespace {

int fail_with(const std::string& message) {
  std::fprintf(stderr, "recording_write: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t max_bytes = audit::Recording::kDefaultMaxBytes;
  int i = 1;
  if (i + 1 < argc && std::string(argv[i]) == "--max-bytes") {
    max_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    i += 2;
  }
  if (argc - i != 1) {
    std::fprintf(stderr, "usage: recording_write [--max-bytes N] FILE < EVENTS\n");
    return 2;
  }
  const std::string path = argv[i];
  std::string line;
  if (!std::getline(std::cin, line)) return fail_with("no header line");
  const auto h = nlohmann::json::parse(line, nullptr, false);
  if (!h.is_object()) return fail_with("the header is not a JSON object");
  audit::Recording::Header header;
  header.width = h.value("width", 80);
  header.height = h.value("height", 24);
  header.timestamp = h.value("timestamp", int64_t{1700000000});
  header.term = h.value("term", "");
  header.title = h.value("title", "");
  header.target = h.value("target", "");
  header.user = h.value("user", "");
  header.connection = h.value("connection", "");
  auto rec = audit::Recording::create(path, header, max_bytes);
  if (!rec) return fail_with(rec.error().message);

  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    const auto e = nlohmann::json::parse(line, nullptr, false);
    if (!e.is_array() || e.size() != 3 || !e[0].is_number() || !e[1].is_string() ||
        !e[2].is_string()) {
      return fail_with("not an event: " + line);
    }
    const auto at = std::chrono::microseconds(static_cast<int64_t>(e[0].get<double>() * 1e6 + 0.5));
    const std::string type = e[1].get<std::string>();
    const std::string data = e[2].get<std::string>();
    const auto bytes = std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    Result<audit::Recording::Status> st = audit::Recording::Status::kRecorded;
    if (type == "o") {
      st = (*rec)->output(at, bytes);
    } else if (type == "i") {
      st = (*rec)->input(at, bytes);
    } else if (type == "r") {
      unsigned cols = 0, rows = 0;
      if (std::sscanf(data.c_str(), "%ux%u", &cols, &rows) != 2) return fail_with("bad size");
      st = (*rec)->resize(at, cols, rows);
    } else {
      return fail_with("unknown event type " + type);
    }
    if (!st) return fail_with(st.error().message);
  }
  auto summary = (*rec)->close();
  if (!summary) return fail_with(summary.error().message);
  nlohmann::json out = {{"file", path},
                        {"sha256", summary->sha256},
                        {"size", summary->size},
                        {"capped", (*rec)->cap_reached()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
