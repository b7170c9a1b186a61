// audit_fill: writes records into an audit log with the real writer (audit::AuditLog), for the
// scenarios that review a log without running a gateway.
//
// Usage: audit_fill [--segment-bytes N] [--checkpoint-every N] DIR KEY < RECORDS
//
// RECORDS: one JSON object per line, e.g. {"event":"auth_accepted","conn":"ab-1","user":"alice",
// "outcome":"allow","serial":7,"verify_required":false}. Strings, integers and booleans become
// fields in the order given. "ts" (RFC 3339) sets the clock for this and the following records
// (default: the real time). Each record is durable before the next is queued. Prints the seq of
// each record, one per line. The log is closed (final checkpoint) at the end of the input.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "audit/log.h"
#include "audit/query.h"

using namespace touchgate;

int main(int argc, char** argv) {
  audit::Options o;
  o.checkpoint_interval = std::chrono::hours(24 * 1000);
  int i = 1;
  for (; i + 1 < argc && std::string(argv[i]).starts_with("--"); i += 2) {
    const std::string opt = argv[i];
    const uint64_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (opt == "--segment-bytes") {
      o.max_segment_bytes = v;
    } else if (opt == "--checkpoint-every") {
      o.checkpoint_every = v;
    } else {
      std::fprintf(stderr, "audit_fill: unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  if (argc - i != 2) {
    std::fprintf(stderr,
                 "usage: audit_fill [--segment-bytes N] [--checkpoint-every N] DIR KEY < RECORDS\n");
    return 2;
  }
  o.dir = argv[i];
  o.key_path = argv[i + 1];
  auto fixed = std::make_shared<std::optional<audit::TimePoint>>();
  o.clock = [fixed] { return fixed->value_or(std::chrono::system_clock::now()); };
  auto log = audit::AuditLog::open(o);
  if (!log) {
    std::fprintf(stderr, "audit_fill: %s (%s)\n", log.error().message.c_str(),
                 log.error().code.c_str());
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::ordered_json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("event") || !j["event"].is_string()) {
      std::fprintf(stderr, "audit_fill: not a record: %s\n", line.c_str());
      return 2;
    }
    audit::Record r(j["event"].get<std::string>());
    for (const auto& [name, value] : j.items()) {
      if (name == "event") continue;
      if (name == "ts") {
        auto t = audit::parse_time_spec(value.get<std::string>(), std::chrono::system_clock::now());
        if (!t) {
          std::fprintf(stderr, "audit_fill: %s\n", t.error().message.c_str());
          return 2;
        }
        *fixed = *t;
      } else if (value.is_string()) {
        r.str(name, value.get<std::string>());
      } else if (value.is_boolean()) {
        r.boolean(name, value.get<bool>());
      } else if (value.is_number_unsigned()) {
        r.u64(name, value.get<uint64_t>());
      } else if (value.is_number_integer()) {
        r.i64(name, value.get<int64_t>());
      } else {
        std::fprintf(stderr, "audit_fill: field %s: not a string, integer or boolean\n",
                     name.c_str());
        return 2;
      }
    }
    auto done = std::make_shared<std::promise<Result<uint64_t>>>();
    auto seq = done->get_future();
    auto queued =
        (*log)->append(std::move(r), [done](Result<uint64_t> s) { done->set_value(std::move(s)); });
    if (!queued) {
      std::fprintf(stderr, "audit_fill: %s (%s)\n", queued.error().message.c_str(),
                   queued.error().code.c_str());
      return 1;
    }
    auto s = seq.get();
    if (!s) {
      std::fprintf(stderr, "audit_fill: %s (%s)\n", s.error().message.c_str(),
                   s.error().code.c_str());
      return 1;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(*s));
    std::fflush(stdout);
  }
  if (auto c = (*log)->close(); !c) {
    std::fprintf(stderr, "audit_fill: %s (%s)\n", c.error().message.c_str(),
                 c.error().code.c_str());
    return 1;
  }
  return 0;
}
