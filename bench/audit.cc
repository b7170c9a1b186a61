// audit: the audit log at volume. Writes COUNT records from two threads (group commit, real
// fdatasync) into DIR, then verifies the directory; prints records/s and verify MB/s.
// Usage: audit DIR [COUNT]   (DIR must not hold a log yet)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/log.h"
#include "audit/verify.h"

using namespace touchgate::audit;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: audit DIR [COUNT]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const uint64_t count = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 500000;
  Options o;
  o.dir = dir + "/log";
  o.key_path = dir + "/audit_key";
  auto log = AuditLog::open(o);
  if (!log) {
    std::fprintf(stderr, "open: %s\n", log.error().message.c_str());
    return 1;
  }
  std::atomic<uint64_t> done{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = t; i < count; i += 2) {
        Record r("channel_decision");
        r.str("user", "alice@example.com").str("target", "db1.prod.example.com:22");
        r.str("rule", "prod-db-admins").str("factor", "sk-ecdsa touch+pin").u64("conn", i);
        r.str("proof", std::string(96, 'Q')).boolean("allowed", true);
        while (true) {
          auto a = (*log)->append(r, [&](touchgate::Result<uint64_t>) { ++done; });
          if (a) break;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  (void)(*log)->close();
  const double write_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("write: %llu records in %.2f s = %.0f records/s\n",
              static_cast<unsigned long long>(done.load()), write_s, done.load() / write_s);

  auto key = load_audit_public_key(o.key_path.string() + ".pub");
  const auto t1 = std::chrono::steady_clock::now();
  const auto report = verify_directory(o.dir, key ? std::optional(*key) : std::nullopt);
  const double verify_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("verify: %llu records, %.1f MB in %.2f s = %.0f MB/s, %s\n",
              static_cast<unsigned long long>(report.records), report.bytes / 1e6, verify_s,
              report.bytes / 1e6 / verify_s, report.clean() ? "clean" : "tampered");
  return report.clean() ? 0 : 1;
}
