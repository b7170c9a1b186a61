// ssh_signal: a small SSH client (libssh) that runs one command on a session channel and, after
// a delay, sends a "signal" channel request (RFC 4254 6.9) on that channel — something OpenSSH's
// ssh never does. For the scenario that checks a gateway relays such a request to the target.
//
// Usage: ssh_signal HOST PORT USER KEY CERT DELAY_MS SIGNAL COMMAND
//   KEY    an OpenSSH private key file (no passphrase)
//   CERT   its OpenSSH certificate (KEY-cert.pub format)
//   SIGNAL a signal name without "SIG" (TERM, INT, ...); "-" sends none
// The agent in $SSH_AUTH_SOCK is forwarded: agent forwarding is requested on the channel and
// every auth-agent@openssh.com channel the server opens is relayed to that socket.
// Host keys are not checked (a test tool).
//
// Output: the command's stdout as it arrives (its stderr goes to our stderr), then one line
// "exit-status N" or "exit-signal NAME" (or "exit-none" when the channel closed without either).
// Exit status 0 when the session ended, 1 on any error, 2 on usage errors; the whole run is
// limited to 20 s (then exit status 3).
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kOverallTimeout = std::chrono::seconds(20);

// One forwarded agent channel: bytes from the channel go to the agent socket and back.
struct AgentRelay {
  ssh_channel channel = nullptr;
  int fd = -1;
  bool done = false;
};

struct Client {
  ssh_session session = nullptr;
  std::string agent_sock;
  std::vector<AgentRelay> agents;
  bool exit_status_seen = false;
  int exit_status = 0;
  std::string exit_signal;
  bool exit_signal_seen = false;
};

int connect_agent(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return -1;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

ssh_channel on_agent_channel(ssh_session session, void* userdata) {
  auto* c = static_cast<Client*>(userdata);
  const int fd = connect_agent(c->agent_sock);
  if (fd < 0) {
    std::fprintf(stderr, "ssh_signal: cannot connect to the agent at %s\n", c->agent_sock.c_str());
    return nullptr;
  }
  ssh_channel ch = ssh_channel_new(session);
  if (ch == nullptr) {
    ::close(fd);
    return nullptr;
  }
  c->agents.push_back(AgentRelay{ch, fd, false});
  return ch;
}

void on_exit_status(ssh_session, ssh_channel, int status, void* userdata) {
  auto* c = static_cast<Client*>(userdata);
  c->exit_status_seen = true;
  c->exit_status = status;
}

void on_exit_signal(ssh_session, ssh_channel, const char* signal, int, const char*, const char*,
                    void* userdata) {
  auto* c = static_cast<Client*>(userdata);
  c->exit_signal_seen = true;
  c->exit_signal = signal != nullptr ? signal : "";
}

bool write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    const ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Moves whatever is waiting on each agent channel to the agent and back; closes finished ones.
bool relay_agents(Client& c) {
  char buf[16384];
  for (auto& a : c.agents) {
    if (a.done) continue;
    for (;;) {
      const int n = ssh_channel_read_nonblocking(a.channel, buf, sizeof(buf), 0);
      if (n == SSH_ERROR) {
        a.done = true;
        break;
      }
      if (n <= 0) break;
      if (!write_all(a.fd, buf, static_cast<size_t>(n))) {
        std::fprintf(stderr, "ssh_signal: writing to the agent failed\n");
        return false;
      }
    }
    for (;;) {
      pollfd p{a.fd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      const ssize_t n = ::read(a.fd, buf, sizeof(buf));
      if (n <= 0) {
        a.done = true;
        break;
      }
      if (ssh_channel_write(a.channel, buf, static_cast<uint32_t>(n)) == SSH_ERROR) {
        a.done = true;
        break;
      }
    }
    if (!a.done && (ssh_channel_is_eof(a.channel) || ssh_channel_is_closed(a.channel))) {
      a.done = true;
    }
    if (a.done) {
      ::close(a.fd);
      a.fd = -1;
      if (!ssh_channel_is_closed(a.channel)) ssh_channel_close(a.channel);
    }
  }
  return true;
}

// Reads what the session channel holds: stdout to ours, stderr to ours.
bool drain(ssh_channel ch) {
  char buf[16384];
  for (int is_stderr = 0; is_stderr < 2; ++is_stderr) {
    for (;;) {
      const int n = ssh_channel_read_nonblocking(ch, buf, sizeof(buf), is_stderr);
      if (n == SSH_ERROR) return !ssh_channel_is_open(ch);
      if (n <= 0) break;
      if (!write_all(is_stderr ? 2 : 1, buf, static_cast<size_t>(n))) return false;
    }
  }
  return true;
}

int fail(ssh_session session, const char* what) {
  std::fprintf(stderr, "ssh_signal: %s: %s\n", what,
               session != nullptr ? ssh_get_error(session) : "");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr,
                 "usage: ssh_signal HOST PORT USER KEY CERT DELAY_MS SIGNAL COMMAND\n");
    return 2;
  }
  const char* host = argv[1];
  const unsigned port = static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10));
  const char* user = argv[3];
  const char* key_file = argv[4];
  const char* cert_file = argv[5];
  const long delay_ms = std::strtol(argv[6], nullptr, 10);
  const std::string signal_name = argv[7];
  const char* command = argv[8];
  if (port == 0 || port > 65535 || delay_ms < 0) {
    std::fprintf(stderr, "ssh_signal: bad PORT or DELAY_MS\n");
    return 2;
  }
  alarm(static_cast<unsigned>(kOverallTimeout.count()) + 2);  // the last resort: SIGALRM kills us
  const auto deadline = Clock::now() + kOverallTimeout;

  Client c;
  const char* sock = std::getenv("SSH_AUTH_SOCK");
  c.agent_sock = sock != nullptr ? sock : "";

  ssh_key priv = nullptr;
  ssh_key cert = nullptr;
  if (ssh_pki_import_privkey_file(key_file, nullptr, nullptr, nullptr, &priv) != SSH_OK) {
    std::fprintf(stderr, "ssh_signal: cannot read the key %s\n", key_file);
    return 1;
  }
  if (ssh_pki_import_cert_file(cert_file, &cert) != SSH_OK ||
      ssh_pki_copy_cert_to_privkey(cert, priv) != SSH_OK) {
    std::fprintf(stderr, "ssh_signal: cannot read the certificate %s\n", cert_file);
    return 1;
  }

  ssh_session session = ssh_new();
  c.session = session;
  const int verbosity = SSH_LOG_NOLOG;
  const long timeout_s = 10;
  const bool no = false;
  ssh_options_set(session, SSH_OPTIONS_HOST, host);
  ssh_options_set(session, SSH_OPTIONS_PORT, &port);
  ssh_options_set(session, SSH_OPTIONS_USER, user);
  ssh_options_set(session, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeout_s);
  ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &no);
  ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");

  ssh_callbacks_struct cb{};
  cb.userdata = &c;
  cb.channel_open_request_auth_agent_function = on_agent_channel;
  ssh_callbacks_init(&cb);
  ssh_set_callbacks(session, &cb);

  if (ssh_connect(session) != SSH_OK) return fail(session, "connect");
  // Host key: accepted whatever it is (a test tool talking to a test gateway).
  if (ssh_userauth_try_publickey(session, nullptr, cert) != SSH_AUTH_SUCCESS ||
      ssh_userauth_publickey(session, nullptr, priv) != SSH_AUTH_SUCCESS) {
    return fail(session, "authentication");
  }
  ssh_channel ch = ssh_channel_new(session);
  if (ch == nullptr || ssh_channel_open_session(ch) != SSH_OK) {
    return fail(session, "opening the session channel");
  }
  ssh_channel_callbacks_struct ccb{};
  ccb.userdata = &c;
  ccb.channel_exit_status_function = on_exit_status;
  ccb.channel_exit_signal_function = on_exit_signal;
  ssh_callbacks_init(&ccb);
  ssh_set_channel_callbacks(ch, &ccb);
  if (!c.agent_sock.empty() && ssh_channel_request_auth_agent(ch) != SSH_OK) {
    // A server may refuse the request and still open agent channels; go on.
    std::fprintf(stderr, "ssh_signal: agent forwarding request refused (going on)\n");
  }
  if (ssh_channel_request_exec(ch, command) != SSH_OK) return fail(session, "exec");
  const auto signal_at = Clock::now() + std::chrono::milliseconds(delay_ms);
  ssh_event event = ssh_event_new();
  if (event == nullptr || ssh_event_add_session(event, session) != SSH_OK) {
    return fail(session, "ssh_event");
  }
  bool signal_sent = signal_name == "-";

  int rc = 0;
  for (;;) {
    if (Clock::now() >= deadline) {
      std::fprintf(stderr, "ssh_signal: the session did not end within %lld s\n",
                   static_cast<long long>(kOverallTimeout.count()));
      rc = 3;
      break;
    }
    if (!drain(ch) || !relay_agents(c)) {
      rc = fail(session, "relaying");
      break;
    }
    if (!signal_sent && Clock::now() >= signal_at && ssh_channel_is_open(ch)) {
      if (ssh_channel_request_send_signal(ch, signal_name.c_str()) != SSH_OK) {
        rc = fail(session, "sending the signal");
        break;
      }
      std::fprintf(stderr, "ssh_signal: sent signal %s\n", signal_name.c_str());
      signal_sent = true;
    }
    if (ssh_channel_is_closed(ch) || ssh_channel_is_eof(ch)) {
      // The exit status or signal comes after EOF, before CLOSE: the session has ended at
      // either of them or at CLOSE. Read what may still be buffered first.
      if (!drain(ch)) {
        rc = fail(session, "reading");
        break;
      }
      if (ssh_channel_is_closed(ch) || c.exit_status_seen || c.exit_signal_seen) break;
    }
    if (!ssh_is_connected(session)) {
      rc = fail(session, "the connection was lost");
      break;
    }
    // Handles what the server sent, waiting for it at most 20 ms (the agents and the signal's
    // time are looked at between waits). Reading a channel alone does not do this once the
    // channel has had its EOF: the exit-status or exit-signal after it needs this.
    if (ssh_event_dopoll(event, 20) == SSH_ERROR && !ssh_is_connected(session)) {
      rc = fail(session, "the connection was lost");
      break;
    }
  }
  ssh_event_remove_session(event, session);
  ssh_event_free(event);
  std::fflush(stdout);
  if (rc == 0) {
    if (c.exit_signal_seen) {
      std::printf("exit-signal %s\n", c.exit_signal.c_str());
    } else if (c.exit_status_seen) {
      std::printf("exit-status %d\n", c.exit_status);
    } else {
      std::printf("exit-none\n");
    }
  }
  std::fflush(stdout);
  for (auto& a : c.agents) {
    if (a.fd >= 0) ::close(a.fd);
    ssh_channel_free(a.channel);
  }
  if (ssh_channel_is_open(ch)) ssh_channel_close(ch);
  ssh_channel_free(ch);
  ssh_disconnect(session);
  ssh_free(session);
  ssh_key_free(cert);
  ssh_key_free(priv);
  return rc;
}
