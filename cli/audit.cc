// touchgate audit verify|search|show|tail|export|stats|replay. Trust boundary: the audit log's
// files (read with audit/'s strict scanner; values are shown with control characters escaped,
// since users and clients choose some of them, e.g. the login name a client asked for) and the
// recordings replay plays (cli/replay.h).
#include "cli/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "audit/checkpoint.h"
#include "audit/line.h"
#include "audit/query.h"
#include "audit/verify.h"
#include "cli/app.h"
#include "cli/context.h"
#include "cli/format.h"
#include "cli/replay.h"
#include "policy/config.h"
#include "ssh/key.h"
#include "ssh/unique_fd.h"

namespace touchgate::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kSkipNote =
    "Records that do not parse are skipped with a warning; 'touchgate audit verify' judges the "
    "log's integrity.";

// Set by SIGINT/SIGTERM while `tail -f` or `replay` runs.
std::atomic<bool> g_stop{false};

void on_stop_signal(int) {
  g_stop.store(true);
}

int usage(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "touchgate: %s\nRun 'touchgate audit %s --help' for usage.\n",
               message.c_str(), command.c_str());
  return kExitUsage;
}

void print(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

void warn(const std::string& message) {
  std::fprintf(stderr, "touchgate: warning: %s\n", message.c_str());
}

// printable escapes what a terminal would act on: C0 controls and DEL as \xNN, C1 controls and
// the bidirectional overrides as \uXXXX. newlines_ok keeps '\n' (multi-line values of `show`).
std::string printable(std::string_view s, bool newlines_ok = false) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && !(newlines_ok && c == '\n')) || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(s[i + 1]));
      ++i;
    } else if (c == 0xe2 && i + 2 < s.size() &&
               ((s[i + 1] == '\x80' && s[i + 2] >= '\xa8' && s[i + 2] <= '\xae') ||
                (s[i + 1] == '\x81' && s[i + 2] >= '\xa6' && s[i + 2] <= '\xa9'))) {
      const unsigned cp = 0x2000 + (static_cast<unsigned char>(s[i + 1]) & 0x3f) * 64 +
                          (static_cast<unsigned char>(s[i + 2]) & 0x3f);
      out += fmt::format("\\u{:04x}", cp);
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// cell is value made printable, cut to width characters ("…" marks a cut), padded to width.
std::string cell(std::string_view value, size_t width) {
  const std::string text = printable(value);
  std::string out;
  size_t chars = 0;
  size_t i = 0;
  for (; i < text.size(); ++chars) {
    size_t n = 1;
    while (i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xc0) == 0x80) ++n;
    if (chars + 1 == width && i + n < text.size()) {
      out += "\xe2\x80\xa6";  // …
      ++chars;
      i = text.size();
      break;
    }
    out.append(text, i, n);
    i += n;
  }
  if (chars < width) out.append(width - chars, ' ');
  return out;
}

std::string value_or_dash(const audit::ParsedLine& p, std::string_view name) {
  const audit::Field* f = p.find(name);
  if (f == nullptr) return "-";
  return f->kind == audit::ValueKind::kString ? audit::unescape_string(f->raw)
                                              : std::string(f->raw);
}

// The record table of search and tail: fixed columns, one line per record.
struct Column {
  const char* title;
  const char* field;
  size_t width;  // 0: the last column, as long as it is (up to 60 characters)
};
constexpr Column kColumns[] = {
    {"TIME", "ts", 20},         {"EVENT", "event", 19},    {"CONN", "conn", 20},
    {"USER", "user", 16},       {"TARGET", "target", 20},  {"OUTCOME", "outcome", 7},
    {"REASON", "reason", 0},
};

std::string table_header() {
  std::string line;
  for (const auto& c : kColumns) line += c.width == 0 ? c.title : cell(c.title, c.width) + "  ";
  return line + "\n";
}

std::string table_row(const audit::ParsedLine& p) {
  std::string line;
  for (const auto& c : kColumns) {
    std::string value;
    if (std::string_view(c.field) == "ts") {
      value = std::string(p.ts.substr(0, 19)) + "Z";  // to the second
    } else if (std::string_view(c.field) == "event") {
      value = std::string(p.event);
    } else {
      value = value_or_dash(p, c.field);
    }
    if (c.width == 0) {
      std::string last = cell(value, 60);
      while (!last.empty() && last.back() == ' ') last.pop_back();
      line += last;
    } else {
      line += cell(value, c.width) + "  ";
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line + "\n";
}

// is_chain_field: seq, ts, prev, event, hash (shown in the block header or not at all).
bool is_chain_field(std::string_view name) {
  return name == "seq" || name == "ts" || name == "prev" || name == "event" || name == "hash";
}

// show_block renders one record for `show` and `tail`-like reading: a header line, then every
// field; a value with newlines or longer than a line (`proof`, `signed_message`) follows on
// lines of its own, as it is.
std::string show_block(const audit::ParsedLine& p) {
  std::string out = fmt::format("{}  {}  seq {}\n", p.ts, p.event, p.seq);
  for (const auto& f : p.fields) {
    if (is_chain_field(f.name)) continue;
    const std::string value =
        f.kind == audit::ValueKind::kString ? audit::unescape_string(f.raw) : std::string(f.raw);
    if (value.find('\n') == std::string::npos && value.size() <= 96) {
      out += fmt::format("  {:<16} {}\n", f.name, printable(value));
      continue;
    }
    out += fmt::format("  {}:\n", f.name);
    std::string_view rest = value;
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      out += "    " + printable(rest.substr(0, nl)) + "\n";
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }
  return out + "\n";
}

// csv_field quotes a value as RFC 4180 says when it holds a comma, a quote or a line break.
std::string csv_field(std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

constexpr const char* kCsvCommon[] = {"conn", "user", "target", "outcome", "reason"};

std::string csv_row(const audit::ParsedLine& p) {
  std::string row = fmt::format("{},{},{}", p.seq, p.ts, p.event);
  for (const char* name : kCsvCommon) {
    const audit::Field* f = p.find(name);
    row += ',';
    if (f != nullptr) {
      row += csv_field(f->kind == audit::ValueKind::kString ? audit::unescape_string(f->raw)
                                                             : std::string(f->raw));
    }
  }
  // The other fields as a JSON object; the log's string escaping is valid JSON as it is.
  std::string rest = "{";
  for (const auto& f : p.fields) {
    if (is_chain_field(f.name)) continue;
    if (std::find_if(std::begin(kCsvCommon), std::end(kCsvCommon),
                     [&](const char* c) { return f.name == c; }) != std::end(kCsvCommon))
      continue;
    if (rest.size() > 1) rest += ',';
    rest += fmt::format("\"{}\":", f.name);
    if (f.kind == audit::ValueKind::kString) {
      rest += '"';
      rest += f.raw;
      rest += '"';
    } else {
      rest += f.raw;
    }
  }
  rest += '}';
  row += ',';
  row += csv_field(rest);
  row += "\r\n";
  return row;
}

// report_skipped prints one warning per segment with skipped lines. It returns false when
// nothing could be read at all (there were lines, none parsed).
bool report_skipped(const audit::Cursor& cursor) {
  for (const auto& s : cursor.skipped()) {
    std::string where = s.first_line > 0 ? fmt::format(" (first at line {}: {})", s.first_line,
                                                       s.first_reason)
                                         : fmt::format(" ({})", s.first_reason);
    if (s.count == 0) {
      warn(fmt::format("{}: skipped{}", s.file, where));
    } else {
      warn(fmt::format("{}: {} line{} skipped, not a record{}", s.file, s.count,
                       s.count == 1 ? "" : "s", where));
    }
  }
  if (!cursor.skipped().empty()) warn("run 'touchgate audit verify' to check the log");
  return cursor.records() > 0 || cursor.skipped().empty();
}

int nothing_read(const std::filesystem::path& dir) {
  return report(Error{"audit_unreadable",
                      fmt::format("{}: no record of the audit log could be read", dir.string())});
}

// open_log checks that dir is an audit directory with at least one segment.
Result<void> open_log(const std::filesystem::path& dir) {
  if (auto r = audit::check_audit_dir(dir); !r) return r;
  if (audit::list_segments(dir).empty()) {
    return fail("audit_empty",
                fmt::format("{}: no audit log here (no audit-*.jsonl segment)", dir.string()));
  }
  return {};
}

std::string counted(uint64_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

// Rows sorted by count (most first), then by name.
template <typename Map, typename Count>
std::vector<typename Map::const_iterator> by_count(const Map& m, Count count) {
  std::vector<typename Map::const_iterator> out;
  for (auto it = m.begin(); it != m.end(); ++it) out.push_back(it);
  std::stable_sort(out.begin(), out.end(),
                   [&](const auto& a, const auto& b) { return count(*a) > count(*b); });
  return out;
}

void stop_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

// A recording as its recording_closed record describes it.
struct RecordingEntry {
  std::string conn, user, target, ts, file, sha256;
  uint64_t channel = 0;
  uint64_t size = 0;
  bool capped = false;
};

bool parse_decimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  *out = std::stoull(std::string(s));
  return true;
}

RecordingEntry recording_entry(const audit::ParsedLine& p) {
  RecordingEntry e;
  e.conn = audit::field_text(p, "conn");
  e.user = audit::field_text(p, "user");
  e.target = audit::field_text(p, "target");
  e.ts = std::string(p.ts);
  e.file = audit::field_text(p, "file");
  e.sha256 = audit::field_text(p, "sha256");
  parse_decimal(audit::field_text(p, "channel"), &e.channel);
  parse_decimal(audit::field_text(p, "size"), &e.size);
  e.capped = audit::field_text(p, "capped") == "true";
  return e;
}

// What `replay ID` names: a recording file, or a connection (full id or number) and maybe a
// channel.
struct ReplayId {
  std::filesystem::path file;
  std::string conn;
  std::optional<uint64_t> channel;
};

Result<ReplayId> parse_replay_id(const std::string& text) {
  ReplayId id;
  if (text.find('/') != std::string::npos || text.ends_with(".cast")) {
    id.file = std::filesystem::absolute(text).lexically_normal();
    return id;
  }
  id.conn = text;
  if (const size_t colon = text.rfind(':'); colon != std::string::npos) {
    uint64_t channel = 0;
    if (!parse_decimal(std::string_view(text).substr(colon + 1), &channel)) {
      return fail("usage",
                  fmt::format("{}: the channel after ':' must be a number", printable(text)));
    }
    id.channel = channel;
    id.conn = text.substr(0, colon);
  }
  if (id.conn.empty()) return fail("usage", "ID: a connection id, ID:CHANNEL or a file is needed");
  return id;
}

}  // namespace

AuditCommand::AuditCommand(CLI::App& app) {
  audit_ = app.add_subcommand("audit", "Verify, search and follow the audit log");
  audit_->require_subcommand(0, 1);
  audit_->footer(
      "The log is read from --dir DIR, else from the [audit] dir of the configuration (-f FILE). "
      "See touchgate(8) and docs/audit-format.md.");

  const auto add_dir = [this](CLI::App* c) {
    c->add_option("--dir", dir_, "The audit directory (default: [audit] dir of the configuration)")
        ->option_text("DIR");
  };

  verify_ = audit_->add_subcommand(
      "verify", "Check every record, the hash chain, the checkpoints' signatures and audit.head");
  verify_->add_option("DIR", dir_, "The audit directory (default: [audit] dir of the "
                                   "configuration)")
      ->option_text(" ");
  add_dir(verify_);
  verify_
      ->add_option("--key", key_,
                   "The trusted audit public key (default: the one the gateway recorded, "
                   "<[audit] key>.pub, or state_dir/audit_key.pub for a key in a PKCS#11 "
                   "token, when it exists; else checkpoints are only checked for consistency)")
      ->option_text("FILE.pub");
  verify_->add_flag("--json", json_, "Print a JSON report instead of text");
  verify_->footer(
      "Prints each finding (kind, file:line, seq, message), a summary and the verdict. Exit "
      "status 0 when the log is clean (warnings such as torn_tail, unsigned_tail and recovered "
      "are allowed), 1 when it was tampered with, 2 for a wrong command line or a log or key "
      "that cannot be read. verify is the command that judges integrity; the others skip what "
      "does not parse.");

  search_ = audit_->add_subcommand("search", "List the records that match every filter given");
  add_dir(search_);
  add_filter_options(search_);
  search_->add_flag("--json", json_, "Print the matching records as stored (JSON lines)");
  search_->add_option("--limit", limit_, "Stop after N records")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX))
      ->option_text("N");
  search_->footer(fmt::format("Without --json: one line per record (time, event, conn, user, "
                              "target, outcome, reason; long values are cut). {} Exit status "
                              "0, 1 when nothing could be read, 2 for a wrong command line.",
                              kSkipNote));

  show_ = audit_->add_subcommand("show", "Show every record of one connection, in order");
  show_->add_option("CONNECTION-ID", id_,
                    "The connection id (<instance>-<n>), or its number n alone: every gateway "
                    "run's connection n")
      ->required()
      ->option_text(" ");
  add_dir(show_);
  show_->add_flag("--json", json_, "Print the records as stored (JSON lines)");
  show_->footer(fmt::format("{} Exit status 0, 1 when no record matched or nothing could be "
                            "read, 2 for a wrong command line.",
                            kSkipNote));

  tail_ = audit_->add_subcommand("tail", "Show the last records, and follow new ones with -f");
  add_dir(tail_);
  tail_->add_option("-n,--lines", lines_, "How many of the last records (default 10)")
      ->option_text("N");
  tail_->add_flag("-f,--follow", follow_,
                  "Then print new records as they are written (and across rotations) until "
                  "interrupted");
  tail_->add_flag("--json", json_, "Print the records as stored (JSON lines)");
  tail_->footer(fmt::format("After 'tail', -f means --follow: give the configuration with "
                            "--config or before the command. SIGINT and SIGTERM end -f with "
                            "exit status 0. {}",
                            kSkipNote));

  export_ = audit_->add_subcommand("export", "Write the matching records as JSON lines or CSV");
  add_dir(export_);
  export_->add_option("--format", format_, "jsonl (the records as stored) or csv")
      ->required()
      ->check(CLI::IsMember({"jsonl", "csv"}))
      ->option_text("jsonl|csv");
  add_filter_options(export_);
  export_->footer(fmt::format(
      "CSV (RFC 4180): seq,ts,event,conn,user,target,outcome,reason,fields; fields holds the "
      "record's other fields as a JSON object (prev and hash are left out: integrity is "
      "verify's). {}",
      kSkipNote));

  stats_ = audit_->add_subcommand(
      "stats", "Count records per event, user and target, denials by reason, suspected clones");
  add_dir(stats_);
  add_filter_options(stats_);
  stats_->add_flag("--json", json_, "Print a JSON object instead of tables");
  stats_->footer(fmt::format("Each table keeps at most {} distinct names; the rest is counted "
                             "as (more). {}",
                             audit::Stats::kDefaultMaxKeys, kSkipNote));

  replay_ = audit_->add_subcommand(
      "replay", "Play a session recording to the terminal, checked against its record first");
  replay_
      ->add_option("ID", id_,
                   "CONNECTION-ID[:CHANNEL] (the full id or its number alone, as for show), or "
                   "the recording's file (a path with a '/' or ending in .cast)")
      ->required();
  add_dir(replay_);
  replay_->add_option("--speed", speed_, "Play N times as fast (default 1; 0: do not wait)")
      ->check(CLI::Range(0.0, 1000.0))
      ->option_text("N");
  replay_
      ->add_option("--idle-limit", idle_limit_,
                   "Shorten each pause longer than S seconds to S (default 2)")
      ->check(CLI::Range(0.0, 1e9))
      ->option_text("S");
  replay_->add_flag("--no-wait", no_wait_, "Print the output at once (as --speed 0)");
  replay_->add_flag("--force", force_,
                    "Play a recording that differs from its record, or that no record names");
  replay_->footer(
      "Finds the recording_closed record of the recording (a connection with several recordings "
      "lists them: give ID:CHANNEL), compares the file's size and SHA-256 with it and refuses a "
      "file that differs unless --force ('touchgate audit verify' checks the records "
      "themselves). Then writes the target's output as it was recorded, escape sequences "
      "included, at its pace; what the user typed is never shown, resizes are not replayed, "
      "markers and a banner naming the recording go to standard error. SIGINT (Ctrl-C) and "
      "SIGTERM stop it with exit status 0. Exit status 1 when no single recording matched or "
      "the file differs or cannot be read, 2 for a wrong command line.");
}

void AuditCommand::add_filter_options(CLI::App* c) {
  c->add_option("--user", user_, "Records of this user (the login name)")->option_text("USER");
  c->add_option("--target", target_, "Records of this target (name or host:port)")
      ->option_text("TARGET");
  c->add_option("--event", events_, "Records of this event; repeat or separate with commas")
      ->delimiter(',')
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->option_text("EVENT");
  c->add_option("--outcome", outcome_, "Decisions with this outcome")
      ->check(CLI::IsMember({"allow", "deny"}))
      ->option_text("allow|deny");
  c->add_option("--conn", conn_, "Records of this connection id (or its number alone)")
      ->option_text("ID");
  c->add_option("--since", since_,
                "From this time on: 2h, 30m, 7d (ago), 2026-11-30 or 2026-11-30T10:00:00Z")
      ->option_text("TIME");
  c->add_option("--until", until_, "Before this time (same forms as --since)")
      ->option_text("TIME");
}

bool AuditCommand::selected() const {
  return audit_->parsed();
}

bool AuditCommand::command_chosen() const {
  return !audit_->get_subcommands().empty();
}

std::string AuditCommand::missing_command_message() const {
  return "an audit command is required: verify, search, show, tail, export, stats, replay";
}

Result<std::filesystem::path> AuditCommand::audit_dir(
    const std::filesystem::path& config_file) const {
  if (!dir_.empty()) return std::filesystem::path(dir_);
  auto config = policy::load_config(config_file);
  if (!config) return tl::unexpected(config.error());
  return config->audit.dir;
}

Result<audit::Filter> AuditCommand::filter() const {
  audit::Filter f;
  if (!user_.empty()) f.user = user_;
  if (!target_.empty()) f.target = target_;
  f.events = events_;
  if (!outcome_.empty()) f.outcome = outcome_;
  if (!conn_.empty()) {
    if (conn_.find_first_not_of("0123456789") == std::string::npos) {
      f.conn_number = conn_;
    } else {
      f.conn = conn_;
    }
  }
  const auto now = std::chrono::system_clock::now();
  if (!since_.empty()) {
    auto t = audit::parse_time_spec(since_, now);
    if (!t) return fail("usage", "--since: " + t.error().message);
    f.since = *t;
  }
  if (!until_.empty()) {
    auto t = audit::parse_time_spec(until_, now);
    if (!t) return fail("usage", "--until: " + t.error().message);
    f.until = *t;
  }
  return f;
}

int AuditCommand::run(const std::filesystem::path& config_file) const {
  if (verify_->parsed()) return verify(config_file);
  const CLI::App* chosen = nullptr;
  for (const CLI::App* c : {search_, show_, tail_, export_, stats_, replay_})
    if (c->parsed()) chosen = c;
  if (chosen == nullptr) return kExitUsage;
  if (chosen != show_ && chosen != tail_ && chosen != replay_) {
    if (auto f = filter(); !f) return usage(chosen->get_name(), f.error().message);
  }
  auto dir = audit_dir(config_file);
  if (!dir) return report(dir.error());
  // Buffered output: a search over a large log writes many lines.
  static char out_buffer[1 << 16];
  std::setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);
  int status = kExitUsage;
  if (chosen == search_) status = search(*dir);
  if (chosen == show_) status = show(*dir);
  if (chosen == tail_) status = tail(*dir);
  if (chosen == export_) status = export_records(*dir);
  if (chosen == stats_) status = stats(*dir);
  if (chosen == replay_) status = replay(*dir);
  std::fflush(stdout);
  return status;
}

int AuditCommand::verify(const std::filesystem::path& config_file) const {
  const auto fail_verify = [](const Error& e) {
    report(e);
    return kExitUsage;
  };
  // The directory and the key: the options first, the configuration for what they leave out.
  std::optional<policy::Config> config;
  std::optional<Error> config_error;
  if (dir_.empty() || key_.empty()) {
    auto c = policy::load_config(config_file);
    if (c) {
      config = std::move(*c);
    } else {
      config_error = c.error();
    }
  }
  std::filesystem::path dir = dir_;
  if (dir.empty()) {
    if (!config) return fail_verify(*config_error);
    dir = config->audit.dir;
  }
  if (auto r = audit::check_audit_dir(dir); !r) return fail_verify(r.error());
  if (audit::list_segments(dir).empty() && !std::filesystem::exists(dir / "audit.head")) {
    return fail_verify(Error{
        "audit_empty",
        fmt::format("{}: no audit log here (no audit-*.jsonl segment, no audit.head)",
                    dir.string())});
  }

  std::filesystem::path key_file = key_;
  if (key_file.empty() && config) {
    // Where the gateway records the audit key's public line: <[audit] key>.pub for a key file,
    // state_dir/audit_key.pub for a key in a token.
    const auto& pub = config->audit.public_key;
    std::error_code ec;
    if (std::filesystem::exists(pub, ec)) key_file = pub;
  }
  std::optional<ssh::PublicKey> key;
  if (!key_file.empty()) {
    auto k = audit::load_audit_public_key(key_file);
    if (!k) return fail_verify(k.error());
    key = *k;
  } else {
    warn("no trusted audit key (give --key FILE.pub): each checkpoint is checked against the "
         "key it carries, which shows consistency, not who signed");
  }

  const audit::VerifyReport r = audit::verify_directory(dir, key);
  const auto where = [](const audit::Finding& f) {
    if (f.file.empty()) return std::string("-");
    return f.line > 0 ? fmt::format("{}:{}", f.file, f.line) : f.file;
  };

  if (json_) {
    Json j;
    j["dir"] = dir.string();
    j["verdict"] = r.verdict();
    j["clean"] = r.clean();
    j["key_pinned"] = r.key_pinned;
    j["key_file"] = key ? Json(key_file.string()) : Json(nullptr);
    j["key_fp"] = key ? Json(key->fingerprint()) : Json(nullptr);
    j["segments"] = r.segments;
    j["records"] = r.records;
    j["bytes"] = r.bytes;
    j["checkpoints"] = r.checkpoints;
    j["recordings"] = r.recordings;
    j["recordings_failed"] = r.recordings_failed;
    j["last_seq"] = r.last_seq;
    j["last_hash"] = r.last_hash;
    j["unsigned_tail"] = r.unsigned_tail;
    Json findings = Json::array();
    for (const auto& f : r.findings) {
      Json finding = {{"kind", f.kind}, {"file", f.file},       {"line", f.line},
                      {"seq", f.seq},   {"message", f.message}, {"warning", !f.tampering}};
      if (f.cut) {
        // What the writer cut at a start, and where it kept it (recovered, cut_*).
        finding["cut"] = {
            {"segment", f.cut->segment},
            {"bytes", f.cut->bytes},
            {"complete_lines", f.cut->lines},
            {"side_file", f.cut->side_file.empty() ? Json(nullptr) : Json(f.cut->side_file)},
            {"sha256", f.cut->sha256.empty() ? Json(nullptr) : Json(f.cut->sha256)},
            {"side_status", f.cut->side_status}};
      }
      findings.push_back(std::move(finding));
    }
    j["findings"] = std::move(findings);
    j["suppressed"] = r.suppressed;
    print(j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
    return r.clean() ? kExitOk : kExitError;
  }

  std::string out;
  for (const auto& f : r.findings) {
    out += fmt::format("{}{}  {}  {}  {}\n", f.tampering ? "" : "warning: ", f.kind, where(f),
                       f.seq > 0 ? fmt::format("seq {}", f.seq) : std::string("-"),
                       printable(f.message));
  }
  if (r.suppressed > 0)
    out += fmt::format("... and {} more findings (only the first {} are listed)\n", r.suppressed,
                       audit::kMaxFindings);
  out += fmt::format("{}: {}, {}, {} bytes, {}, last seq {}\n", dir.string(),
                     counted(r.segments, "segment"), counted(r.records, "record"), r.bytes,
                     counted(r.checkpoints, "checkpoint"), r.last_seq);
  out += fmt::format("unsigned tail: {} after the last checkpoint\n",
                     counted(r.unsigned_tail, "record"));
  const auto recovered =
      std::count_if(r.findings.begin(), r.findings.end(),
                    [](const audit::Finding& f) { return f.kind == "recovered"; });
  if (recovered > 0) {
    out +=
        fmt::format("cut by the writer at a start (recovered): {}, the bytes kept in side files\n",
                    counted(static_cast<uint64_t>(recovered), "time"));
  }
  if (r.recordings_failed > 0) {
    out += fmt::format(
        "session recordings that could not be written whole (recording_failed): {}\n",
        r.recordings_failed);
  }
  if (r.recordings > 0) {
    out += fmt::format("session recordings: {} checked against their records\n", r.recordings);
  }
  if (key) {
    out += fmt::format("key: pinned, {} ({})\n", key->fingerprint(), key_file.string());
  } else {
    out += "key: not pinned (checkpoints checked against the key each one carries)\n";
  }
  size_t tampering = 0, warnings = 0;
  for (const auto& f : r.findings) (f.tampering ? tampering : warnings)++;
  out += fmt::format("verdict: {} ({}, {})\n", r.verdict(),
                     counted(tampering + r.suppressed, "finding"), counted(warnings, "warning"));
  print(out);
  return r.clean() ? kExitOk : kExitError;
}

int AuditCommand::search(const std::filesystem::path& dir) const {
  if (auto r = open_log(dir); !r) return report(r.error());
  const audit::Filter f = *filter();
  uint64_t shown = 0;
  if (!json_) print(table_header());
  audit::Cursor cursor(dir);
  cursor.read([&](const audit::RecordRef& r) {
    if (!f.matches(r.parsed)) return true;
    if (json_) {
      print(r.text);
      print("\n");
    } else {
      print(table_row(r.parsed));
    }
    ++shown;
    return limit_ == 0 || shown < limit_;
  });
  std::fflush(stdout);
  if (!report_skipped(cursor)) return nothing_read(dir);
  return kExitOk;
}

int AuditCommand::show(const std::filesystem::path& dir) const {
  if (auto r = open_log(dir); !r) return report(r.error());
  audit::Filter f;
  const bool number = !id_.empty() && id_.find_first_not_of("0123456789") == std::string::npos;
  if (number) {
    f.conn_number = id_;
  } else {
    f.conn = id_;
  }
  constexpr size_t kMaxIds = 1000;
  std::set<std::string> ids;  // the full ids that matched (several gateway runs for a number)
  uint64_t shown = 0;
  audit::Cursor cursor(dir);
  cursor.read([&](const audit::RecordRef& r) {
    if (!f.matches(r.parsed)) return true;
    if (ids.size() < kMaxIds) ids.insert(audit::field_text(r.parsed, "conn"));
    if (json_) {
      print(r.text);
      print("\n");
    } else {
      print(show_block(r.parsed));
    }
    ++shown;
    return true;
  });
  std::fflush(stdout);
  if (!report_skipped(cursor)) return nothing_read(dir);
  if (shown == 0) {
    return report(Error{"audit_no_match",
                        fmt::format("no record of connection {} in {}", printable(id_),
                                    dir.string())});
  }
  if (ids.size() > 1) {
    std::vector<std::string> names;
    for (const auto& id : ids) names.push_back(printable(id));
    std::fprintf(stderr,
                 "touchgate: note: connection %s matched %zu gateway runs (%s); give the full "
                 "id to see one\n",
                 printable(id_).c_str(), ids.size(), fmt::format("{}", fmt::join(names, ", ")).c_str());
  }
  return kExitOk;
}

int AuditCommand::tail(const std::filesystem::path& dir) const {
  if (follow_) {
    if (auto r = audit::check_audit_dir(dir); !r) return report(r.error());
  } else if (auto r = open_log(dir); !r) {
    return report(r.error());
  }
  audit::Cursor cursor(dir);
  cursor.seek(audit::find_tail_start(dir, lines_));
  if (!json_) print(table_header());
  const auto emit = [&](const audit::RecordRef& r) {
    if (json_) {
      print(r.text);
      print("\n");
    } else {
      print(table_row(r.parsed));
    }
    return true;
  };
  cursor.read(emit);
  std::fflush(stdout);
  if (follow_) {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    size_t warned = cursor.skipped().size();
    audit::follow(cursor, emit, g_stop, std::chrono::milliseconds(200), [&] {
      std::fflush(stdout);
      // Lines that do not parse, reported as they turn up.
      for (; warned < cursor.skipped().size(); ++warned) {
        const auto& s = cursor.skipped()[warned];
        warn(fmt::format("{}: lines skipped, not a record ({})", s.file, s.first_reason));
      }
    });
    std::fflush(stdout);
    return kExitOk;
  }
  if (!report_skipped(cursor)) return nothing_read(dir);
  return kExitOk;
}

int AuditCommand::export_records(const std::filesystem::path& dir) const {
  if (auto r = open_log(dir); !r) return report(r.error());
  const audit::Filter f = *filter();
  const bool csv = format_ == "csv";
  if (csv) print("seq,ts,event,conn,user,target,outcome,reason,fields\r\n");
  audit::Cursor cursor(dir);
  cursor.read([&](const audit::RecordRef& r) {
    if (!f.matches(r.parsed)) return true;
    if (csv) {
      print(csv_row(r.parsed));
    } else {
      print(r.text);
      print("\n");
    }
    return true;
  });
  std::fflush(stdout);
  if (!report_skipped(cursor)) return nothing_read(dir);
  return kExitOk;
}

int AuditCommand::stats(const std::filesystem::path& dir) const {
  if (auto r = open_log(dir); !r) return report(r.error());
  const audit::Filter f = *filter();
  audit::Stats s;
  audit::Cursor cursor(dir);
  cursor.read([&](const audit::RecordRef& r) {
    if (f.matches(r.parsed)) s.add(r.parsed);
    return true;
  });
  if (!report_skipped(cursor)) return nothing_read(dir);

  const auto n = [](const auto& kv) { return kv.second; };
  const auto records = [](const auto& kv) { return kv.second.records; };
  if (json_) {
    Json j;
    j["records"] = s.records;
    j["first_seq"] = s.records ? Json(s.first_seq) : Json(nullptr);
    j["last_seq"] = s.records ? Json(s.last_seq) : Json(nullptr);
    j["first_ts"] = s.records ? Json(s.first_ts) : Json(nullptr);
    j["last_ts"] = s.records ? Json(s.last_ts) : Json(nullptr);
    Json events = Json::object();
    for (const auto& it : by_count(s.events, n)) events[it->first] = it->second;
    j["events"] = std::move(events);
    const auto counts = [&](const auto& map, const char* name) {
      Json a = Json::array();
      for (const auto& it : by_count(map, records)) {
        a.push_back({{name, it->first},
                     {"records", it->second.records},
                     {"allow", it->second.allow},
                     {"deny", it->second.deny}});
      }
      return a;
    };
    j["users"] = counts(s.users, "user");
    j["targets"] = counts(s.targets, "target");
    Json reasons = Json::object();
    for (const auto& it : by_count(s.deny_reasons, n)) reasons[it->first] = it->second;
    j["deny_reasons"] = std::move(reasons);
    Json clones = Json::array();
    for (const auto& it : by_count(s.clones, n)) {
      clones.push_back(
          {{"key_fp", it->first.first}, {"user", it->first.second}, {"records", it->second}});
    }
    j["suspected_clones"] = std::move(clones);
    j["more"] = {{"events", s.more_events},     {"users", s.more_users},
                 {"targets", s.more_targets},   {"deny_reasons", s.more_reasons},
                 {"suspected_clones", s.more_clones}};
    print(j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
    return kExitOk;
  }

  std::string out;
  if (s.records == 0) {
    out += "records: 0\n";
  } else {
    out += fmt::format("records: {} (seq {}..{})\n", s.records, s.first_seq, s.last_seq);
    out += fmt::format("time range: {} .. {}\n", s.first_ts, s.last_ts);
  }
  const auto more_row = [](uint64_t more, size_t columns) {
    std::vector<std::string> row{"(more)", std::to_string(more)};
    row.resize(columns);
    return row;
  };
  {
    std::vector<std::vector<std::string>> rows;
    for (const auto& it : by_count(s.events, n))
      rows.push_back({printable(it->first), std::to_string(it->second)});
    if (s.more_events) rows.push_back(more_row(s.more_events, 2));
    out += "\n" + render_table({"EVENT", "RECORDS"}, rows);
  }
  const auto counts_table = [&](const auto& map, uint64_t more, const char* title) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& it : by_count(map, records)) {
      rows.push_back({printable(it->first), std::to_string(it->second.records),
                      std::to_string(it->second.allow), std::to_string(it->second.deny)});
    }
    if (more) rows.push_back(more_row(more, 4));
    if (rows.empty()) return std::string();
    return "\n" + render_table({title, "RECORDS", "ALLOW", "DENY"}, rows);
  };
  out += counts_table(s.users, s.more_users, "USER");
  out += counts_table(s.targets, s.more_targets, "TARGET");
  {
    std::vector<std::vector<std::string>> rows;
    for (const auto& it : by_count(s.deny_reasons, n))
      rows.push_back({printable(it->first), std::to_string(it->second)});
    if (s.more_reasons) rows.push_back(more_row(s.more_reasons, 2));
    if (!rows.empty()) out += "\n" + render_table({"DENIAL REASON", "RECORDS"}, rows);
  }
  {
    std::vector<std::vector<std::string>> rows;
    for (const auto& it : by_count(s.clones, n)) {
      rows.push_back({printable(it->first.first), printable(it->first.second),
                      std::to_string(it->second)});
    }
    if (s.more_clones) rows.push_back({"(more)", "", std::to_string(s.more_clones)});
    if (!rows.empty()) out += "\n" + render_table({"SUSPECTED CLONE", "USER", "RECORDS"}, rows);
  }
  print(out);
  return kExitOk;
}

int AuditCommand::replay(const std::filesystem::path& dir) const {
  auto id = parse_replay_id(id_);
  if (!id) return usage("replay", id.error().message);
  // A file with --force plays even without a log to check it against.
  const auto log = open_log(dir);
  if (!log && !(force_ && !id->file.empty())) return report(log.error());

  audit::Filter f;
  f.events = {"recording_closed"};
  if (id->file.empty()) {
    if (id->conn.find_first_not_of("0123456789") == std::string::npos) {
      f.conn_number = id->conn;
    } else {
      f.conn = id->conn;
    }
  }
  constexpr size_t kMaxListed = 1000;
  std::vector<RecordingEntry> found;
  uint64_t matches = 0;
  audit::Cursor cursor(dir);
  if (log)
    cursor.read([&](const audit::RecordRef& r) {
      if (!f.matches(r.parsed)) return true;
      RecordingEntry e = recording_entry(r.parsed);
      if (id->channel && e.channel != *id->channel) return true;
      if (!id->file.empty() && std::filesystem::path(e.file).lexically_normal() != id->file) {
        return true;
      }
      ++matches;
      if (found.size() < kMaxListed) found.push_back(std::move(e));
      return true;
    });
  if (!report_skipped(cursor)) return nothing_read(dir);
  if (!log) warn(log.error().message);

  const std::string wanted = !id->file.empty() ? id->file.string()
                             : id->channel     ? fmt::format("{}:{}", id->conn, *id->channel)
                                               : id->conn;
  std::optional<RecordingEntry> entry;
  std::filesystem::path file = id->file;
  if (matches == 0) {
    if (id->file.empty()) {
      return report(Error{"audit_no_match", fmt::format("no recording of connection {} in {}",
                                                        printable(wanted), dir.string())});
    }
    if (!force_) {
      return report(Error{"recording_no_record",
                          fmt::format("no recording_closed record in {} names {}, so it cannot "
                                      "be checked; --force plays it unchecked",
                                      dir.string(), printable(wanted))});
    }
    warn(fmt::format("no record names {}: playing it unchecked (--force)", printable(wanted)));
  } else if (matches > 1) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : found) {
      rows.push_back({printable(fmt::format("{}:{}", e.conn, e.channel)), e.ts.substr(0, 19) + "Z",
                      printable(e.user), printable(e.target), std::to_string(e.size),
                      printable(e.file)});
    }
    if (matches > found.size()) {
      rows.push_back({fmt::format("(and {} more)", matches - found.size())});
    }
    std::fprintf(
        stderr, "touchgate: %s matches %s; replay one of them by ID:CHANNEL:\n%s",
        printable(wanted).c_str(), counted(matches, "recording").c_str(),
        render_table({"ID:CHANNEL", "TIME", "USER", "TARGET", "BYTES", "FILE"}, rows).c_str());
    return kExitError;
  } else {
    entry = found.front();
    file = entry->file;
  }

  const ssh::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return report(
        Error{"recording_unreadable", fmt::format("{}: cannot open the recording: {}",
                                                  printable(file.string()), std::strerror(errno))});
  }
  // The check and the replay read the same open file.
  if (entry) {
    auto digest = digest_fd(fd.get());
    if (!digest) return report(digest.error());
    if (digest->size != entry->size || digest->sha256 != entry->sha256) {
      const std::string how =
          digest->size != entry->size
              ? fmt::format("{} bytes, {} when it was recorded", digest->size, entry->size)
              : fmt::format("same size, SHA-256 {} instead of {}", digest->sha256, entry->sha256);
      if (!force_) {
        return report(Error{"recording_altered",
                            fmt::format("{}: the recording was altered since it was recorded "
                                        "({}); --force plays it anyway",
                                        printable(file.string()), printable(how))});
      }
      warn(
          fmt::format("{}: the recording was altered since it was recorded ({}); playing it "
                      "anyway (--force)",
                      printable(file.string()), printable(how)));
    }
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) {
      return report(Error{"recording_unreadable",
                          fmt::format("{}: {}", printable(file.string()), std::strerror(errno))});
    }
  }

  ReplayOptions options;
  options.speed = no_wait_ ? 0.0 : speed_;
  options.idle_limit = idle_limit_;
  ReplaySink sink;
  sink.header = [&](const ReplayHeader& h) {
    const std::string name =
        entry ? fmt::format("{}:{}", entry->conn, entry->channel) : file.filename().string();
    const std::string user = entry ? entry->user : h.user;
    const std::string target = entry ? entry->target : h.target;
    const std::string when = h.timestamp > 0 ? format_time(h.timestamp)
                             : entry         ? entry->ts.substr(0, 19) + "Z"
                                             : "-";
    const uint64_t size = entry ? entry->size : 0;
    std::fprintf(stderr,
                 "touchgate: replaying %s: user %s, target %s, recorded %s, %lldx%lld%s%s\n",
                 printable(name).c_str(), printable(user.empty() ? "-" : user).c_str(),
                 printable(target.empty() ? "-" : target).c_str(), when.c_str(),
                 static_cast<long long>(h.width), static_cast<long long>(h.height),
                 size > 0 ? fmt::format(", {} bytes", size).c_str() : "",
                 entry && entry->capped ? " (stopped at its size cap)" : "");
  };
  sink.output = [](std::string_view data) { print(data); };
  sink.flush = [] { std::fflush(stdout); };
  sink.marker = [](double time, std::string_view label) {
    std::fprintf(stderr, "touchgate: marker at %.3fs: %s\n", time, printable(label).c_str());
  };
  uint64_t warned = 0;
  sink.skipped = [&](uint64_t line, std::string_view why) {
    if (++warned <= 10)
      warn(fmt::format("{}:{}: skipped, {}", printable(file.string()), line, why));
  };
  stop_on_signals();
  auto stats = play_recording(fd.get(), options, sink, g_stop);
  std::fflush(stdout);
  if (!stats) {
    return report(Error{stats.error().code,
                        fmt::format("{}: {}", printable(file.string()), stats.error().message)});
  }
  if (stats->skipped > 0) {
    warn(
        fmt::format("{} of {} skipped", counted(stats->skipped, "line"), printable(file.string())));
  }
  if (stats->stopped) {
    std::fprintf(stderr, "\ntouchgate: replay stopped at %.1fs of the recording\n",
                 stats->last_time);
  }
  return kExitOk;
}

}  // namespace touchgate::cli
