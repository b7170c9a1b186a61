#include "policy/lint.h"

#include <algorithm>
#include <bitset>
#include <cctype>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "policy/engine.h"
#include "policy/timewindow.h"
#include "ssh/address.h"

namespace touchgate::policy {
namespace {

constexpr int kMinutesPerWeek = 7 * 1440;
using WeekMinutes = std::bitset<kMinutesPerWeek>;

// Bits: a set of configured targets (bit i = config.targets[i]).
class Bits {
 public:
  explicit Bits(size_t n = 0) : words_((n + 63) / 64, 0) {}
  void set(size_t i) { words_[i / 64] |= uint64_t{1} << (i % 64); }
  bool test(size_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  void set_all(size_t n) {
    for (size_t i = 0; i < n; ++i) set(i);
  }
  bool none() const {
    return std::all_of(words_.begin(), words_.end(), [](uint64_t w) { return w == 0; });
  }
  bool subset_of(const Bits& o) const {
    for (size_t i = 0; i < words_.size(); ++i)
      if ((words_[i] & ~o.words_[i]) != 0) return false;
    return true;
  }
  bool intersects(const Bits& o) const {
    for (size_t i = 0; i < words_.size(); ++i)
      if ((words_[i] & o.words_[i]) != 0) return true;
    return false;
  }

 private:
  std::vector<uint64_t> words_;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_glob(std::string_view p) {
  return p.find_first_of("*?") != std::string_view::npos;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

bool contains(const std::vector<std::string>& sorted_set, std::string_view s) {
  return std::binary_search(sorted_set.begin(), sorted_set.end(), s);
}

bool subset(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

bool intersect(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end() && j != b.end()) {
    if (*i == *j) return true;
    if (*i < *j)
      ++i;
    else
      ++j;
  }
  return false;
}

using PortRanges = std::vector<std::pair<uint16_t, uint16_t>>;

bool port_in(const PortRanges& ranges, uint16_t port) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [port](const auto& r) { return port >= r.first && port <= r.second; });
}

// ranges_cover: every port of `inner` is in `outer`.
bool ranges_cover(PortRanges outer, const PortRanges& inner) {
  std::sort(outer.begin(), outer.end());
  PortRanges merged;
  for (const auto& r : outer) {
    if (!merged.empty() && r.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  return std::all_of(inner.begin(), inner.end(), [&](const auto& r) {
    return std::any_of(merged.begin(), merged.end(),
                       [&](const auto& m) { return r.first >= m.first && r.second <= m.second; });
  });
}

// Selects the configured targets a `targets` entry names: "*", "tag:T", a glob or a name.
class TargetIndex {
 public:
  explicit TargetIndex(const std::vector<Target>& targets) : targets_(targets) {
    for (size_t i = 0; i < targets.size(); ++i) {
      by_name_.emplace(lower(targets[i].name), i);
      for (const auto& tag : targets[i].tags) by_tag_[tag].push_back(i);
    }
  }

  void select(std::string_view pattern, Bits* out) const {
    if (pattern == "*") {
      out->set_all(targets_.size());
    } else if (pattern.substr(0, 4) == "tag:") {
      // Tags compare exactly, as the engine compares them.
      if (auto it = by_tag_.find(std::string(pattern.substr(4))); it != by_tag_.end()) {
        for (size_t i : it->second) out->set(i);
      }
    } else if (is_glob(pattern)) {
      for (size_t i = 0; i < targets_.size(); ++i) {
        if (glob_match(pattern, targets_[i].name)) out->set(i);
      }
    } else if (auto it = by_name_.find(lower(pattern)); it != by_name_.end()) {
      out->set(it->second);
    }
  }

 private:
  const std::vector<Target>& targets_;
  std::unordered_map<std::string, size_t> by_name_;
  std::unordered_map<std::string, std::vector<size_t>> by_tag_;
};

// What lint knows about one rule, in forms that make set comparisons cheap.
struct Facts {
  const RuleConfig* rule = nullptr;
  bool never = false;           // reported as never matching: left out of pair checks
  bool all_principals = false;  // principals has "*"
  std::vector<std::string> principals, groups, cas, hosts;  // sorted, unique; groups lower case
  bool all_hosts = false;
  std::vector<std::string> host_globs;  // hosts split as the engine splits them
  std::vector<ssh::Cidr> host_cidrs;
  Bits selected;  // configured targets its `targets` select
  Bits matched;   // ... whose port is in `ports`
  std::optional<TimeWindow> window;
  std::unique_ptr<WeekMinutes> minutes;  // wall-clock minutes of the week; null = always
  std::vector<ssh::Cidr> from;
};

WeekMinutes week_minutes(const TimeWindow& w) {
  WeekMinutes m;
  std::vector<HourRange> hours = w.hours();
  if (hours.empty()) hours.push_back({0, 1440});
  for (int day = 0; day < 7; ++day) {
    if ((w.day_mask() & (1u << day)) == 0) continue;
    for (const HourRange& h : hours) {
      const int start = day * 1440 + h.start_min;
      const int length =
          h.end_min > h.start_min ? h.end_min - h.start_min : 1440 - h.start_min + h.end_min;
      for (int i = 0; i < length; ++i) m.set((start + i) % kMinutesPerWeek);
    }
  }
  return m;
}

bool same_zone(const Facts& a, const Facts& b) {
  return a.window && b.window && a.window->zone_name() == b.window->zone_name();
}

// window_covers: every instant in b's window is in a's.
bool window_covers(const Facts& a, const Facts& b) {
  if (!a.window || !b.window) return false;
  if (a.minutes == nullptr) return true;
  if (b.minutes == nullptr || !same_zone(a, b)) return false;
  return (*b.minutes & ~*a.minutes).none();
}

bool windows_may_overlap(const Facts& a, const Facts& b) {
  if (a.minutes == nullptr || b.minutes == nullptr || !same_zone(a, b)) return true;
  return (*a.minutes & *b.minutes).any();
}

bool cidr_covers(const ssh::Cidr& outer, const ssh::Cidr& inner) {
  return outer.base.v6 == inner.base.v6 && outer.prefix <= inner.prefix &&
         outer.contains(inner.base);
}

bool cidrs_meet(const ssh::Cidr& a, const ssh::Cidr& b) {
  return a.base.v6 == b.base.v6 && (a.contains(b.base) || b.contains(a.base));
}

bool ranges_meet(const PortRanges& a, const PortRanges& b) {
  for (const auto& x : a)
    for (const auto& y : b)
      if (x.first <= y.second && y.first <= x.second) return true;
  return false;
}

char fold(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// globs_meet: some text matches both patterns ('*' any run, '?' one character, ASCII
// case-insensitive, as glob_match). A walk over pairs of positions, each pair visited once.
bool globs_meet(std::string_view p, std::string_view q) {
  const size_t n = p.size(), m = q.size();
  std::vector<uint8_t> seen((n + 1) * (m + 1), 0);
  std::vector<std::pair<size_t, size_t>> todo{{0, 0}};
  while (!todo.empty()) {
    const auto [i, j] = todo.back();
    todo.pop_back();
    uint8_t& mark = seen[i * (m + 1) + j];
    if (mark != 0) continue;
    mark = 1;
    if (i == n && j == m) return true;
    const bool pstar = i < n && p[i] == '*';
    const bool qstar = j < m && q[j] == '*';
    if (pstar) {
      todo.emplace_back(i + 1, j);             // the star stands for nothing more
      if (j < m) todo.emplace_back(i, j + 1);  // it takes what q[j] stands for
    }
    if (qstar) {
      todo.emplace_back(i, j + 1);
      if (i < n) todo.emplace_back(i + 1, j);
    }
    if (!pstar && !qstar && i < n && j < m &&
        (p[i] == '?' || q[j] == '?' || fold(p[i]) == fold(q[j]))) {
      todo.emplace_back(i + 1, j + 1);
    }
  }
  return false;
}

// subjects_cover: everyone b's principals and groups select is selected by a.
bool subjects_cover(const Facts& a, const Facts& b) {
  if (a.all_principals) return true;
  if (b.all_principals) return false;
  return subset(b.principals, a.principals) && subset(b.groups, a.groups);
}

class Linter {
 public:
  explicit Linter(const Config& config) : config_(config), index_(config.targets) {}

  std::vector<Finding> run() {
    const size_t n = config_.rules.size();
    facts_.resize(n);
    for (size_t i = 0; i < n; ++i) gather(config_.rules[i], &facts_[i]);
    for (size_t i = 0; i < n; ++i) check_alone(facts_[i]);
    for (size_t j = 0; j < n; ++j) check_pairs(j);
    std::stable_sort(findings_.begin(), findings_.end(), [](const Finding& a, const Finding& b) {
      if (a.line != b.line) return a.line < b.line;
      return static_cast<int>(a.severity) < static_cast<int>(b.severity);
    });
    return std::move(findings_);
  }

 private:
  void add(const RuleConfig& r, Severity s, const char* code, std::string message) {
    findings_.push_back(Finding{s, r.id, r.line, code, std::move(message)});
  }

  void gather(const RuleConfig& r, Facts* f) {
    f->rule = &r;
    f->principals = sorted(r.principals);
    f->all_principals = contains(f->principals, "*");
    for (const auto& g : r.groups) f->groups.push_back(lower(g));  // names compare as the engine's
    f->groups = sorted(std::move(f->groups));
    f->cas = sorted(r.cas);
    f->hosts = sorted(r.hosts);
    f->all_hosts = contains(f->hosts, "*");
    for (const auto& h : r.hosts) {
      if (h.find('/') != std::string::npos || ssh::IpAddress::parse(h)) {
        if (auto cidr = ssh::Cidr::parse(h)) f->host_cidrs.push_back(*cidr);
      } else {
        f->host_globs.push_back(h);
      }
    }
    f->selected = Bits(config_.targets.size());
    f->matched = Bits(config_.targets.size());
    for (const auto& pattern : r.targets) index_.select(pattern, &f->selected);
    for (size_t t = 0; t < config_.targets.size(); ++t) {
      if (f->selected.test(t) && (r.ports.empty() || port_in(r.ports, config_.targets[t].port))) {
        f->matched.set(t);
      }
    }
    if (auto w = TimeWindow::parse(r.days, r.hours, r.timezone)) {
      f->window = std::move(*w);
      if (!f->window->always())
        f->minutes = std::make_unique<WeekMinutes>(week_minutes(*f->window));
    } else {
      // The loader refuses bad windows; should one get here, the engine cannot match it either.
      add(r, Severity::kError, "rule_never_matches",
          fmt::format("never matches: {}", w.error().message));
      f->never = true;
    }
    for (const auto& text : r.from) {
      if (auto c = ssh::Cidr::parse(text)) f->from.push_back(*c);
    }
  }

  void check_alone(Facts& f) {
    const RuleConfig& r = *f.rule;
    if (f.window && f.window->never()) {
      add(r, Severity::kError, "rule_never_matches",
          "never matches: its time window has no day (days selects none)");
      f.never = true;
    }
    if (!r.from.empty() && f.from.empty()) {
      add(r, Severity::kError, "rule_never_matches",
          "never matches: \"from\" lists no usable network");
      f.never = true;
    }
    if (r.hosts.empty()) {
      if (f.selected.none()) {
        add(r, Severity::kError, "rule_never_matches",
            fmt::format("never matches: targets [{}] select no configured [[target]] and it has "
                        "no hosts",
                        quoted(r.targets)));
        f.never = true;
      } else if (f.matched.none()) {
        add(r, Severity::kError, "rule_never_matches",
            fmt::format("never matches: ports {} exclude the port of every target it selects "
                        "({})",
                        ports_text(r.ports), selected_ports(f)));
        f.never = true;
      }
    }
    constexpr uint8_t kAttested = static_cast<uint8_t>(Factor::kPivAttestedTouch) |
                                  static_cast<uint8_t>(Factor::kFido2Attested);
    if (r.allow && r.factors != 0 && (r.factors & ~kAttested) == 0) {
      add(r, Severity::kWarning, "rule_attestation_only",
          fmt::format("no key can prove attestation yet: the rule accepts only {}, which "
                      "enrollment does not record, so it lets nobody in",
                      factor_names(r.factors)));
    }
    if (r.allow && f.all_principals && f.all_hosts) {
      add(r, Severity::kWarning, "rule_any_user_any_host",
          "any user may reach any host: principals = [\"*\"] and hosts = [\"*\"]");
    }
  }

  // host_ports: the ports a rule covers for `hosts` destinations: its ports, else 22 when it
  // allows and every port when it denies (as the engine decides).
  static PortRanges host_ports(const RuleConfig& r) {
    if (!r.ports.empty()) return r.ports;
    return r.allow ? PortRanges{{22, 22}} : PortRanges{{1, 65535}};
  }

  // covers: rule a matches every request rule b matches (proved selector by selector).
  bool covers(const Facts& a, const Facts& b) const {
    const RuleConfig& ra = *a.rule;
    const RuleConfig& rb = *b.rule;
    if ((rb.actions & ~ra.actions) != 0) return false;
    if (!subjects_cover(a, b)) return false;
    if (!a.cas.empty() && (b.cas.empty() || !subset(b.cas, a.cas))) return false;
    if (!b.matched.subset_of(a.matched)) return false;
    if (!b.hosts.empty()) {
      if (!a.all_hosts && a.hosts != b.hosts) return false;
      if (!ranges_cover(host_ports(ra), host_ports(rb))) return false;
    }
    if (!window_covers(a, b)) return false;
    if (!a.from.empty()) {
      if (b.from.empty()) return false;
      for (const auto& inner : b.from) {
        if (std::none_of(a.from.begin(), a.from.end(),
                         [&](const ssh::Cidr& outer) { return cidr_covers(outer, inner); }))
          return false;
      }
    }
    return true;
  }

  // destinations_meet: some destination is selected by both rules: a configured target whose
  // port both accept, or an unconfigured destination that both rules' `hosts` select (a host name
  // both globs match, an address in both networks or that a glob matches) on a port both accept.
  bool destinations_meet(const Facts& a, const Facts& b) const {
    if (a.matched.intersects(b.matched)) return true;
    const RuleConfig& ra = *a.rule;
    const RuleConfig& rb = *b.rule;
    if (ra.hosts.empty() || rb.hosts.empty()) return false;
    if (!ranges_meet(host_ports(ra), host_ports(rb))) return false;
    for (const auto& x : a.host_globs) {
      for (const auto& y : b.host_globs)
        if (globs_meet(x, y)) return true;
      for (const auto& y : b.host_cidrs)
        if (glob_match(x, y.base.to_string())) return true;
    }
    for (const auto& x : a.host_cidrs) {
      for (const auto& y : b.host_cidrs)
        if (cidrs_meet(x, y)) return true;
      for (const auto& y : b.host_globs)
        if (glob_match(y, x.base.to_string())) return true;
    }
    return false;
  }

  // overlap_except_subjects: every selector but the subjects lets some request match both rules.
  bool overlap_except_subjects(const Facts& a, const Facts& b) const {
    const RuleConfig& ra = *a.rule;
    const RuleConfig& rb = *b.rule;
    if ((ra.actions & rb.actions) == 0) return false;
    if (!destinations_meet(a, b)) return false;
    if (!a.cas.empty() && !b.cas.empty() && !intersect(a.cas, b.cas)) return false;
    if (!windows_may_overlap(a, b)) return false;
    if (!a.from.empty() && !b.from.empty()) {
      bool meet = false;
      for (const auto& x : a.from)
        for (const auto& y : b.from) meet = meet || cidrs_meet(x, y);
      if (!meet) return false;
    }
    return true;
  }

  const GroupConfig* group(const std::string& lower_name) const {
    for (const auto& g : config_.groups)
      if (lower(g.name) == lower_name) return &g;
    return nullptr;
  }

  // cas_allow_both: one certificate's CA may make a user a member of both groups.
  static bool cas_allow_both(const GroupConfig& x, const GroupConfig& y) {
    if (x.cas.empty() || y.cas.empty()) return true;
    return std::any_of(x.cas.begin(), x.cas.end(), [&](const std::string& c) {
      return std::find(y.cas.begin(), y.cas.end(), c) != y.cas.end();
    });
  }

  // open_membership: members come (also) from key ids or an extension, which any certificate
  // may carry: the group may share members with any other.
  static bool open_membership(const GroupConfig& g) {
    return !g.key_ids.empty() || !g.extension.empty();
  }

  // subjects_meet: some identity is provably selected by both rules' subjects.
  bool subjects_meet(const Facts& a, const Facts& b) const {
    if (a.all_principals || b.all_principals) return true;
    if (intersect(a.principals, b.principals) || intersect(a.groups, b.groups)) return true;
    if (principal_in_groups(a, b) || principal_in_groups(b, a)) return true;
    // Two groups that list the same principal (and whose CAs do not exclude each other).
    for (const auto& x : a.groups) {
      const GroupConfig* gx = group(x);
      if (gx == nullptr) continue;
      for (const auto& y : b.groups) {
        const GroupConfig* gy = group(y);
        if (gy == nullptr || !cas_allow_both(*gx, *gy)) continue;
        for (const auto& p : gx->principals)
          if (std::find(gy->principals.begin(), gy->principals.end(), p) != gy->principals.end())
            return true;
      }
    }
    return false;
  }

  // principal_in_groups: a principal of `a` is listed in the principals of a group of `b`.
  bool principal_in_groups(const Facts& a, const Facts& b) const {
    for (const auto& name : b.groups) {
      const GroupConfig* g = group(name);
      if (g == nullptr) continue;
      for (const auto& p : g->principals)
        if (contains(a.principals, p)) return true;
    }
    return false;
  }

  // subjects_may_meet: when subjects_meet cannot prove a shared identity, one that may exist:
  // returns who ("group dev and group contractors"), or "" when none can.
  std::string subjects_may_meet(const Facts& a, const Facts& b) const {
    for (const auto& x : a.groups) {
      const GroupConfig* gx = group(x);
      if (gx == nullptr) continue;
      for (const auto& y : b.groups) {
        const GroupConfig* gy = group(y);
        if (gy == nullptr || !cas_allow_both(*gx, *gy)) continue;
        if (open_membership(*gx) || open_membership(*gy))
          return fmt::format("group {} and group {}", gx->name, gy->name);
      }
    }
    // A principal of one rule may carry a certificate that puts it into a group of the other.
    const auto principal_group = [this](const Facts& p, const Facts& g,
                                        bool principal_first) -> std::string {
      for (const auto& name : g.groups) {
        const GroupConfig* gg = group(name);
        if (gg == nullptr || !open_membership(*gg) || p.principals.empty()) continue;
        return principal_first
                   ? fmt::format("principal {} and group {}", p.principals.front(), gg->name)
                   : fmt::format("group {} and principal {}", gg->name, p.principals.front());
      }
      return {};
    };
    if (auto who = principal_group(a, b, true); !who.empty()) return who;
    return principal_group(b, a, false);
  }

  void check_pairs(size_t j) {
    const Facts& b = facts_[j];
    if (b.never) return;
    const RuleConfig& rb = *b.rule;
    if (rb.allow) {
      for (size_t i = 0; i < facts_.size(); ++i) {
        const Facts& a = facts_[i];
        if (i == j || a.never || a.rule->allow || !covers(a, b)) continue;
        add(rb, Severity::kError, "rule_never_allows",
            fmt::format("never allows: rule {} (line {}) denies everything it matches", a.rule->id,
                        a.rule->line));
        return;
      }
    }
    for (size_t i = 0; i < j; ++i) {
      const Facts& a = facts_[i];
      if (a.never || a.rule->allow != rb.allow || !covers(a, b)) continue;
      add(rb, Severity::kWarning, "rule_shadowed",
          fmt::format("never decides: rule {} (line {}) comes first and {} everything it matches",
                      a.rule->id, a.rule->line, rb.allow ? "allows" : "denies"));
      break;
    }
    if (!rb.allow) return;
    // Shared requests: one warning per allow rule for the deny rules that provably share some,
    // one note per allow rule for those that share some if one user is in groups of both; each
    // names the deny rules (a few, then a count).
    std::vector<const RuleConfig*> denies, maybe;
    std::string who;  // why the first of `maybe` may share a user
    for (size_t i = 0; i < facts_.size(); ++i) {
      const Facts& a = facts_[i];
      if (a.never || a.rule->allow || !overlap_except_subjects(b, a)) continue;
      if (subjects_meet(b, a)) {
        denies.push_back(a.rule);
        continue;
      }
      std::string may = subjects_may_meet(b, a);
      if (may.empty()) continue;
      if (maybe.empty()) who = std::move(may);
      maybe.push_back(a.rule);
    }
    if (maybe.size() == 1) {
      add(rb, Severity::kNote, "rule_may_overlap_deny",
          fmt::format("rule {} allows and {} denies some of the same requests to {}, which may be "
                      "the same user (group membership by key id or certificate extension); for "
                      "such a user deny wins",
                      rb.id, rule_list(maybe), who));
    } else if (!maybe.empty()) {
      add(rb, Severity::kNote, "rule_may_overlap_deny",
          fmt::format("rule {} allows and {} deny some of the same requests to subjects that may "
                      "be the same user (rule {}: {}; group membership by key id or certificate "
                      "extension); for such a user deny wins",
                      rb.id, rule_list(maybe), maybe.front()->id, who));
    }
    if (denies.empty()) return;
    add(rb, Severity::kWarning, "rule_overlaps_deny",
        fmt::format("rule {} allows and {} {} some of the same requests; deny wins", rb.id,
                    rule_list(denies), denies.size() == 1 ? "denies" : "deny"));
  }

  // rule_list: "rule a (line 3)", "rules a (line 3), b (line 9), c (line 12) and 2 more".
  static std::string rule_list(const std::vector<const RuleConfig*>& rules) {
    constexpr size_t kShown = 3;
    std::string names;
    for (size_t i = 0; i < rules.size() && i < kShown; ++i) {
      names += fmt::format("{}{} (line {})", i == 0 ? "" : ", ", rules[i]->id, rules[i]->line);
    }
    if (rules.size() > kShown) names += fmt::format(" and {} more", rules.size() - kShown);
    return fmt::format("{} {}", rules.size() == 1 ? "rule" : "rules", names);
  }

  static std::string quoted(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += fmt::format("{}\"{}\"", out.empty() ? "" : ", ", s);
    return out;
  }

  static std::string ports_text(const PortRanges& ports) {
    std::string out;
    for (const auto& [lo, hi] : ports) {
      if (!out.empty()) out += ", ";
      out += lo == hi ? std::to_string(lo) : fmt::format("{}-{}", lo, hi);
    }
    return out;
  }

  // selected_ports lists the ports of the selected targets: "db1:22, db2:2222" (at most three).
  std::string selected_ports(const Facts& f) const {
    std::string out;
    size_t shown = 0, total = 0;
    for (size_t t = 0; t < config_.targets.size(); ++t) {
      if (!f.selected.test(t)) continue;
      if (++total > 3) continue;
      out += fmt::format("{}{}:{}", shown++ == 0 ? "" : ", ", config_.targets[t].name,
                         config_.targets[t].port);
    }
    if (total > 3) out += fmt::format(" and {} more", total - 3);
    return out;
  }

  const Config& config_;
  TargetIndex index_;
  std::vector<Facts> facts_;
  std::vector<Finding> findings_;
};

}  // namespace

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::kError:
      return "error";
    case Severity::kWarning:
      return "warning";
    case Severity::kNote:
      return "note";
  }
  return "error";
}

std::vector<Finding> lint(const Config& config) {
  return Linter(config).run();
}

std::string format_finding(std::string_view file, const Finding& f, bool with_severity) {
  return fmt::format("{}:{}: {}{}[{}] {} ({})", file, f.line,
                     with_severity ? severity_name(f.severity) : "", with_severity ? ": " : "",
                     f.rule_id, f.message, f.code);
}

Result<void> check_lint(const Config& config, std::string_view file,
                        std::vector<Finding>* findings) {
  std::vector<Finding> all = lint(config);
  std::string errors;
  size_t count = 0;
  for (const auto& f : all) {
    if (f.severity != Severity::kError) continue;
    if (count++ > 0) errors += "; ";
    errors += format_finding(file, f, false);
  }
  if (findings != nullptr) *findings = std::move(all);
  if (count > 0) return fail("policy_invalid", std::move(errors));
  return {};
}

}  // namespace touchgate::policy
