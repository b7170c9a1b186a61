// audit: the audit log at volume.
//
// 1. Durable group commit as the gateway uses it: WRITERS threads (64) each append a record and
//    wait for its durable callback before the next one (real fdatasync), for SECONDS or until
//    RECORDS records. Prints records/s, group commits (fdatasync) and the average batch, and the
//    latency from append to durable (p50/p99).
// 2. verify MB/s over that log, and over a bulk log of about VERIFY_MB (written without waiting)
//    when the first one is smaller: warm (just written, in the page cache) and, with --cold,
//    after dropping the page cache (root: echo 3 > /proc/sys/vm/drop_caches).
//
// Usage: audit DIR [--writers N] [--seconds S] [--records N] [--checkpoint-every N]
//                  [--verify-mb M] [--cold]
//        (DIR must not hold a log yet)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "audit/checkpoint.h"
#include "audit/log.h"
#include "audit/verify.h"

using namespace touchgate::audit;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string dir;
  int writers = 64;
  double seconds = 10;
  uint64_t records = 0;  // 0: no limit but time
  uint64_t verify_mb = 512;
  uint64_t checkpoint_every = 1000;
  bool cold = false;
};

// A record like the gateway's policy_decision, with a proof-sized field: about 590 bytes a line.
Record sample(uint64_t conn, uint64_t i) {
  Record r("policy_decision");
  r.str("conn", "5f0c2e9a1b7d4c33-" + std::to_string(conn)).str("user", "alice@example.com");
  r.str("outcome", "allow").u64("channel", i).str("target", "db1.prod.example.com:22");
  r.str("action", "jump").str("rule", "prod-db-admins").str("reason", "allowed");
  r.str("factors_required", "touch+pin|piv").str("factor_used", "touch+pin");
  r.str("from", "192.0.2.17").str("proof", std::string(96, 'Q'));
  return r;
}

Options options_in(const std::string& dir, const std::string& name) {
  Options o;
  o.dir = dir + "/" + name;
  o.key_path = dir + "/audit_key";
  return o;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Waiter is one gateway connection: it sleeps until its record is durable.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool ok = false;
  Clock::time_point at;
  std::vector<double> latency_us;
};

int durable_phase(const Args& a, Options o) {
  auto log = AuditLog::open(o);
  if (!log) {
    std::fprintf(stderr, "open: %s\n", log.error().message.c_str());
    return 1;
  }
  std::atomic<uint64_t> total{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<Waiter> waiters(static_cast<size_t>(a.writers));
  const auto t0 = Clock::now();
  const auto until =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < a.writers; ++t) {
    threads.emplace_back([&, t] {
      Waiter& w = waiters[static_cast<size_t>(t)];
      w.latency_us.reserve(1 << 16);
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        if (a.records > 0 && total.fetch_add(1) >= a.records) break;
        Record r = sample(static_cast<uint64_t>(t), i);
        const auto start = Clock::now();
        {
          std::lock_guard lk(w.mu);
          w.done = false;
        }
        auto ap = (*log)->append(std::move(r), [&w](touchgate::Result<uint64_t> seq) {
          const auto now = Clock::now();
          std::lock_guard lk(w.mu);
          w.done = true;
          w.ok = seq.has_value();
          w.at = now;
          w.cv.notify_one();
        });
        if (!ap) {
          ++failed;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        std::unique_lock lk(w.mu);
        w.cv.wait(lk, [&] { return w.done; });
        if (!w.ok) ++failed;
        w.latency_us.push_back(std::chrono::duration<double, std::micro>(w.at - start).count());
        if (a.records == 0 && w.at >= until) stop = true;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const uint64_t syncs = (*log)->syncs(), lines = (*log)->lines();
  if (auto c = (*log)->close(); !c) std::fprintf(stderr, "close: %s\n", c.error().message.c_str());
  std::vector<double> lat;
  for (auto& w : waiters) lat.insert(lat.end(), w.latency_us.begin(), w.latency_us.end());
  const double n = static_cast<double>(lat.size());
  std::printf("durable: %d writers, %.0f records in %.2f s = %.0f records/s (%llu failed)\n",
              a.writers, n, secs, n / secs, static_cast<unsigned long long>(failed.load()));
  std::printf("durable: %llu fdatasync, %.1f records per batch (%.1f lines with checkpoints)\n",
              static_cast<unsigned long long>(syncs), syncs ? n / static_cast<double>(syncs) : 0,
              syncs ? static_cast<double>(lines) / static_cast<double>(syncs) : 0);
  const double p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99);
  std::printf("durable: append->durable latency p50 %.2f ms, p99 %.2f ms\n", p50 / 1000,
              p99 / 1000);
  return failed.load() == 0 ? 0 : 1;
}

// bulk writes records without waiting (back-pressure only) until the log holds about mb MB.
int bulk_phase(Options o, uint64_t mb) {
  o.checkpoint_every = 1000;
  auto log = AuditLog::open(o);
  if (!log) {
    std::fprintf(stderr, "open: %s\n", log.error().message.c_str());
    return 1;
  }
  const uint64_t line_bytes =
      format_line(1000000, std::chrono::system_clock::now(), kGenesisHash, sample(1, 1000000))
          .text.size();
  const uint64_t count = mb * 1000000 / line_bytes;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = t; i < count; i += 2) {
        Record r = sample(t, i);
        while (!(*log)->append(r, nullptr))
          std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  for (auto& th : threads) th.join();
  (void)(*log)->close();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("bulk: %llu records in %.2f s = %.0f records/s, %llu fdatasync\n",
              static_cast<unsigned long long>(count), secs, static_cast<double>(count) / secs,
              static_cast<unsigned long long>((*log)->syncs()));
  return 0;
}

bool drop_caches() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

bool verify_phase(const std::string& label, const Options& o) {
  auto key = load_audit_public_key(o.key_path.string() + ".pub");
  const auto t1 = Clock::now();
  const auto report = verify_directory(o.dir, key ? std::optional(*key) : std::nullopt);
  const double secs = std::chrono::duration<double>(Clock::now() - t1).count();
  std::printf(
      "verify %s: %llu records, %llu checkpoints, %.1f MB in %.2f s = %.0f MB/s, %s\n",
      label.c_str(), static_cast<unsigned long long>(report.records),
      static_cast<unsigned long long>(report.checkpoints), static_cast<double>(report.bytes) / 1e6,
      secs, static_cast<double>(report.bytes) / 1e6 / secs, report.clean() ? "clean" : "tampered");
  return report.clean();
}

uint64_t dir_bytes(const std::filesystem::path& dir) {
  uint64_t n = 0;
  for (const auto& s : list_segments(dir)) n += std::filesystem::file_size(dir / s);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--writers") {
      a.writers = std::atoi(next());
    } else if (arg == "--seconds") {
      a.seconds = std::atof(next());
    } else if (arg == "--records") {
      a.records = std::strtoull(next(), nullptr, 10);
    } else if (arg == "--checkpoint-every") {
      a.checkpoint_every = std::strtoull(next(), nullptr, 10);
    } else if (arg == "--verify-mb") {
      a.verify_mb = std::strtoull(next(), nullptr, 10);
    } else if (arg == "--cold") {
      a.cold = true;
    } else if (a.dir.empty() && !arg.starts_with("--")) {
      a.dir = arg;
    } else {
      a.dir.clear();
      break;
    }
  }
  if (a.dir.empty() || a.writers < 1) {
    std::fprintf(stderr,
                 "usage: audit DIR [--writers N] [--seconds S] [--records N] "
                 "[--checkpoint-every N] [--verify-mb M] [--cold]\n");
    return 2;
  }
  auto durable = options_in(a.dir, "log");
  durable.checkpoint_every = a.checkpoint_every;
  int rc = durable_phase(a, durable);
  if (!verify_phase("(durable log, warm)", durable)) rc = 1;
  auto big = durable;
  if (dir_bytes(durable.dir) < a.verify_mb * 1000000 / 2) {
    big = options_in(a.dir, "bulk");
    if (bulk_phase(big, a.verify_mb) != 0) return 1;
  }
  const std::string name = big.dir == durable.dir ? "durable log" : "bulk";
  if (!verify_phase("(" + name + ", warm)", big)) rc = 1;
  if (a.cold) {
    if (!drop_caches()) {
      std::fprintf(stderr, "--cold: cannot write /proc/sys/vm/drop_caches (root?)\n");
      return 1;
    }
    if (!verify_phase("(" + name + ", cold)", big)) rc = 1;
  }
  return rc;
}
