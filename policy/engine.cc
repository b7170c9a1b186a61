// The policy engine (see engine.h). Compiled once per configuration; decide() only reads.
#include "policy/engine.h"

#include <arpa/inet.h>

#include <algorithm>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "policy/address.h"
#include "policy/timewindow.h"
#include "ssh/reader.h"

namespace touchgate::policy {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

char fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool has_glob(std::string_view s) { return s.find_first_of("*?") != std::string_view::npos; }

// canonical_host: lower case; numeric addresses in their canonical text form.
std::string canonical_host(std::string_view host) {
  if (auto ip = ssh::IpAddress::parse(host)) return ip->to_string();
  return lower(host);
}

// legacy_numeric: text the C resolver takes for an IPv4 address although it is not a dotted
// quad (hex, octal, fewer parts: "0x0a010203", "012.1.2.3", "10.1").
bool legacy_numeric(const std::string& name) {
  in_addr a{};
  return inet_aton(name.c_str(), &a) != 0;
}

// ca_file_name: a CA file with several keys names them "<name>#<n>"; rules and groups name the
// file.
std::string_view ca_file_name(const std::string& ca_name) {
  return std::string_view(ca_name).substr(0, ca_name.find('#'));
}

std::string host_port_key(std::string_view host, uint16_t port) {
  return fmt::format("{}\n{}", canonical_host(host), port);
}

bool intersects(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] & b[i]) return true;
  }
  return false;
}

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// A destination the client may reach through a decision.
struct Destination {
  const Target* target = nullptr;  // configured
  size_t index = 0;                // into config.targets when configured
  std::string name;                // target name or canonical host
  std::string host;
  uint16_t port = 0;
  std::optional<ssh::IpAddress> ip;  // numeric destinations (for hosts CIDRs)
};

}  // namespace

struct Policy::Compiled {
  struct Group {
    std::vector<std::string> principals;  // sorted
    std::vector<std::string> key_ids;     // globs
    std::string extension;
    std::string extension_value;
    std::vector<std::string> cas;  // empty = any
  };
  struct Rule {
    const RuleConfig* cfg = nullptr;
    bool any_principal = false;
    std::vector<std::string> principals;  // sorted
    std::vector<uint64_t> group_bits;
    bool has_groups = false;
    std::vector<std::string> host_globs;  // lower case
    std::vector<ssh::Cidr> host_cidrs;
    std::vector<ssh::Cidr> from;
    std::optional<TimeWindow> window;  // absent = always
    std::chrono::seconds max_age{0};
  };
  std::vector<Group> groups;
  std::vector<Rule> rules;
  std::vector<std::vector<uint32_t>> rules_for_target;  // ascending rule indices
  std::vector<uint32_t> host_rules;                     // rules with hosts, ascending
  std::unordered_map<std::string, uint32_t> by_name;    // lower-case name → target index
  std::unordered_map<std::string, uint32_t> by_address; // host\nport → first target index
};

Policy::Policy(std::shared_ptr<const Config> config, std::unique_ptr<const Compiled> compiled)
    : config_(std::move(config)), compiled_(std::move(compiled)) {}
Policy::~Policy() = default;

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point: linear in practice, never exponential.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || fold(pattern[p]) == fold(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::vector<std::pair<std::string, std::string>> extension_values(
    const std::vector<ssh::CertOption>& extensions) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : extensions) {
    if (e.data.empty()) {
      out.emplace_back(e.name, std::string());
      continue;
    }
    ssh::Reader r(e.data);
    std::string_view value;
    if (r.text(&value) && r.empty()) out.emplace_back(e.name, std::string(value));
  }
  return out;
}

std::shared_ptr<const Policy> Policy::compile(std::shared_ptr<const Config> config) {
  auto c = std::make_unique<Compiled>();
  const Config& cfg = *config;
  for (const auto& g : cfg.groups) {
    Compiled::Group cg;
    cg.principals = g.principals;
    std::sort(cg.principals.begin(), cg.principals.end());
    cg.key_ids = g.key_ids;
    cg.extension = g.extension;
    cg.extension_value = g.extension_value;
    cg.cas = g.cas;
    c->groups.push_back(std::move(cg));
  }
  const size_t words = (cfg.groups.size() + 63) / 64;

  for (uint32_t i = 0; i < cfg.targets.size(); ++i) {
    c->by_name.emplace(lower(cfg.targets[i].name), i);
    c->by_address.emplace(host_port_key(cfg.targets[i].host, cfg.targets[i].port), i);
  }
  std::unordered_map<std::string, std::vector<uint32_t>> by_tag;
  for (uint32_t i = 0; i < cfg.targets.size(); ++i) {
    for (const auto& tag : cfg.targets[i].tags) by_tag[tag].push_back(i);
  }
  c->rules_for_target.resize(cfg.targets.size());

  for (uint32_t ri = 0; ri < cfg.rules.size(); ++ri) {
    const RuleConfig& r = cfg.rules[ri];
    Compiled::Rule cr;
    cr.cfg = &r;
    for (const auto& p : r.principals) {
      if (p == "*") {
        cr.any_principal = true;
      } else {
        cr.principals.push_back(p);
      }
    }
    std::sort(cr.principals.begin(), cr.principals.end());
    cr.group_bits.assign(words, 0);
    for (const auto& name : r.groups) {
      for (size_t gi = 0; gi < cfg.groups.size(); ++gi) {
        if (iequals(cfg.groups[gi].name, name)) {
          cr.group_bits[gi / 64] |= uint64_t{1} << (gi % 64);
          cr.has_groups = true;
        }
      }
    }
    for (const auto& h : r.hosts) {
      if (h.find('/') != std::string::npos || ssh::IpAddress::parse(h)) {
        if (auto cidr = ssh::Cidr::parse(h)) cr.host_cidrs.push_back(*cidr);
      } else {
        cr.host_globs.push_back(lower(h));
      }
    }
    for (const auto& f : r.from) {
      if (auto cidr = ssh::Cidr::parse(f)) cr.from.push_back(*cidr);
    }
    if (!r.days.empty() || !r.hours.empty() || !r.timezone.empty()) {
      // The loader checked the window; should the zone database have vanished since, the rule
      // has no window and rule_matches refuses it (fail closed).
      if (auto w = TimeWindow::parse(r.days, r.hours, r.timezone)) cr.window = std::move(*w);
    }
    cr.max_age = r.max_age.value_or(cfg.mfa.max_age);

    // Which configured targets does it select?
    std::vector<uint8_t> selected(cfg.targets.size(), 0);
    for (const auto& sel : r.targets) {
      if (sel.rfind("tag:", 0) == 0) {
        auto it = by_tag.find(sel.substr(4));
        if (it != by_tag.end()) {
          for (uint32_t ti : it->second) selected[ti] = 1;
        }
      } else if (has_glob(sel)) {
        for (uint32_t ti = 0; ti < cfg.targets.size(); ++ti) {
          if (!selected[ti] && glob_match(sel, cfg.targets[ti].name)) selected[ti] = 1;
        }
      } else {
        auto it = c->by_name.find(lower(sel));
        if (it != c->by_name.end()) selected[it->second] = 1;
      }
    }
    for (uint32_t ti = 0; ti < cfg.targets.size(); ++ti) {
      if (selected[ti]) c->rules_for_target[ti].push_back(ri);
    }
    if (!r.hosts.empty()) c->host_rules.push_back(ri);
    c->rules.push_back(std::move(cr));
  }
  return std::make_shared<const Policy>(std::move(config), std::move(c));
}

ResolvedIdentity Policy::resolve(Identity identity) const {
  ResolvedIdentity r;
  r.identity = std::move(identity);
  const auto& id = r.identity;
  r.group_bits.assign((compiled_->groups.size() + 63) / 64, 0);
  const std::string_view ca_file = ca_file_name(id.ca_name);
  for (size_t gi = 0; gi < compiled_->groups.size(); ++gi) {
    const auto& g = compiled_->groups[gi];
    // A group scoped to CAs takes members only from their certificates (another SSO cannot
    // write itself into it through an extension).
    if (!g.cas.empty() && std::find(g.cas.begin(), g.cas.end(), ca_file) == g.cas.end()) continue;
    bool member = std::binary_search(g.principals.begin(), g.principals.end(), id.principal);
    for (size_t k = 0; !member && k < g.key_ids.size(); ++k) {
      member = glob_match(g.key_ids[k], id.key_id);
    }
    if (!member && !g.extension.empty()) {
      for (const auto& [name, value] : id.extensions) {
        if (name != g.extension) continue;
        std::string_view rest = value;
        while (!member) {
          size_t comma = rest.find(',');
          std::string_view item = rest.substr(0, comma);
          while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
          while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
          if (item == g.extension_value) member = true;
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
      }
    }
    if (member) {
      r.group_bits[gi / 64] |= uint64_t{1} << (gi % 64);
      r.group_names.push_back(config_->groups[gi].name);
    }
  }
  return r;
}

namespace {

struct MatchContext {
  const Config& cfg;
  const ResolvedIdentity& who;
  const Request& req;
  const Destination& dest;
};

// Without `ports`, a rule covers the port of a configured target, and for `hosts` destinations
// port 22 if it allows and every port if it denies (a deny must not be narrower than it reads).
bool port_selected(const RuleConfig& r, uint16_t port, bool configured) {
  if (r.ports.empty()) return configured || !r.allow || port == 22;
  return std::any_of(r.ports.begin(), r.ports.end(),
                     [port](const auto& range) { return port >= range.first && port <= range.second; });
}

std::string ports_text(const RuleConfig& r) {
  if (r.ports.empty()) return r.allow ? "22" : "1-65535";
  std::vector<std::string> parts;
  for (const auto& [lo, hi] : r.ports) {
    parts.push_back(lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi));
  }
  return join(parts);
}

}  // namespace

// rule_matches checks one rule's selectors other than the target selection (done by the
// caller), cheapest first. With why, the first failing selector is described.
static bool rule_matches(const Policy::Compiled::Rule& cr, const MatchContext& m, std::string* why) {
  const RuleConfig& r = *cr.cfg;
  const Identity& id = m.who.identity;
  if ((r.actions & static_cast<uint8_t>(m.req.action)) == 0) {
    if (why) {
      *why = fmt::format("allows only {}, not {}", action_names(r.actions),
                         action_name(m.req.action));
    }
    return false;
  }
  if (!port_selected(r, m.dest.port, m.dest.target != nullptr)) {
    if (why) *why = fmt::format("port {} is not in ports {}", m.dest.port, ports_text(r));
    return false;
  }
  bool subject = cr.any_principal ||
                 std::binary_search(cr.principals.begin(), cr.principals.end(), id.principal) ||
                 (cr.has_groups && intersects(cr.group_bits, m.who.group_bits));
  if (!subject) {
    if (why) {
      std::string groups = m.who.group_names.empty() ? "no group"
                                                     : "groups " + join(m.who.group_names);
      if (r.groups.empty()) {
        *why = fmt::format("{} is not among principals {}", id.principal, join(r.principals));
      } else if (r.principals.empty()) {
        *why = fmt::format("{} is not in groups {} (member of {})", id.principal,
                           join(r.groups), groups);
      } else {
        *why = fmt::format("{} is not among principals {} nor in groups {} (member of {})",
                           id.principal, join(r.principals), join(r.groups), groups);
      }
    }
    return false;
  }
  const std::string_view ca_file = ca_file_name(id.ca_name);
  if (!r.cas.empty() && std::find(r.cas.begin(), r.cas.end(), ca_file) == r.cas.end()) {
    if (why) {
      *why = fmt::format("the certificate's CA {} is not among cas {}",
                         id.ca_name.empty() ? "(none)" : id.ca_name, join(r.cas));
    }
    return false;
  }
  if (!cr.from.empty()) {
    if (!id.source || !ssh::cidr_list_contains(cr.from, *id.source)) {
      if (why) {
        *why = id.source ? fmt::format("source {} is not in from {}", id.source->to_string(),
                                       join(r.from))
                         : fmt::format("no source address to check against from {}", join(r.from));
      }
      return false;
    }
  }
  if (cr.window && !cr.window->contains(m.req.at)) {
    if (why) {
      *why = fmt::format("{} is outside {}", cr.window->local_description(m.req.at),
                         cr.window->describe());
    }
    return false;
  }
  if (!cr.window && (!r.days.empty() || !r.hours.empty() || !r.timezone.empty())) {
    if (why) *why = "its time window cannot be evaluated (time zone database unavailable)";
    return false;
  }
  if (why) *why = "matches";
  return true;
}

static bool host_selected(const Policy::Compiled::Rule& cr, const Destination& d) {
  if (d.ip) {
    for (const auto& c : cr.host_cidrs) {
      if (c.contains(*d.ip)) return true;
    }
  }
  for (const auto& g : cr.host_globs) {
    if (glob_match(g, d.name)) return true;
  }
  return false;
}

Decision Policy::decide(const ResolvedIdentity& who, const Request& req, bool explain) const {
  const Config& cfg = *config_;
  const Compiled& c = *compiled_;
  Decision d;
  d.port = req.port;

  // 1. The destination. The decision is made on the canonical form of what the gateway will
  // connect to: brackets stripped, numeric addresses in their one text form (an IPv4-mapped IPv6
  // address is the IPv4 address), names in lower case. Legacy numeric forms that the resolver
  // would still turn into an address ("0x0a010203", "10.1") are not names: refused.
  Destination dest;
  bool valid_host = true;
  {
    std::string_view host = req.host;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    const uint16_t port = req.port;
    const Target* t = nullptr;
    auto it = req.as_host ? c.by_name.end() : c.by_name.find(lower(host));
    if (it != c.by_name.end()) {
      t = &cfg.targets[it->second];
      dest.index = it->second;
    } else if (!req.as_host) {
      auto jt = c.by_address.find(host_port_key(host, port));
      if (jt != c.by_address.end()) {
        t = &cfg.targets[jt->second];
        dest.index = jt->second;
      }
    }
    if (t != nullptr) {
      dest.target = t;
      dest.name = t->name;
      dest.host = t->host;
      dest.port = t->port;
    } else if (auto ip = ssh::IpAddress::parse(host)) {
      dest.ip = *ip;
      dest.name = ip->to_string();
      dest.host = dest.name;
      dest.port = port;
    } else {
      dest.name = lower(host);
      dest.host = dest.name;
      dest.port = port;
      valid_host = host.find(':') == std::string_view::npos && !host.empty() &&
                   parse_target_address(host).has_value() && !legacy_numeric(dest.name);
    }
  }
  d.target = dest.target;
  d.target_name = dest.name;
  d.host = dest.host;
  d.port = dest.port;
  const std::string where =
      dest.target != nullptr ? fmt::format("{} ({})", dest.name, dest.target->address())
                             : (dest.host.find(':') != std::string::npos
                                    ? fmt::format("[{}]:{}", dest.host, dest.port)
                                    : fmt::format("{}:{}", dest.host, dest.port));
  const std::string& user = who.identity.principal;

  if (dest.target == nullptr) {
    // Only rules with hosts can select an unconfigured destination; and its name must be a host
    // name or address we would connect to.
    bool any = false;
    if (valid_host) {
      for (uint32_t ri : c.host_rules) {
        if (host_selected(c.rules[ri], dest)) {
          any = true;
          break;
        }
      }
    }
    if (!any) {
      d.code = "target_unknown";
      d.explanation = fmt::format("{} is not a configured target", where);
      if (explain) {
        for (const auto& cr : c.rules) {
          d.trace.push_back(RuleTrace{cr.cfg->id, cr.cfg->line, cr.cfg->allow, false,
                                      fmt::format("does not select {}", where)});
        }
      }
      return d;
    }
  }

  MatchContext m{cfg, who, req, dest};
  const std::vector<uint32_t>& candidates =
      dest.target != nullptr ? c.rules_for_target[dest.index] : c.host_rules;
  const Compiled::Rule* allow = nullptr;
  const Compiled::Rule* deny = nullptr;
  if (!explain) {
    for (uint32_t ri : candidates) {
      const auto& cr = c.rules[ri];
      if (cr.cfg->allow && allow != nullptr) continue;  // only a deny can change the outcome now
      if (dest.target == nullptr && !host_selected(cr, dest)) continue;
      if (!rule_matches(cr, m, nullptr)) continue;
      if (!cr.cfg->allow) {
        deny = &cr;
        break;
      }
      allow = &cr;
    }
  } else {
    size_t next = 0;
    for (uint32_t ri = 0; ri < c.rules.size(); ++ri) {
      const auto& cr = c.rules[ri];
      RuleTrace tr{cr.cfg->id, cr.cfg->line, cr.cfg->allow, false, {}};
      bool selects = next < candidates.size() && candidates[next] == ri;
      if (selects) ++next;
      if (selects && dest.target == nullptr && !host_selected(cr, dest)) selects = false;
      if (!selects) {
        tr.why = dest.target != nullptr && cr.cfg->targets.empty()
                     ? fmt::format("selects only unconfigured hosts, not target {}", dest.name)
                     : fmt::format("does not select {}", dest.target != nullptr ? dest.name : where);
      } else {
        tr.matched = rule_matches(cr, m, &tr.why);
        if (tr.matched && !cr.cfg->allow && deny == nullptr) deny = &cr;
        if (tr.matched && cr.cfg->allow && allow == nullptr) allow = &cr;
      }
      d.trace.push_back(std::move(tr));
    }
  }

  if (deny != nullptr) {
    d.effect = Effect::kDeny;
    d.code = "policy_denied";
    d.rule_id = deny->cfg->id;
    d.rule_line = deny->cfg->line;
    d.explanation = fmt::format("rule {} denies {} access to {}", deny->cfg->id, user, where);
    return d;
  }
  if (allow != nullptr) {
    d.effect = Effect::kAllow;
    d.code = "policy_allowed";
    d.rule_id = allow->cfg->id;
    d.rule_line = allow->cfg->line;
    d.factors = allow->cfg->factors;
    d.max_age = allow->max_age;
    d.max_session = allow->cfg->max_session;
    d.remote_user = allow->cfg->remote_user.empty() ? who.identity.principal : allow->cfg->remote_user;
    d.record_input = allow->cfg->record_input;
    if (allow->window) {
      d.window_closes = allow->window->closes_after(req.at);
      d.window = allow->window->describe();
    }
    d.explanation = fmt::format("rule {} allows {} to reach {} with {}", allow->cfg->id, user,
                                where, factor_names(allow->cfg->factors));
    return d;
  }
  d.code = "policy_no_match";
  d.explanation = fmt::format("no rule allows {} to reach {} (deny by default)", user, where);
  return d;
}

}  // namespace touchgate::policy
