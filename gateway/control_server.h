// The control socket: a unix stream socket on which `touchgate reload` and `touchgate sessions`
// reach the daemon (docs/architecture.md, "Control socket"). Runs on the acceptor thread: its
// own epoll set, watched by the acceptor's, so one descriptor stands for the listener and every
// client. Trust boundary: local peers. Only root, the daemon's own user and, with [server]
// admin_group, that group's members are served (SO_PEERCRED, checked at accept); the socket file
// is 0600 (0660 with the admin group) as a first fence.
//
// Per client: one request line within kRequestDeadline (at most kMaxControlRequest bytes), one
// reply written within kReplyDeadline, then the connection closes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/control_protocol.h"
#include "policy/config.h"
#include "ssh/error.h"

namespace touchgate::gateway {

// What the kernel says about a connected peer (SO_PEERCRED, as of its connect()).
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// control_peer_refusal decides whether a peer may use the control socket: allowed are uid 0, the
// daemon's effective uid `self`, and, when `admin_gid` is set, a peer whose gid is the admin group
// or whose account lists it among its groups (`account_groups`, from the account database).
// Returns "" when allowed, else the reason for the refusal.
std::string control_peer_refusal(const PeerCredentials& peer, uid_t self,
                                 std::optional<gid_t> admin_gid,
                                 const std::vector<gid_t>& account_groups);

class ControlServer {
 public:
  using Clock = std::chrono::steady_clock;
  // Handler runs one parsed request from an allowed peer and returns the whole reply.
  using Handler = std::function<std::string(const ControlRequest&, const PeerCredentials&)>;

  static constexpr std::chrono::seconds kRequestDeadline{2};
  static constexpr std::chrono::seconds kReplyDeadline{10};
  static constexpr size_t kMaxClients = 16;

  // open creates the socket at server.control_socket: a socket file already there is replaced
  // when nobody listens on it (left by a daemon that stopped), anything else there is an error;
  // mode 0600, or 0660 with group server.admin_group (which must exist). Errors have code
  // control_socket_unusable and name the path.
  static Result<std::unique_ptr<ControlServer>> open(const policy::ServerConfig& server);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // set_handler must be called before the first on_ready.
  void set_handler(Handler handler) { handler_ = std::move(handler); }
  // fd is readable when the listener or a client needs attention: then call on_ready.
  int fd() const { return epfd_; }
  void on_ready();
  // timeout_ms is how long until the next client deadline (-1: none); tick enforces deadlines.
  int timeout_ms() const;
  void tick();
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Client {
    int fd = -1;
    PeerCredentials peer;
    std::string in;
    std::string out;
    size_t sent = 0;
    bool replying = false;
    Clock::time_point deadline;
  };

  ControlServer() = default;
  void accept_all();
  void admit(int fd);
  void on_client(uint64_t key, uint32_t events);
  // respond runs the request in c.in and starts writing the reply.
  void respond(uint64_t key, Client& c);
  // write_out sends what it can; the client is closed once everything went out or on error.
  void write_out(uint64_t key, Client& c);
  void close_client(uint64_t key);

  std::filesystem::path path_;
  int listen_fd_ = -1;
  int epfd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::optional<gid_t> admin_gid_;
  std::string admin_group_;
  Handler handler_;
  std::unordered_map<uint64_t, Client> clients_;
  uint64_t next_key_ = 1;  // 0 is the listener
};

}  // namespace touchgate::gateway
