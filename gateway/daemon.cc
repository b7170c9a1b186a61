#include "gateway/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <array>
#include <cstring>
#include <thread>
#include <vector>

#include <openssl/rand.h>

#include <fmt/format.h>

#include "audit/log.h"
#include "audit/syslog.h"
#include "gateway/admin.h"
#include "gateway/auditor.h"
#include "gateway/ca_signer.h"
#include "gateway/config_bridge.h"
#include "gateway/offload.h"
#include "pkcs11/open.h"
#include "gateway/control_server.h"
#include "gateway/host_keys.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/runtime.h"
#include "gateway/store_service.h"
#include "gateway/worker.h"
#include "policy/config.h"
#include "policy/trust.h"

namespace touchgate::gateway {

namespace {

struct PeerInfo {
  std::string text;
  ssh::IpAddress ip;
};

PeerInfo peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  PeerInfo out{"?", {}};
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return out;
  char buf[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    port = ntohs(sin6->sin6_port);
  }
  auto ip = ssh::IpAddress::parse(buf);
  if (ip) out.ip = *ip;
  out.text = out.ip.v6 ? fmt::format("[{}]:{}", out.ip.to_string(), port)
                       : fmt::format("{}:{}", out.ip.to_string(), port);
  return out;
}

}  // namespace

Result<Snapshot> load_snapshot(const std::filesystem::path& file,
                               std::vector<policy::Finding>* findings) {
  if (findings != nullptr) findings->clear();
  auto config = policy::load_config(file);
  if (!config) return tl::unexpected(config.error());
  auto trust = policy::load_trust(config->trust);
  if (!trust) return tl::unexpected(trust.error());
  // The checks of `touchgate policy check`: a rule that cannot do what it says is refused.
  if (auto checked = policy::check_lint(*config, file.string(), findings); !checked) {
    return tl::unexpected(checked.error());
  }
  Snapshot snap;
  snap.config = std::make_shared<const policy::Config>(std::move(*config));
  snap.trust = std::make_shared<const ssh::TrustPolicy>(std::move(*trust));
  snap.policy = policy::Policy::compile(snap.config);
  return snap;
}

namespace {

// The acceptor's epoll tags: listeners by index, the signalfd, the control socket.
constexpr uint64_t kControlTag = UINT64_MAX - 1;

void print_error(const std::string& message) { std::fprintf(stderr, "touchgated: %s\n", message.c_str()); }

}  // namespace

int run_daemon(const DaemonOptions& options) {
  if (options.debug) set_log_level(Level::kDebug);
  std::vector<policy::Finding> findings;
  auto snap = load_snapshot(options.config, &findings);
  if (options.check_only) {
    // What `touchgate policy check` prints, one error or warning a line; the notes counted.
    size_t notes = 0;
    for (const auto& f : findings) {
      if (f.severity == policy::Severity::kNote) {
        ++notes;
      } else {
        print_error(policy::format_finding(options.config.string(), f));
      }
    }
    if (notes > 0) {
      print_error(fmt::format("{} note{} on the rules (touchgate policy check lists them)", notes,
                              notes == 1 ? "" : "s"));
    }
  } else {
    log_findings("start", options.config.string(), findings);
  }
  if (!snap) {
    if (snap.error().code == "policy_invalid") {
      const auto errors = std::count_if(findings.begin(), findings.end(), [](const auto& f) {
        return f.severity == policy::Severity::kError;
      });
      print_error(
          fmt::format("configuration {} is invalid: {} error{} in its rules "
                      "(policy_invalid)",
                      options.config.string(), errors, errors == 1 ? "" : "s"));
    } else {
      print_error(snap.error().message);
    }
    return 1;
  }
  const policy::Config* config = snap->config.get();
  if (options.check_only) {
    for (const auto& key : config->server.host_keys) {
      std::error_code ec;
      if (std::filesystem::exists(key, ec) && ::access(key.c_str(), R_OK) != 0) {
        print_error(fmt::format("{}: host key is not readable", key.string()));
        return 1;
      }
    }
    std::fprintf(stderr, "touchgated: configuration %s is valid\n", config->source.c_str());
    return 0;
  }

  // Signals are handled on the accept thread through a signalfd; every thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(config->server.state_dir, ec);
  if (ec) {
    print_error(fmt::format("{}: cannot create state directory: {}", config->server.state_dir.string(), ec.message()));
    return 1;
  }
  ::chmod(config->server.state_dir.c_str(), 0700);
  if (auto r = ensure_host_keys(config->server.host_keys); !r) {
    print_error(r.error().message);
    return 1;
  }
  // Made before any other thread runs: the socket file is created under a private umask.
  auto control = ControlServer::open(config->server);
  if (!control) {
    print_error(fmt::format("{} ({})", control.error().message, control.error().code));
    return 1;
  }

  auto store = StoreService::start(store::default_database_path(config->server.state_dir.string()));
  if (!store) {
    print_error(fmt::format("{} ({})", store.error().message, store.error().code));
    return 1;
  }

  // The audit log: the gateway does not start without it (fail closed).
  const policy::AuditConfig& ac = config->audit;
  audit::Options audit_options = gateway::audit_options(ac);
  std::unique_ptr<audit::SyslogSink> syslog_sink;
  if (ac.syslog) {
    audit::SyslogOptions so;
    so.socket = ac.syslog_socket;
    so.facility = ac.syslog_facility;
    auto sink = audit::SyslogSink::create(so);
    if (!sink) {
      print_error(fmt::format("{} ({})", sink.error().message, sink.error().code));
      return 1;
    }
    syslog_sink = std::move(*sink);
    audit_options.on_written = [sink = syslog_sink.get()](std::string_view line) {
      sink->send(line);
    };
  }
  // A checkpoint the key cannot sign (its token gone) is written unsigned; say so each time.
  audit_options.on_checkpoint_unsigned = [](uint64_t seq, const Error& e) {
    log_event(Level::kError, "audit_checkpoint_unsigned",
              {{"seq", seq},
               {"code", e.code},
               {"reason", e.message},
               {"note", "records are still written and chained; the next checkpoint retries"}});
  };
  audit_options.on_checkpoint_signed_again = [](uint64_t seq, uint64_t missed) {
    log_event(Level::kInfo, "audit_checkpoint_signed_again",
              {{"seq", seq}, {"unsigned_checkpoints", missed}});
  };
  auto audit_log = audit::AuditLog::open(audit_options);
  if (!audit_log) {
    print_error(fmt::format("audit log {}: {} ({})", ac.dir.string(), audit_log.error().message,
                            audit_log.error().code));
    return 1;
  }
  log_event(Level::kInfo, "audit_key_ready",
            {{"key", (*audit_log)->key().describe()}, {"public_key", ac.public_key.string()}});
  if (!(*audit_log)->recovered().empty()) {
    log_event(Level::kWarn, "audit_tail_recovered", {{"note", (*audit_log)->recovered()}});
  }
  Auditor auditor(audit_log->get(), ac.deny_on_failure);

  // The CA key of terminating mode: a token that is missing now only makes terminating mode
  // unavailable (ProxyJump is served) until it is there (tried again when a login needs it); a
  // configuration error stops the start.
  std::unique_ptr<ssh::Signer> ca_signer;
  if (config->ca.configured()) {
    Error first;
    auto signer = RetryingCaSigner::open(ca_key_config(config->ca), &first);
    if (first.code.empty()) {
      log_event(Level::kInfo, "ca_ready", {{"key", signer->describe()}});
    } else if (first.code == "ca_key_config" || first.code == "pkcs11_bad_uri") {
      print_error(fmt::format("[ca]: {} ({})", first.message, first.code));
      return 1;
    } else {
      log_event(Level::kError, "ca_unavailable",
                {{"code", first.code},
                 {"reason", first.message},
                 {"note", RetryingCaSigner::retryable(first.code)
                              ? "terminating mode is refused until the key can be opened (tried "
                                "again, at most every 5 s, when a login needs it)"
                              : "terminating mode is refused until touchgated restarts with a "
                                "working key (a refused PIN is never retried by itself)"}});
    }
    ca_signer = std::move(signer);
  }
  Offload offload("tg-offload");
  // Recordings are hashed, written and fsynced here, so that no worker waits on the disk.
  Offload recorder("tg-recorder");

  ssh_init();
  Runtime runtime;
  runtime.ca = ca_signer.get();
  runtime.offload = &offload;
  runtime.recorder = &recorder;
  runtime.store = store->get();
  runtime.auditor = &auditor;
  {
    std::array<uint8_t, 8> id{};
    RAND_bytes(id.data(), static_cast<int>(id.size()));
    for (uint8_t b : id) runtime.instance += fmt::format("{:02x}", b);
  }
  auto cfg = snap->config;
  runtime.set_snapshot(*snap);

  std::vector<BindPtr> binds;
  for (const auto& addr : cfg->server.listen) {
    auto b = open_listener(addr, cfg->server.host_keys);
    if (!b) {
      print_error(b.error().message);
      return 1;
    }
    log_event(Level::kInfo, "listening", {{"address", addr.to_string()}});
    binds.push_back(std::move(*b));
  }

  int nworkers = cfg->server.workers > 0 ? cfg->server.workers
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < nworkers; ++i) workers.push_back(std::make_unique<Worker>(i, runtime));
  for (auto& w : workers) w->start();
  Admin admin(runtime, cfg->source, workers);
  (*control)->set_handler([&admin](const ControlRequest& request, const PeerCredentials& peer) {
    return admin.answer(request, peer.uid);
  });

  int ep = epoll_create1(EPOLL_CLOEXEC);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    for (size_t i = 0; i < binds.size(); ++i) {
      ev.data.u64 = i;
      epoll_ctl(ep, EPOLL_CTL_ADD, ssh_bind_get_fd(binds[i].get()), &ev);
    }
    ev.data.u64 = kControlTag;
    epoll_ctl(ep, EPOLL_CTL_ADD, (*control)->fd(), &ev);
  }
  {
    std::string listen;
    for (const auto& addr : cfg->server.listen) {
      if (!listen.empty()) listen.push_back(',');
      listen.append(addr.to_string());
    }
    audit::Record r("gateway_started");
    r.str("instance", runtime.instance).str("version", TOUCHGATE_VERSION).str("listen", listen);
    r.str("audit_key_fp", (*audit_log)->key().fingerprint());
    auditor.note(std::move(r));
  }
  log_event(Level::kInfo, "ready",
            {{"workers", nworkers}, {"targets", cfg->targets.size()}, {"cas", runtime.snapshot().trust->cas.size()},
             {"control_socket", (*control)->path().string()}});

  uint64_t rr = 0;
  bool stop = false;
  epoll_event events[16];
  // Connections refused at accept (max_startups, max_sessions) are audited as one summary per
  // kDropRecordEvery at most: a flood must not turn into a flood of durable records.
  constexpr auto kDropRecordEvery = std::chrono::seconds(10);
  struct Dropped {
    uint64_t count = 0;
    std::string last_client;
    std::string reason;
    std::chrono::steady_clock::time_point last_record{};
  } dropped;
  auto audit_dropped = [&](std::chrono::steady_clock::time_point now) {
    if (dropped.count == 0) return;
    audit::Record r("connections_dropped");
    r.u64("count", dropped.count)
        .str("reason", dropped.reason)
        .str("last_client", dropped.last_client)
        .u64("max_startups", static_cast<uint64_t>(cfg->server.max_startups))
        .u64("max_sessions", static_cast<uint64_t>(cfg->server.max_sessions));
    auditor.note(std::move(r));
    dropped.count = 0;
    dropped.last_record = now;
  };
  while (!stop) {
    int timeout = (*control)->timeout_ms();
    if (dropped.count > 0) {
      const auto left = dropped.last_record + kDropRecordEvery - std::chrono::steady_clock::now();
      const auto due = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      const int wait = static_cast<int>(std::clamp<int64_t>(due, 0, 60'000));
      timeout = timeout < 0 ? wait : std::min(timeout, wait);
    }
    int n = epoll_wait(ep, events, 16, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      log_event(Level::kError, "accept_loop_failed", {{"error", std::strerror(errno)}});
      break;
    }
    (*control)->tick();
    if (dropped.count > 0 &&
        std::chrono::steady_clock::now() >= dropped.last_record + kDropRecordEvery) {
      audit_dropped(std::chrono::steady_clock::now());
    }
    cfg = runtime.snapshot().config;  // a reload may have replaced it
    for (int i = 0; i < n && !stop; ++i) {
      if (events[i].data.u64 == kControlTag) {
        (*control)->on_ready();
        cfg = runtime.snapshot().config;
        continue;
      }
      if (events[i].data.u64 == UINT64_MAX) {
        signalfd_siginfo si{};
        while (::read(sfd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            // Success and failure are logged by reload; the running configuration stays on failure.
            (void)admin.reload("SIGHUP", si.ssi_uid);
            cfg = runtime.snapshot().config;
            continue;
          }
          log_event(Level::kInfo, "shutdown_requested",
                    {{"signal", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT"},
                     {"connections", runtime.connections.load()},
                     {"drain_timeout_s", cfg->server.drain_timeout.count()}});
          stop = true;
          break;
        }
        continue;
      }
      ssh_bind bind = binds[events[i].data.u64].get();
      for (int k = 0; k < 64; ++k) {
        ssh_session s = ssh_new();
        if (s == nullptr) break;
        if (ssh_bind_accept(bind, s) != SSH_OK) {
          ssh_free(s);
          break;
        }
        int fd = ssh_get_fd(s);
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        PeerInfo peer = peer_of(fd);
        uint64_t id = runtime.next_connection_id.fetch_add(1);
        if (runtime.unauthenticated.load() >= cfg->server.max_startups ||
            runtime.connections.load() >= cfg->server.max_sessions) {
          log_event(Level::kWarn, "connection_dropped",
                    {{"conn", id}, {"peer", peer.text}, {"code", "too_many_connections"},
                     {"unauthenticated", runtime.unauthenticated.load()},
                     {"connections", runtime.connections.load()}});
          ssh_free(s);
          ++dropped.count;
          dropped.last_client = peer.text;
          dropped.reason = runtime.unauthenticated.load() >= cfg->server.max_startups
                               ? "max_startups"
                               : "max_sessions";
          const auto now = std::chrono::steady_clock::now();
          if (now >= dropped.last_record + kDropRecordEvery) audit_dropped(now);
          continue;
        }
        runtime.unauthenticated.fetch_add(1);
        Accepted a;
        a.session = s;
        a.id = id;
        a.peer = peer.text;
        a.peer_ip = peer.ip;
        a.accepted_at = std::chrono::steady_clock::now();
        workers[rr++ % workers.size()]->adopt(std::move(a));
      }
    }
  }

  audit_dropped(std::chrono::steady_clock::now());
  // Drain: no new connections and no control requests; sessions may finish until the deadline.
  binds.clear();
  control->reset();
  runtime.draining = true;
  auto deadline = std::chrono::steady_clock::now() + cfg->server.drain_timeout;
  for (auto& w : workers) w->drain(deadline);
  for (auto& w : workers) w->join();
  // Answers still queued by the store are posted to the stopped workers and never run.
  (*store)->stop();
  offload.stop();
  recorder.stop();  // the last recordings are closed and their records written
  {
    audit::Record r("gateway_stopped");
    r.str("instance", runtime.instance).str("reason", "signal");
    auditor.note(std::move(r));
    // The last records, then a final checkpoint; durable callbacks post to the stopped workers.
    if (auto closed = (*audit_log)->close(); !closed) {
      log_event(Level::kError, "audit_close_failed",
                {{"code", closed.error().code}, {"reason", closed.error().message}});
    }
    if (syslog_sink != nullptr) {
      log_event(syslog_sink->dropped() > 0 ? Level::kWarn : Level::kInfo, "audit_syslog_copies",
                {{"sent", syslog_sink->sent()}, {"dropped", syslog_sink->dropped()}});
    }
  }
  if (runtime.resolving.load() > 0) {
    // A name lookup thread may still post to a worker: keep the workers (and the runtime they
    // point to) alive until the process exits rather than free them under it.
    log_event(Level::kInfo, "exit_with_lookups_running", {{"lookups", runtime.resolving.load()}});
    for (auto& w : workers) (void)w.release();
    ::close(sfd);
    ::close(ep);
    log_event(Level::kInfo, "stopped", {});
    std::_Exit(0);
  }
  workers.clear();
  ::close(sfd);
  ::close(ep);
  ssh_finalize();
  log_event(Level::kInfo, "stopped", {});
  return 0;
}

}  // namespace touchgate::gateway
