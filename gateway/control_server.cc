// Trust boundary: local peers of the control socket; their credentials are checked before a byte
// is read, their request is parsed by parse_request alone.
#include "gateway/control_server.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "gateway/log.h"

namespace touchgate::gateway {

namespace {

constexpr const char* kUnusable = "control_socket_unusable";
constexpr size_t kMaxAcceptsPerEvent = 64;

// account_groups lists the groups of uid's account (primary and supplementary), empty when the
// account is unknown.
std::vector<gid_t> account_groups(uid_t uid) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 16384);
  passwd pw{};
  passwd* found = nullptr;
  for (;;) {
    int rc = getpwuid_r(uid, &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || found == nullptr) return {};
    break;
  }
  std::vector<gid_t> groups(32);
  for (int attempt = 0; attempt < 8; ++attempt) {
    int n = static_cast<int>(groups.size());
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<size_t>(n));
      return groups;
    }
    groups.resize(static_cast<size_t>(std::max(n, static_cast<int>(groups.size()) * 2)));
  }
  return {};
}

// group_id looks up a group by name.
std::optional<gid_t> group_id(const std::string& name) {
  long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 16384);
  group gr{};
  group* found = nullptr;
  for (;;) {
    int rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || found == nullptr) return std::nullopt;
    return gr.gr_gid;
  }
}

// send_line writes a short line without waiting (a refusal on a fresh socket fits its buffer).
void send_line(int fd, const std::string& line) {
  [[maybe_unused]] ssize_t n = ::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

// close_quietly reads what the peer sent and was not read, then closes: closing a unix socket with
// unread input resets the peer's connection, which may then miss the refusal it was sent.
void close_quietly(int fd) {
  char buf[4096];
  for (int i = 0; i < 4; ++i) {
    if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
  }
  ::close(fd);
}

}  // namespace

std::string control_peer_refusal(const PeerCredentials& peer, uid_t self,
                                 std::optional<gid_t> admin_gid,
                                 const std::vector<gid_t>& account_groups) {
  if (peer.uid == 0 || peer.uid == self) return "";
  if (admin_gid) {
    if (peer.gid == *admin_gid || std::find(account_groups.begin(), account_groups.end(),
                                            *admin_gid) != account_groups.end()) {
      return "";
    }
    return "not root, not touchgated's user and not a member of admin_group";
  }
  return "not root and not touchgated's user (no admin_group is configured)";
}

Result<std::unique_ptr<ControlServer>> ControlServer::open(const policy::ServerConfig& server) {
  const std::filesystem::path& path = server.control_socket;
  const std::string where = path.string();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (where.empty() || where.size() >= sizeof addr.sun_path) {
    return fail(kUnusable, fmt::format("{}: control_socket path must be 1-{} bytes", where,
                                       sizeof addr.sun_path - 1));
  }
  std::memcpy(addr.sun_path, where.c_str(), where.size() + 1);

  std::unique_ptr<ControlServer> s(new ControlServer());
  s->path_ = path;
  if (!server.admin_group.empty()) {
    s->admin_gid_ = group_id(server.admin_group);
    if (!s->admin_gid_) {
      return fail(kUnusable, fmt::format("admin_group \"{}\": no such group", server.admin_group));
    }
    s->admin_group_ = server.admin_group;
  }

  // The socket's directory must be the gateway's own: were it writable by anyone else, the
  // stale-socket replacement and the group change below could be turned against another file.
  const std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0) {
    return fail(kUnusable, fmt::format("{}: cannot open the socket's directory {}: {}", where,
                                       dir.string(), std::strerror(errno)));
  }
  struct stat dst {};
  const bool stat_ok = ::fstat(dir_fd, &dst) == 0;
  if (!stat_ok || (dst.st_uid != ::geteuid() && dst.st_uid != 0) ||
      (dst.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    ::close(dir_fd);
    return fail(kUnusable,
                fmt::format("{}: the socket's directory {} must belong to touchgated's user (or "
                            "root) and be writable by no one else",
                            where, dir.string()));
  }
  if (s->admin_gid_ && (dst.st_mode & S_IXGRP) == 0) {
    // The group must be able to reach the socket: let it traverse (not list) the directory.
    if (::fchown(dir_fd, static_cast<uid_t>(-1), *s->admin_gid_) != 0 ||
        ::fchmod(dir_fd, (dst.st_mode & 07777) | S_IXGRP) != 0) {
      int e = errno;
      ::close(dir_fd);
      return fail(kUnusable, fmt::format("{}: cannot let group {} traverse {}: {}", where,
                                         server.admin_group, dir.string(), std::strerror(e)));
    }
  }
  ::close(dir_fd);

  struct stat st {};
  if (::lstat(where.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fail(kUnusable,
                  fmt::format("{}: exists and is not a socket; refusing to replace it", where));
    }
    // A socket someone still listens on belongs to a running gateway; one nobody listens on
    // was left by a gateway that stopped.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0) return fail(kUnusable, fmt::format("socket: {}", std::strerror(errno)));
    int rc = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::close(probe);
    if (rc == 0 || err == EAGAIN) {
      return fail(kUnusable, fmt::format("{}: another touchgated is listening there", where));
    }
    if (::unlink(where.c_str()) != 0 && errno != ENOENT) {
      return fail(kUnusable, fmt::format("{}: cannot remove the stale socket: {}", where,
                                         std::strerror(errno)));
    }
  } else if (errno != ENOENT) {
    return fail(kUnusable, fmt::format("{}: {}", where, std::strerror(errno)));
  }

  s->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return fail(kUnusable, fmt::format("socket: {}", std::strerror(errno)));
  // The file is born 0600 (0660 with an admin group, whose group is set just below without
  // following any link); who may talk to it is decided by SO_PEERCRED in any case.
  const mode_t old_mask = ::umask(s->admin_gid_ ? 0117 : 0177);
  int rc = ::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old_mask);
  if (rc != 0)
    return fail(kUnusable, fmt::format("{}: cannot bind: {}", where, std::strerror(err)));
  if (::lstat(where.c_str(), &st) != 0) {
    return fail(kUnusable, fmt::format("{}: {}", where, std::strerror(errno)));
  }
  s->dev_ = st.st_dev;
  s->ino_ = st.st_ino;
  if (s->admin_gid_) {
    if (::lchown(where.c_str(), static_cast<uid_t>(-1), *s->admin_gid_) != 0) {
      return fail(kUnusable, fmt::format("{}: cannot give the socket to group {}: {}", where,
                                         server.admin_group, std::strerror(errno)));
    }
  }
  if (::listen(s->listen_fd_, 16) != 0) {
    return fail(kUnusable, fmt::format("{}: cannot listen: {}", where, std::strerror(errno)));
  }
  s->epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (s->epfd_ < 0 || ::epoll_ctl(s->epfd_, EPOLL_CTL_ADD, s->listen_fd_, &ev) != 0) {
    return fail(kUnusable, fmt::format("epoll: {}", std::strerror(errno)));
  }
  return s;
}

ControlServer::~ControlServer() {
  for (auto& [key, c] : clients_) ::close(c.fd);
  clients_.clear();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    // Remove the file only while it is still the one this server made.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
      ::unlink(path_.c_str());
    }
  }
  if (epfd_ >= 0) ::close(epfd_);
}

void ControlServer::on_ready() {
  epoll_event events[16];
  int n = ::epoll_wait(epfd_, events, 16, 0);
  for (int i = 0; i < n; ++i) {
    const uint64_t key = events[i].data.u64;
    if (key == 0) {
      accept_all();
    } else {
      on_client(key, events[i].events);
    }
  }
}

void ControlServer::accept_all() {
  for (size_t k = 0; k < kMaxAcceptsPerEvent; ++k) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or an aborted connection
    admit(fd);
  }
}

void ControlServer::admit(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    log_event(Level::kWarn, "control_refused",
              {{"reason", fmt::format("no peer credentials: {}", std::strerror(errno))}});
    ::close(fd);
    return;
  }
  PeerCredentials peer{cred.pid, cred.uid, cred.gid};
  std::string refusal;
  if (peer.uid != 0 && peer.uid != ::geteuid() && admin_gid_) {
    refusal = control_peer_refusal(peer, ::geteuid(), admin_gid_, account_groups(peer.uid));
  } else {
    refusal = control_peer_refusal(peer, ::geteuid(), admin_gid_, {});
  }
  if (refusal.empty() && clients_.size() >= kMaxClients) {
    refusal = fmt::format("too many control connections at once (at most {})", kMaxClients);
  }
  if (!refusal.empty()) {
    log_event(Level::kWarn, "control_refused",
              {{"uid", peer.uid}, {"pid", peer.pid}, {"reason", refusal}});
    send_line(fd, format_error(Error{"control_refused", fmt::format("uid {} may not control "
                                                                    "touchgated: {}",
                                                                    peer.uid, refusal)}));
    close_quietly(fd);
    return;
  }
  const uint64_t key = next_key_++;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = key;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    return;
  }
  Client c;
  c.fd = fd;
  c.peer = peer;
  c.deadline = Clock::now() + kRequestDeadline;
  clients_.emplace(key, std::move(c));
}

void ControlServer::on_client(uint64_t key, uint32_t events) {
  auto it = clients_.find(key);
  if (it == clients_.end()) return;
  Client& c = it->second;
  if (c.replying) {
    write_out(key, c);
    return;
  }
  bool eof = false;
  char buf[1024];
  while (c.in.size() <= kMaxControlRequest) {
    const size_t want = std::min(sizeof buf, kMaxControlRequest + 1 - c.in.size());
    ssize_t n = ::recv(c.fd, buf, want, MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    eof = true;  // EOF or error: what arrived is the whole request
    break;
  }
  if ((events & (EPOLLHUP | EPOLLERR)) != 0) eof = true;
  if (eof && c.in.empty()) {
    close_client(key);  // connected and left without a word
    return;
  }
  if (c.in.find('\n') != std::string::npos || c.in.size() > kMaxControlRequest || eof) {
    respond(key, c);
  }
}

void ControlServer::respond(uint64_t key, Client& c) {
  auto request = parse_request(c.in);
  if (!request) {
    log_event(
        Level::kInfo, "control_bad_request",
        {{"uid", c.peer.uid}, {"code", request.error().code}, {"reason", request.error().message}});
    c.out = format_error(request.error());
  } else {
    std::string text = encode_request(*request);
    text.pop_back();
    log_event(Level::kInfo, "control_request",
              {{"uid", c.peer.uid}, {"pid", c.peer.pid}, {"request", text}});
    c.out = handler_ ? handler_(*request, c.peer)
                     : format_error(Error{"control_unavailable", "touchgated is starting"});
  }
  c.in.clear();
  c.replying = true;
  c.deadline = Clock::now() + kReplyDeadline;
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u64 = key;
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
  write_out(key, c);
}

void ControlServer::write_out(uint64_t key, Client& c) {
  while (c.sent < c.out.size()) {
    ssize_t n =
        ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;  // EPOLLOUT brings us back
    close_client(key);                                         // the peer went away
    return;
  }
  close_client(key);
}

void ControlServer::close_client(uint64_t key) {
  auto it = clients_.find(key);
  if (it == clients_.end()) return;
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  close_quietly(it->second.fd);
  clients_.erase(it);
}

int ControlServer::timeout_ms() const {
  if (clients_.empty()) return -1;
  auto next = Clock::time_point::max();
  for (const auto& [key, c] : clients_) next = std::min(next, c.deadline);
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
}

void ControlServer::tick() {
  const auto now = Clock::now();
  std::vector<uint64_t> expired;
  for (auto& [key, c] : clients_) {
    if (now < c.deadline) continue;
    if (!c.replying) {
      log_event(Level::kInfo, "control_timeout",
                {{"uid", c.peer.uid}, {"pid", c.peer.pid}, {"reason", "no request in time"}});
      send_line(c.fd,
                format_error(Error{"control_timeout",
                                   fmt::format("no complete request within {} s",
                                               std::chrono::seconds(kRequestDeadline).count())}));
    } else {
      log_event(Level::kInfo, "control_timeout",
                {{"uid", c.peer.uid}, {"pid", c.peer.pid}, {"reason", "reply not read in time"}});
    }
    expired.push_back(key);
  }
  for (uint64_t key : expired) close_client(key);
}

}  // namespace touchgate::gateway
