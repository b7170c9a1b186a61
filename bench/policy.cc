// Microbenchmark: the policy at scale. Generates a configuration of 1,000 rules over 10,000
// targets (names, globs, tags, groups by principal and by certificate extension, time windows in
// several zones, source networks, deny rules, rules for unconfigured hosts), then measures
//   - load + check: parse_config of the text, lint, Policy::compile (goal: < 1 s);
//   - decisions: 1,000,000 Policy::decide calls on one thread for a mix of identities and
//     destinations, each identity resolved once as the gateway does per connection (goal:
//     >= 200,000 decisions/s).
// Prints the figures; asserts nothing about time. Usage: bench/policy [DECISIONS]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "policy/config.h"
#include "policy/engine.h"
#include "policy/lint.h"

namespace {

using namespace touchgate;

constexpr int kTargets = 10000;
constexpr int kRules = 1000;
constexpr int kTeams = 100;
constexpr int kUsers = 1000;
constexpr int kIdentities = 1000;
constexpr const char* kKinds[] = {"db", "web", "app", "cache", "git"};
constexpr const char* kEnvs[] = {"prod", "staging", "dev"};
constexpr const char* kZones[] = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string target_name(int i) {
  return fmt::format("{}-{:05d}", kKinds[i % 5], i);
}

// generate returns the configuration text.
std::string generate(std::mt19937_64& rng) {
  std::string t;
  t.reserve(4u << 20);
  t += "[server]\nlisten = [\"127.0.0.1:2222\"]\n[trust]\n";
  t += "user_ca_keys = [\"corp.pub\", { name = \"partner\", path = \"partner.pub\" }]\n";
  for (int i = 0; i < kTargets; ++i) {
    const int team = i % kTeams;
    t += fmt::format(
        "[[target]]\nname = \"{}\"\naddress = \"10.{}.{}.{}:{}\"\n"
        "tags = [\"{}\", \"team-{}\", \"site-{}\"]\n",
        target_name(i), i / 65536, (i / 256) % 256, i % 256 + 1 > 255 ? 254 : i % 256 + 1,
        i % 10 == 0 ? 2222 : 22, kEnvs[i % 3], team, i % 7);
  }
  for (int g = 0; g < kTeams; ++g) {
    t += fmt::format("[[group]]\nname = \"team-{}\"\nprincipals = [", g);
    for (int k = 0; k < 5; ++k)
      t += fmt::format("{}\"user-{}\"", k ? ", " : "", (g * 10 + k) % kUsers);
    t += "]\n";
    if (g % 2 == 0) t += "extension = \"groups@corp.example\"\n";
    if (g % 5 == 0) t += fmt::format("key_ids = [\"*@team-{}.corp.example\"]\n", g);
  }
  std::uniform_int_distribution<int> team(0, kTeams - 1), user(0, kUsers - 1), pick(0, 99);
  for (int r = 0; r < kRules; ++r) {
    const int kind = pick(rng);
    const int tm = team(rng);
    t += fmt::format("[[rule]]\nid = \"r{:04d}\"\n", r);
    if (kind < 10) {  // deny: a few users off prod at night
      t += "effect = \"deny\"\n";
      t += fmt::format("principals = [\"user-{}\", \"user-{}\"]\n", user(rng), user(rng));
      t += fmt::format("targets = [\"tag:team-{}\"]\nhours = [\"22:00-06:00\"]\n", tm);
      t += fmt::format("timezone = \"{}\"\n", kZones[r % 4]);
    } else if (kind < 55) {  // a team's targets, by tag
      t += fmt::format("groups = [\"team-{}\"]\ntargets = [\"tag:team-{}\"]\n", tm, tm);
      t += "factor = [\"touch+pin\", \"piv\"]\nmax_age = \"10m\"\n";
      if (kind % 3 == 0) {
        t += fmt::format("days = [\"mon-fri\"]\nhours = [\"08:00-19:00\"]\ntimezone = \"{}\"\n",
                         kZones[r % 4]);
      }
    } else if (kind < 75) {  // named users to globbed names
      t += fmt::format("principals = [\"user-{}\", \"user-{}\", \"user-{}\"]\n", user(rng),
                       user(rng), user(rng));
      t += fmt::format("targets = [\"{}-{:03d}*\", \"{}\"]\n", kKinds[tm % 5], tm % 100,
                       target_name(pick(rng) * 100 + tm));
      t += "actions = [\"jump\", \"shell\", \"exec\"]\n";
    } else if (kind < 85) {  // staging for everyone from the office
      t += fmt::format("principals = [\"*\"]\ntargets = [\"tag:staging\"]\nports = [22]\n");
      t += fmt::format("from = [\"10.{}.0.0/16\", \"192.168.0.0/16\"]\n", 8 + tm % 8);
    } else if (kind < 93) {  // unconfigured lab hosts
      t += fmt::format("groups = [\"team-{}\"]\n", tm);
      t += fmt::format("hosts = [\"*.lab-{}.example.com\", \"10.200.{}.0/24\"]\n", tm, tm);
      t += "ports = [22, \"2200-2299\"]\n";
    } else {  // partner CA, strongest factor, short sessions
      t += fmt::format("groups = [\"team-{}\", \"team-{}\"]\ncas = [\"partner\"]\n", tm,
                       (tm + 1) % kTeams);
      t += fmt::format("targets = [\"tag:site-{}\"]\nfactor = \"fido2-attested\"\n", tm % 7);
      t += "max_session = \"1h\"\n";
    }
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const long decisions = argc > 1 ? std::atol(argv[1]) : 1000000;
  if (decisions <= 0) {
    std::fprintf(stderr, "usage: policy [DECISIONS]\n");
    return 2;
  }
  std::mt19937_64 rng(20261130);
  const std::string text = generate(rng);

  auto t0 = std::chrono::steady_clock::now();
  auto config = policy::parse_config(text, "/nonexistent", "bench.toml");
  const double parse_s = seconds_since(t0);
  if (!config) {
    std::fprintf(stderr, "policy: %s\n", config.error().message.c_str());
    return 1;
  }
  t0 = std::chrono::steady_clock::now();
  const auto findings = policy::lint(*config);
  const double lint_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  auto compiled =
      policy::Policy::compile(std::make_shared<const policy::Config>(std::move(*config)));
  const double compile_s = seconds_since(t0);
  size_t errors = 0;
  std::map<std::string, size_t> by_code;
  for (const auto& f : findings) {
    errors += f.severity == policy::Severity::kError;
    ++by_code[f.code];
  }

  std::printf("policy: %zu bytes of TOML, %d rules, %d targets, %d groups\n", text.size(), kRules,
              kTargets, kTeams);
  std::printf(
      "load+check: %.3f s (parse_config %.3f s, lint %.3f s with %zu findings, %zu errors; "
      "compile %.3f s)\n",
      parse_s + lint_s + compile_s, parse_s, lint_s, findings.size(), errors, compile_s);
  for (const auto& [code, n] : by_code) std::printf("  %zu %s\n", n, code.c_str());

  // Identities: users with and without group extensions, both CAs, a few source networks.
  std::uniform_int_distribution<int> user(0, kUsers - 1), team(0, kTeams - 1), pct(0, 99);
  std::vector<policy::ResolvedIdentity> who;
  double resolve_s = 0;
  for (int i = 0; i < kIdentities; ++i) {
    policy::Identity id;
    id.principal = fmt::format("user-{}", user(rng));
    id.key_id = fmt::format("{}@team-{}.corp.example", id.principal, team(rng));
    id.serial = static_cast<uint64_t>(i);
    id.ca_name = pct(rng) < 90 ? "corp" : "partner";
    id.source = *ssh::IpAddress::parse(fmt::format("10.{}.1.{}", 8 + i % 10, 1 + i % 250));
    if (pct(rng) < 60) {
      id.extensions.emplace_back("groups@corp.example",
                                 fmt::format("team-{},team-{},oncall", team(rng) & ~1, team(rng)));
    }
    t0 = std::chrono::steady_clock::now();
    who.push_back(compiled->resolve(std::move(id)));
    resolve_s += seconds_since(t0);
  }
  // Requests: mostly configured targets by name, some host:port, some unconfigured lab hosts,
  // at instants spread over a week.
  const long per_identity = (decisions + kIdentities - 1) / kIdentities;
  std::vector<policy::Request> requests;
  requests.reserve(static_cast<size_t>(per_identity));
  const auto base = std::chrono::system_clock::time_point(std::chrono::seconds(1796032800));
  std::uniform_int_distribution<int> target(0, kTargets - 1), minute(0, 7 * 1440 - 1);
  for (long i = 0; i < per_identity; ++i) {
    policy::Request r;
    const int p = pct(rng);
    if (p < 80) {
      r.host = target_name(target(rng));
    } else if (p < 90) {
      const int n = target(rng);
      r.host = fmt::format("10.{}.{}.{}", n / 65536, (n / 256) % 256,
                           n % 256 + 1 > 255 ? 254 : n % 256 + 1);
      r.port = n % 10 == 0 ? 2222 : 22;
    } else {
      r.host = fmt::format("h{}.lab-{}.example.com", p, team(rng));
    }
    r.action = p % 7 == 0 ? policy::Action::kShell : policy::Action::kJump;
    r.at = base + std::chrono::minutes(minute(rng));
    requests.push_back(std::move(r));
  }

  long allowed = 0, done = 0;
  const double cpu0 = cpu_now();
  t0 = std::chrono::steady_clock::now();
  for (const auto& w : who) {
    for (const auto& r : requests) {
      if (done == decisions) break;
      allowed += compiled->decide(w, r).allowed();
      ++done;
    }
  }
  const double wall = seconds_since(t0);
  const double cpu = cpu_now() - cpu0;
  std::printf("resolve: %d identities in %.3f s (%.1f us each)\n", kIdentities, resolve_s,
              resolve_s / kIdentities * 1e6);
  std::printf("decide: %ld decisions (%ld allowed) in %.3f s wall, %.3f s CPU: %.0f decisions/s\n",
              done, allowed, wall, cpu, static_cast<double>(done) / wall);
  return 0;
}
