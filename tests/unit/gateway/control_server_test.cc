#include "gateway/control_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "gateway/admin.h"

namespace touchgate::gateway {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ControlPeerTest, RootAndTheDaemonsUserAreAllowed) {
  EXPECT_EQ(control_peer_refusal({1, 0, 0}, 1000, std::nullopt, {}), "");
  EXPECT_EQ(control_peer_refusal({1, 1000, 1000}, 1000, std::nullopt, {}), "");
  EXPECT_EQ(control_peer_refusal({1, 0, 0}, 1000, gid_t{50}, {}), "");
}

TEST(ControlPeerTest, OthersOnlyThroughTheAdminGroup) {
  EXPECT_THAT(control_peer_refusal({1, 1001, 50}, 1000, std::nullopt, {50}),
              HasSubstr("no admin_group is configured"));
  EXPECT_EQ(control_peer_refusal({1, 1001, 50}, 1000, gid_t{50}, {}), "");          // peer's gid
  EXPECT_EQ(control_peer_refusal({1, 1001, 100}, 1000, gid_t{50}, {100, 50}), "");  // member
  EXPECT_THAT(control_peer_refusal({1, 1001, 100}, 1000, gid_t{50}, {100, 51}),
              HasSubstr("not a member of admin_group"));
}

TEST(RestartOnlyTest, NamesEveryChangedSetting) {
  policy::Config a;
  a.server.listen.push_back({"127.0.0.1", 2222});
  a.server.state_dir = "/var/lib/touchgate";
  a.server.control_socket = "/var/lib/touchgate/control.sock";
  policy::Config b = a;
  b.server.idle_timeout = std::chrono::seconds(5);  // may change on reload
  b.server.name = "other";
  b.server.max_sessions = 7;
  b.ca.cert_lifetime = std::chrono::seconds(120);  // read for every certificate
  b.mfa.touch_timeout = std::chrono::seconds(20);
  b.recording.max_size = 1u << 20;
  EXPECT_TRUE(restart_only_changes(a, b).empty());
  b.server.listen[0].port = 2223;
  b.server.host_keys.push_back("/k");
  b.server.state_dir = "/srv";
  b.server.workers = 3;
  b.server.control_socket = "/run/tg.sock";
  b.server.admin_group = "wheel";
  EXPECT_THAT(
      restart_only_changes(a, b),
      ::testing::ElementsAre("server.listen", "server.host_keys", "server.state_dir",
                             "server.workers", "server.control_socket", "server.admin_group"));
}

TEST(RestartOnlyTest, NamesAuditAndCaKeys) {
  policy::Config a;
  a.audit.dir = "/var/lib/touchgate/audit";
  policy::Config b = a;
  b.audit.dir = "/srv/audit";
  b.audit.key = "/srv/audit_key";
  b.audit.pkcs11_uri = "pkcs11:token=audit;object=audit";
  b.audit.pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so";
  b.audit.pin_file = "/etc/touchgate/audit.pin";
  b.audit.max_segment_size = 1u << 20;
  b.audit.max_segment_age = std::chrono::seconds(60);
  b.audit.checkpoint_every = 5;
  b.audit.checkpoint_interval = std::chrono::seconds(5);
  b.audit.deny_on_failure = false;
  b.audit.syslog = true;
  b.audit.syslog_socket = "/run/log";
  b.audit.syslog_facility = "local0";
  b.ca.pkcs11_uri = "pkcs11:token=ca;object=ca";  // [ca] added: the key is opened at start
  b.ca.pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so";
  b.ca.pin_file = "/etc/touchgate/ca.pin";
  b.ca.key_file = "/etc/touchgate/ca.key";
  EXPECT_THAT(restart_only_changes(a, b),
              ::testing::ElementsAre(
                  "audit.dir", "audit.key", "audit.pkcs11_uri", "audit.pkcs11_module",
                  "audit.pin_file", "audit.max_segment_size", "audit.max_segment_age",
                  "audit.checkpoint_every", "audit.checkpoint_interval", "audit.on_failure",
                  "audit.syslog", "audit.syslog_socket", "audit.syslog_facility", "ca.pkcs11_uri",
                  "ca.pkcs11_module", "ca.pin_file", "ca.key_file"));
  // What a reload keeps: the running values of exactly those settings, the rest from the file.
  b.ca.cert_lifetime = std::chrono::seconds(300);
  b.server.workers = 9;
  b.server.idle_timeout = std::chrono::seconds(7);
  keep_restart_only(a, &b);
  EXPECT_TRUE(restart_only_changes(a, b).empty());
  EXPECT_EQ(b.audit, a.audit);
  EXPECT_FALSE(b.ca.configured());
  EXPECT_EQ(b.ca.cert_lifetime, std::chrono::seconds(300));
  EXPECT_EQ(b.server.workers, 0);
  EXPECT_EQ(b.server.idle_timeout, std::chrono::seconds(7));
}

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tg-control-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    server_.control_socket = dir_ / "control.sock";
  }
  void TearDown() override { fs::remove_all(dir_); }

  int connect_client() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, server_.control_socket.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // exchange sends bytes on a new connection, runs the server until the client's reply is
  // complete (the server closes) and returns the reply.
  std::string exchange(ControlServer& s, const std::string& bytes, bool close_write = false) {
    int fd = connect_client();
    EXPECT_GE(fd, 0);
    if (fd < 0) return "";
    EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    if (close_write) ::shutdown(fd, SHUT_WR);
    std::string reply;
    for (int i = 0; i < 200; ++i) {
      pollfd p{s.fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
      s.on_ready();
      s.tick();
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) reply.append(buf, static_cast<size_t>(n));
      if (n == 0) break;
    }
    ::close(fd);
    return reply;
  }

  fs::path dir_;
  policy::ServerConfig server_;
};

TEST_F(ControlServerTest, ServesOneRequestPerConnection) {
  auto s = ControlServer::open(server_);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  struct stat st {};
  ASSERT_EQ(::lstat(server_.control_socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());

  std::vector<std::string> seen;
  (*s)->set_handler([&](const ControlRequest& r, const PeerCredentials& peer) {
    EXPECT_EQ(peer.uid, ::geteuid());
    seen.push_back(encode_request(r));
    return format_ok("done");
  });
  EXPECT_EQ(exchange(**s, "ping\n"), "ok done\n");
  EXPECT_EQ(exchange(**s, "sessions kill --user bob\n"), "ok done\n");
  EXPECT_THAT(exchange(**s, "sessions kil 1\n"), StartsWith("error control_bad_request "));
  EXPECT_THAT(exchange(**s, "ping\nping\n"), StartsWith("error control_bad_request "));
  EXPECT_THAT(exchange(**s, "ping", true), StartsWith("error control_bad_request "));
  EXPECT_THAT(exchange(**s, std::string(5000, 'a')), StartsWith("error control_request_too_long "));
  EXPECT_THAT(seen, ::testing::ElementsAre("ping\n", "sessions kill --user bob\n"));

  // The file goes with the server.
  s->reset();
  EXPECT_FALSE(fs::exists(fs::symlink_status(server_.control_socket)));
}

TEST_F(ControlServerTest, SilentClientTimesOut) {
  auto s = ControlServer::open(server_);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  (*s)->set_handler([](const ControlRequest&, const PeerCredentials&) { return format_ok(); });
  int fd = connect_client();
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "pi", 2, MSG_NOSIGNAL), 2);
  std::string reply;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{(*s)->fd(), POLLIN, 0};
    ::poll(&p, 1, std::max((*s)->timeout_ms(), 10));
    (*s)->on_ready();
    (*s)->tick();
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) reply.append(buf, static_cast<size_t>(n));
    if (n == 0) break;
  }
  ::close(fd);
  EXPECT_EQ(reply, "error control_timeout no complete request within 2 s\n");
}

TEST_F(ControlServerTest, StaleSocketIsReplacedAndALiveOneIsNot) {
  {
    auto first = ControlServer::open(server_);
    ASSERT_TRUE(first.has_value()) << first.error().message;
    auto second = ControlServer::open(server_);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code, "control_socket_unusable");
    EXPECT_THAT(second.error().message, HasSubstr("another touchgated is listening there"));
  }
  // A socket file nobody listens on (a daemon that was killed).
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, server_.control_socket.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  auto again = ControlServer::open(server_);
  ASSERT_TRUE(again.has_value()) << again.error().message;
}

TEST_F(ControlServerTest, AnythingElseAtThePathIsRefused) {
  std::ofstream(server_.control_socket) << "precious\n";
  auto s = ControlServer::open(server_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, "control_socket_unusable");
  EXPECT_EQ(s.error().message, server_.control_socket.string() +
                                   ": exists and is not a socket; refusing to replace it");
  std::ifstream in(server_.control_socket);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "precious");
}

TEST_F(ControlServerTest, UnknownAdminGroupIsAnError) {
  server_.admin_group = "no-such-group-tg";
  auto s = ControlServer::open(server_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message, "admin_group \"no-such-group-tg\": no such group");
}

TEST_F(ControlServerTest, AdminGroupMakesTheSocketGroupReadable) {
  server_.admin_group = "root";  // gid 0: every test machine has it, and we may chown to it
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the socket to group root";
  auto s = ControlServer::open(server_);
  ASSERT_TRUE(s.has_value()) << s.error().message;
  struct stat st {};
  ASSERT_EQ(::lstat(server_.control_socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, 0u);
  // The group can reach the socket: its directory is traversable (not readable) by the group.
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0070, 0010u);
  EXPECT_EQ(st.st_gid, 0u);
}

TEST_F(ControlServerTest, DirectoryWritableByOthersIsRefused) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  auto s = ControlServer::open(server_);
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().message, HasSubstr("must belong to touchgated's user (or root) and be "
                                           "writable by no one else"));
  EXPECT_FALSE(fs::exists(server_.control_socket));
}

TEST_F(ControlServerTest, SymlinkedDirectoryIsRefused) {
  fs::create_directory(dir_ / "real");
  fs::create_directory_symlink(dir_ / "real", dir_ / "link");
  server_.control_socket = dir_ / "link" / "control.sock";
  auto s = ControlServer::open(server_);
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().message, HasSubstr("cannot open the socket's directory"));
}

}  // namespace
}  // namespace touchgate::gateway
