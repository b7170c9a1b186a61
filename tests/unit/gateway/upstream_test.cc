#include "gateway/upstream.h"
#include "tests/unit/test_util.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace touchgate::gateway {
namespace {

TEST(UpstreamTest, NumericAddressesResolveWithoutDns) {
  SocketAddress a;
  ASSERT_TRUE(resolve_numeric("127.0.0.1", 22, &a));
  EXPECT_EQ(a.to_string(), "127.0.0.1:22");
  ASSERT_TRUE(resolve_numeric("::1", 2222, &a));
  EXPECT_EQ(a.to_string(), "[::1]:2222");
  ASSERT_TRUE(resolve_numeric("[::1]", 2222, &a));
  EXPECT_FALSE(resolve_numeric("db1.example.com", 22, &a));
  EXPECT_FALSE(resolve_numeric("", 22, &a));
}

TEST(UpstreamTest, ConnectToAListeningSocketSucceeds) {
  int port = 0;
  const int srv = touchgate::testing::listen_loopback(&port);
  ASSERT_GE(srv, 0);
  SocketAddress a;
  ASSERT_TRUE(resolve_numeric("127.0.0.1", static_cast<uint16_t>(port), &a));
  bool in_progress = false;
  auto fd = start_connect(a, &in_progress);
  ASSERT_TRUE(fd.has_value());
  if (in_progress) {
    // Loopback completes quickly; SO_ERROR reports success once writable.
    usleep(50000);
  }
  EXPECT_EQ(connect_result(*fd), 0);
  ::close(*fd);
  ::close(srv);
}

TEST(UpstreamTest, ConnectToAClosedPortFailsWithAReason) {
  // Find a free port, then close it so nothing listens there.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  socklen_t len = sizeof sin;
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  ::close(probe);
  SocketAddress a;
  ASSERT_TRUE(resolve_numeric("127.0.0.1", ntohs(sin.sin_port), &a));
  bool in_progress = false;
  auto fd = start_connect(a, &in_progress);
  if (fd.has_value()) {
    usleep(50000);
    EXPECT_EQ(connect_result(*fd), ECONNREFUSED);
    ::close(*fd);
  } else {
    EXPECT_EQ(fd.error().code, "target_connect_failed");
    EXPECT_NE(fd.error().message.find("refused"), std::string::npos) << fd.error().message;
  }
}

TEST(UpstreamTest, UnresolvableNameIsAnError) {
  auto r = resolve_blocking("no-such-host.invalid", 22);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, "target_connect_failed");
}

}  // namespace
}  // namespace touchgate::gateway
