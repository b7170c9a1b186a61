// Trust boundary: replies from touchgated (a local daemon, still parsed strictly: a broken reply
// is an error, never a partial listing).
#include "cli/control.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/context.h"
#include "cli/format.h"
#include "gateway/control_protocol.h"
#include "policy/config.h"

namespace touchgate::cli {
namespace {

using gateway::ControlRequest;
using gateway::ControlVerb;

constexpr int kReplyTimeoutSeconds = 30;
constexpr size_t kMaxReply = 256u << 20;

// A reply: the status line's detail ("ok DETAIL") and the lines after it.
struct Reply {
  std::string detail;
  std::vector<std::string> lines;
};

// exchange sends one request to the daemon at `socket` and reads its whole reply. An "error"
// reply becomes the Error it names.
Result<Reply> exchange(const std::filesystem::path& socket, const ControlRequest& request) {
  const std::string where = socket.string();
  const auto unreachable = [&](int err) {
    return fail("control_unreachable",
                fmt::format("cannot reach touchgated at {}: {}", where, std::strerror(err)));
  };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (where.empty() || where.size() >= sizeof addr.sun_path) return unreachable(ENAMETOOLONG);
  std::memcpy(addr.sun_path, where.c_str(), where.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unreachable(errno);
  const timeval tv{kReplyTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    return unreachable(err);
  }
  // A daemon that refuses the peer answers at once and closes, perhaps before the request went
  // out: its answer is still read.
  const std::string line = gateway::encode_request(request);
  int send_error = 0;
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    send_error = errno;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxReply) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // A daemon that refuses the request may close before reading it, which resets the
    // connection after its reply: the reply is judged below like any other.
    if (n < 0 && errno != ECONNRESET) {
      const int err = errno;
      ::close(fd);
      return fail("control_bad_reply",
                  fmt::format("no complete reply from touchgated at {}: {}", where,
                              err == EAGAIN ? "timed out" : std::strerror(err)));
    }
    break;
  }
  ::close(fd);
  if (text.empty() && send_error != 0) return unreachable(send_error);
  if (text.size() > kMaxReply || text.empty() || text.back() != '\n') {
    return fail(
        "control_bad_reply",
        fmt::format("touchgated at {} closed the connection without a complete reply", where));
  }
  Reply reply;
  size_t start = text.find('\n') + 1;
  auto status = gateway::parse_status(std::string_view(text).substr(0, start - 1));
  if (!status) return tl::unexpected(status.error());
  reply.detail = std::move(*status);
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    reply.lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return reply;
}

}  // namespace

Result<std::string> control_exchange(const std::filesystem::path& socket,
                                     const gateway::ControlRequest& request) {
  auto reply = exchange(socket, request);
  if (!reply) return tl::unexpected(reply.error());
  return reply->detail;
}

namespace {

// socket_path is --socket, else [server] control_socket of the configuration file.
Result<std::filesystem::path> socket_path(const std::string& option,
                                          const std::filesystem::path& config_file) {
  if (!option.empty()) return std::filesystem::path(option);
  auto config = policy::load_config(config_file);
  if (!config) return tl::unexpected(config.error());
  return config->server.control_socket;
}

// cell makes reply text safe for a table cell (no control characters).
std::string cell(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return s.empty() ? "-" : s;
}

// human_bytes: "512", "1.5K", "20M" (powers of 1024).
std::string human_bytes(uint64_t n) {
  const char* units = "KMGTPE";
  if (n < 1024) return std::to_string(n);
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return v < 10 ? fmt::format("{:.1f}{}", v, units[u]) : fmt::format("{:.0f}{}", v, units[u]);
}

// table_of renders `sessions list` lines (JSON objects) as a table.
Result<std::string> table_of(const std::vector<std::string>& lines) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : lines) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return fail("control_bad_reply", "touchgated sent a session that is not a JSON object");
    }
    try {
      // One entry per channel in CHANNELS, TARGETS and RULES, in the same order ("-": no rule
      // allowed the channel yet, its touch is awaited).
      std::vector<std::string> channels, targets, rules;
      for (const auto& c : j.at("channels")) {
        channels.push_back(std::to_string(c.at("channel").get<uint64_t>()));
        targets.push_back(c.at("target").get<std::string>());
        const std::string rule = c.value("rule", std::string());
        rules.push_back(rule.empty() ? "-" : rule);
      }
      rows.push_back({
          std::to_string(j.at("id").get<uint64_t>()),
          cell(j.at("user").get<std::string>()),
          cell(j.at("source").get<std::string>()),
          cell(j.at("since").get<std::string>()),
          channels.empty() ? std::string("-") : fmt::format("{}", fmt::join(channels, ",")),
          cell(fmt::format("{}", fmt::join(targets, ","))),
          cell(fmt::format("{}", fmt::join(rules, ","))),
          human_bytes(j.at("bytes_up").get<uint64_t>()) + "/" +
              human_bytes(j.at("bytes_down").get<uint64_t>()),
          cell(j.at("factor").get<std::string>()),
      });
    } catch (const nlohmann::json::exception& e) {
      return fail("control_bad_reply", fmt::format("touchgated sent a session without the "
                                                   "expected fields: {}",
                                                   e.what()));
    }
  }
  return render_table(
      {"ID", "USER", "SOURCE", "SINCE", "CHANNELS", "TARGETS", "RULES", "BYTES", "FACTOR"}, rows);
}

}  // namespace

ControlCommands::ControlCommands(CLI::App& app) {
  const auto socket_option = [this](CLI::App* cmd) {
    cmd->add_option("--socket", socket_,
                    "touchgated's control socket (default: [server] control_socket of the "
                    "configuration)")
        ->option_text("PATH");
  };
  reload_ = app.add_subcommand(
      "reload",
      "Make the running touchgated load its configuration again (running channels continue)");
  socket_option(reload_);

  sessions_ = app.add_subcommand("sessions", "List and end the sessions of a running touchgated");
  sessions_->require_subcommand(0, 1);
  list_ = sessions_->add_subcommand("list", "List authenticated connections and their channels");
  list_->add_flag("--json", json_, "Print one JSON object per session, as touchgated sent it");
  socket_option(list_);
  kill_ = sessions_->add_subcommand(
      "kill",
      "End a connection by its ID, one of its channels (ID/CHANNEL), or every connection of a "
      "user (--user)");
  kill_
      ->add_option("ID", id_,
                   "Connection ID (the ID column of sessions list), or ID/CHANNEL for one "
                   "channel (the CHANNELS column)")
      ->option_text(" ");
  kill_->add_option("--user", user_, "End every connection of this user (certificate principal)")
      ->option_text("USER");
  socket_option(kill_);
}

bool ControlCommands::selected() const {
  return reload_->parsed() || sessions_->parsed();
}

bool ControlCommands::command_chosen() const {
  return reload_->parsed() || !sessions_->get_subcommands().empty();
}

std::string ControlCommands::missing_command_message() const {
  return "a sessions command is required: list, kill";
}

int ControlCommands::run(const std::filesystem::path& config_file) const {
  auto socket = socket_path(socket_, config_file);
  if (!socket) {
    report(socket.error());
    if (reload_->parsed() && socket.error().code == "config_invalid") {
      // The daemon would refuse this file the same way; it is not asked.
      std::fprintf(stderr,
                   "touchgate: touchgated was not asked to reload and keeps its running "
                   "configuration\n");
    }
    return kExitError;
  }
  if (reload_->parsed()) return reload(*socket);
  if (list_->parsed()) return list(*socket);
  if (kill_->parsed()) return kill(*socket);
  return kExitUsage;
}

int ControlCommands::reload(const std::filesystem::path& socket) const {
  ControlRequest request;
  request.verb = ControlVerb::kReload;
  auto reply = exchange(socket, request);
  if (!reply) {
    report(reply.error());
    if (reply.error().code.rfind("control_", 0) != 0) {
      // The daemon read the file and refused it (config_invalid, policy_invalid, a trust file).
      std::fprintf(stderr,
                   "touchgate: touchgated refused the file and keeps its running "
                   "configuration\n");
    }
    return kExitError;
  }
  std::printf("touchgated reloaded its configuration (%s)\n", cell(reply->detail).c_str());
  for (const auto& line : reply->lines) {
    if (line.rfind("restart-needed ", 0) == 0) {
      std::fprintf(stderr,
                   "touchgate: warning: changed settings that keep their running values until "
                   "touchgated restarts: %s\n",
                   cell(line.substr(15)).c_str());
    } else if (line.rfind("warning ", 0) == 0) {
      // What `touchgate policy check` warns about in the new file.
      std::fprintf(stderr, "touchgate: warning: %s\n", cell(line.substr(8)).c_str());
    } else if (line.rfind("notes ", 0) == 0) {
      std::fprintf(stderr,
                   "touchgate: %s note(s) on the rules of the new file (touchgate policy check "
                   "lists them)\n",
                   cell(line.substr(6)).c_str());
    }
  }
  return kExitOk;
}

int ControlCommands::list(const std::filesystem::path& socket) const {
  ControlRequest request;
  request.verb = ControlVerb::kSessionsList;
  auto reply = exchange(socket, request);
  if (!reply) return report(reply.error());
  if (json_) {
    for (const auto& line : reply->lines) std::printf("%s\n", line.c_str());
    return kExitOk;
  }
  auto table = table_of(reply->lines);
  if (!table) return report(table.error());
  std::fwrite(table->data(), 1, table->size(), stdout);
  return kExitOk;
}

int ControlCommands::kill(const std::filesystem::path& socket) const {
  ControlRequest request;
  if (id_.empty() == user_.empty()) {
    std::fprintf(stderr,
                 "touchgate: sessions kill needs a connection ID or --user USER (one of them)\n"
                 "Run 'touchgate sessions kill --help' for usage.\n");
    return kExitUsage;
  }
  if (!user_.empty()) {
    request.verb = ControlVerb::kSessionsKillUser;
    request.principal = user_;
  } else {
    request.verb = ControlVerb::kSessionsKill;
    // ID or ID/CHANNEL, each a number.
    const auto number = [](std::string_view text, uint64_t* out) {
      const char* end = text.data() + text.size();
      auto [ptr, ec] = std::from_chars(text.data(), end, *out);
      return !text.empty() && text.size() <= 20 && text.front() >= '0' && text.front() <= '9' &&
             ec == std::errc() && ptr == end;
    };
    const std::string_view text(id_);
    const size_t slash = text.find('/');
    if (!number(text.substr(0, slash), &request.connection_id) ||
        (slash != std::string_view::npos &&
         (!number(text.substr(slash + 1), &request.channel) || request.channel == 0))) {
      std::fprintf(stderr,
                   "touchgate: %s is not a connection ID or ID/CHANNEL (numbers, see sessions "
                   "list)\n",
                   cell(id_).c_str());
      return kExitUsage;
    }
  }
  // The request goes out only as the daemon would read it: a principal with spaces or other
  // characters cannot turn into a different request.
  auto checked = gateway::parse_request(gateway::encode_request(request));
  if (!checked || checked->verb != request.verb || checked->principal != request.principal ||
      checked->channel != request.channel) {
    std::fprintf(stderr,
                 "touchgate: \"%s\" is not a user name touchgated knows (1-64 letters, digits, "
                 "'.', '_', '@' and '-')\n",
                 cell(user_).c_str());
    return kExitUsage;
  }
  auto reply = exchange(socket, request);
  if (!reply) return report(reply.error());
  std::printf("%s\n", cell(reply->detail).c_str());
  return kExitOk;
}

}  // namespace touchgate::cli
