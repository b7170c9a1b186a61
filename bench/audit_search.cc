// audit_search: reviewing a large audit log. Writes a log of SIZE_MB (default 1024) into DIR/log
// with the real writer unless one is there already (then it is reused), then times, each in a
// fresh process so that its peak RSS is its own: a search with a selective filter (one user's
// policy decisions) and a full stats pass. Prints MB/s and peak RSS (getrusage ru_maxrss).
// Usage: audit_search DIR [SIZE_MB]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "audit/log.h"
#include "audit/query.h"
#include "audit/verify.h"

using namespace touchgate::audit;

namespace {

uint64_t log_bytes(const std::filesystem::path& dir) {
  uint64_t n = 0;
  for (const auto& s : list_segments(dir)) n += std::filesystem::file_size(dir / s);
  return n;
}

double peak_rss_mib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

// One connection's records, as the gateway writes them (~2.3 KB).
void queue_connection(AuditLog& log, uint64_t n, std::atomic<uint64_t>& done) {
  const std::string conn = fmt::format("5f3a9c0e7d214b68-{}", n);
  const std::string user = fmt::format("user{}", n % 10000);
  const std::string target = fmt::format("db{}.prod.example.com", n % 500);
  const std::string key_fp = fmt::format("SHA256:{:0>43}", n % 10000);
  std::vector<Record> recs;
  recs.push_back(Record("connection_accepted")
                     .str("conn", conn)
                     .str("client", "198.51.100.23")
                     .u64("client_port", 40000 + n % 20000)
                     .str("local", "10.0.0.5:22"));
  recs.push_back(Record("auth_accepted")
                     .str("conn", conn)
                     .str("user", user)
                     .str("outcome", "allow")
                     .str("ca", "sso")
                     .str("key_id", user + "@corp.example")
                     .u64("serial", n)
                     .str("principals", user)
                     .str("valid_after", "2026-11-30T08:00:00Z")
                     .str("valid_before", "2026-11-30T20:00:00Z")
                     .str("key_fp", key_fp)
                     .str("cert_fp", key_fp)
                     .boolean("verify_required", false));
  const std::string message =
      fmt::format("touchgate-mfa-v1\nuser: {}\ntarget: {}\nconn: {}\nnonce: {:064}\n", user,
                  target, conn, n);
  std::string proof = "-----BEGIN SSH SIGNATURE-----\n";
  for (int i = 0; i < 5; ++i) proof += std::string(70, 'A' + static_cast<char>(i)) + "\n";
  proof += "-----END SSH SIGNATURE-----\n";
  recs.push_back(Record("mfa_verified")
                     .str("conn", conn)
                     .str("user", user)
                     .str("outcome", "allow")
                     .u64("channel", 1)
                     .str("target", target)
                     .str("key_fp", key_fp)
                     .str("kind", "fido2")
                     .str("label", "yubikey 5c")
                     .boolean("up", true)
                     .boolean("uv", true)
                     .u64("counter", n)
                     .str("factor", "touch+pin")
                     .str("namespace", "touchgate-mfa")
                     .str("signed_message", message)
                     .str("proof", proof));
  const bool deny = n % 10 == 0;
  recs.push_back(Record("policy_decision")
                     .str("conn", conn)
                     .str("user", user)
                     .str("outcome", deny ? "deny" : "allow")
                     .u64("channel", 1)
                     .str("target", target)
                     .str("action", "jump")
                     .str("rule", deny ? "" : "prod-db")
                     .str("reason", deny ? "policy_no_match" : "allowed")
                     .str("factors_required", deny ? "" : "touch+pin|piv")
                     .str("factor_used", "touch+pin")
                     .str("from", "198.51.100.23"));
  if (!deny) {
    recs.push_back(Record("channel_open")
                       .str("conn", conn)
                       .str("user", user)
                       .u64("channel", 1)
                       .str("target", target)
                       .str("address", "10.1.2.3:22"));
    recs.push_back(Record("channel_closed")
                       .str("conn", conn)
                       .str("user", user)
                       .u64("channel", 1)
                       .str("target", target)
                       .str("address", "10.1.2.3:22")
                       .u64("bytes_up", 4096 + n % 100000)
                       .u64("bytes_down", 65536 + n % 1000000)
                       .u64("duration_ms", 1000 + n % 60000)
                       .str("reason", "closed"));
  }
  recs.push_back(Record("connection_closed")
                     .str("conn", conn)
                     .str("user", user)
                     .str("client", "198.51.100.23")
                     .u64("duration_ms", 2000 + n % 60000)
                     .u64("channels", deny ? 0 : 1)
                     .str("reason", "client_closed"));
  for (auto& r : recs) {
    while (true) {
      auto a = log.append(r, [&](touchgate::Result<uint64_t>) { ++done; });
      if (a) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
}

int generate(const std::filesystem::path& dir, uint64_t size_mb) {
  Options o;
  o.dir = dir / "log";
  o.key_path = dir / "audit_key";
  auto log = AuditLog::open(o);
  if (!log) {
    std::fprintf(stderr, "open: %s\n", log.error().message.c_str());
    return 1;
  }
  std::atomic<uint64_t> done{0};
  const uint64_t want = size_mb << 20;
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t n = 0;
  while (true) {
    for (int i = 0; i < 1000; ++i) queue_connection(**log, n++, done);
    if (log_bytes(o.dir) >= want) break;
  }
  (void)(*log)->close();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("generate: %llu connections, %llu records, %.0f MB in %.1f s\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(done.load()),
              static_cast<double>(log_bytes(o.dir)) / 1e6, s);
  return 0;
}

// in_child runs fn in a fresh process and waits for it.
template <typename Fn>
int in_child(Fn fn) {
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int status = fn();
    std::fflush(stdout);
    std::_Exit(status);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

void report(const char* what, const Cursor& c, double seconds, const std::string& result) {
  std::printf("%-7s %8.0f MB in %6.2f s = %6.0f MB/s, %llu records (%s), peak RSS %.1f MiB\n",
              what, static_cast<double>(c.bytes()) / 1e6, seconds,
              static_cast<double>(c.bytes()) / 1e6 / seconds,
              static_cast<unsigned long long>(c.records()), result.c_str(), peak_rss_mib());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: audit_search DIR [SIZE_MB]\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const uint64_t size_mb = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024;
  const auto log_dir = dir / "log";
  if (list_segments(log_dir).empty()) {
    if (in_child([&] { return generate(dir, size_mb); }) != 0) return 1;
  } else {
    std::printf("reusing %s: %.0f MB in %zu segments\n", log_dir.c_str(),
                static_cast<double>(log_bytes(log_dir)) / 1e6, list_segments(log_dir).size());
  }
  std::printf("baseline: peak RSS %.1f MiB (this process, before any pass)\n", peak_rss_mib());

  int status = in_child([&] {
    Filter f;
    f.user = "user4242";
    f.events = {"policy_decision"};
    uint64_t matches = 0;
    Cursor c(log_dir);
    const auto t0 = std::chrono::steady_clock::now();
    c.read([&](const RecordRef& r) {
      if (f.matches(r.parsed)) ++matches;
      return true;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report("search", c, s, fmt::format("{} matches of --user user4242 --event policy_decision",
                                       matches));
    return 0;
  });
  status |= in_child([&] {
    Stats stats;
    Cursor c(log_dir);
    const auto t0 = std::chrono::steady_clock::now();
    c.read([&](const RecordRef& r) {
      stats.add(r.parsed);
      return true;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report("stats", c, s,
           fmt::format("{} events, {} users, {} targets", stats.events.size(),
                       stats.users.size(), stats.targets.size()));
    return 0;
  });
  return status;
}
