// UpstreamSsh against a real OpenSSH sshd on 127.0.0.1: certificate login, exec, pty, signals,
// sftp, flow control, and the refusals. Keys and certificates are made with ssh-keygen at start
// (the certificate is valid for ten minutes around now).
#include "gateway/upstream_ssh.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libssh/callbacks.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "gateway/upstream.h"
#include "ssh/digest.h"
#include "ssh/key.h"
#include "tests/unit/test_util.h"

namespace touchgate::gateway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void run(const std::string& command) {
  ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
}

std::vector<uint8_t> key_file_blob(const fs::path& p) {
  std::string text = read_file(p);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  auto line = ssh::parse_key_line(text);
  EXPECT_TRUE(line.has_value()) << p;
  return line ? line->blob : std::vector<uint8_t>{};
}

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  socklen_t len = sizeof sin;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&sin), &len);
  ::close(s);
  return ntohs(sin.sin_port);
}

// connect_to returns a connected non-blocking socket to 127.0.0.1:port, or -1.
int connect_to(int port) {
  SocketAddress addr;
  if (!resolve_numeric("127.0.0.1", static_cast<uint16_t>(port), &addr)) return -1;
  bool in_progress = false;
  auto fd = start_connect(addr, &in_progress);
  if (!fd) return -1;
  if (in_progress) {
    pollfd p{*fd, POLLOUT, 0};
    if (::poll(&p, 1, 2000) != 1 || connect_result(*fd) != 0) {
      ::close(*fd);
      return -1;
    }
  }
  return *fd;
}

// A real sshd with its own host key, trusting one user CA, certificate logins only.
class Sshd {
 public:
  explicit Sshd(const fs::path& dir) : dir_(dir) {}
  ~Sshd() { stop(); }

  bool start() {
    ::mkdir("/run/sshd", 0755);
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      std::ofstream(dir_ / "sshd_config")
          << "Port " << port_ << "\nListenAddress 127.0.0.1\nHostKey " << (dir_ / "host").string()
          << "\nPidFile none\nUsePAM no\nStrictModes no\nAuthorizedKeysFile none\n"
          << "TrustedUserCAKeys " << (dir_ / "ca.pub").string()
          << "\nPermitRootLogin yes\nLogLevel VERBOSE\nPermitUserEnvironment no\n"
          << "AcceptEnv TG_*\nX11Forwarding no\n"
          << "Subsystem sftp /usr/lib/openssh/sftp-server\n";
      pid_ = ::fork();
      if (pid_ == 0) {
        ::setpgid(0, 0);
        std::string cfg = (dir_ / "sshd_config").string(), log = (dir_ / "sshd.log").string();
        ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-f", cfg.c_str(), "-E", log.c_str(),
                nullptr);
        ::_exit(127);
      }
      for (int i = 0; i < 100; ++i) {
        int fd = connect_to(port_);
        if (fd >= 0) {
          ::close(fd);
          return true;
        }
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) break;  // e.g. the port was taken
        ::usleep(20000);
      }
      stop();
    }
    return false;
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  int port() const { return port_; }
  std::string log() const { return read_file(dir_ / "sshd.log"); }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// TestBind: a libssh server bind on 127.0.0.1, any free port, for the test targets below.
struct TestBind {
  explicit TestBind(const fs::path& host_key) : bind(ssh_bind_new()) {
    ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDADDR, "127.0.0.1");
    int any = 0;
    ssh_bind_options_set(bind, SSH_BIND_OPTIONS_BINDPORT, &any);
    ssh_bind_options_set(bind, SSH_BIND_OPTIONS_HOSTKEY, host_key.c_str());
    listening = ssh_bind_listen(bind) == SSH_OK;
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    ::getsockname(ssh_bind_get_fd(bind), reinterpret_cast<sockaddr*>(&sin), &len);
    port = ntohs(sin.sin_port);
  }
  ~TestBind() { ssh_bind_free(bind); }
  TestBind(const TestBind&) = delete;
  TestBind& operator=(const TestBind&) = delete;
  ssh_bind bind;
  bool listening = false;
  int port = 0;
};

// A target that misbehaves: a libssh server that, once the gateway has logged in, tries to open
// an agent, an X11 and a forwarded-tcpip channel towards it.
class ChannelOpeningTarget {
 public:
  explicit ChannelOpeningTarget(const fs::path& host_key) : b_(host_key) {
    thread_ = std::thread([this] { serve(); });
  }
  ~ChannelOpeningTarget() { thread_.join(); }
  bool listening() const { return b_.listening; }
  int port() const { return b_.port; }
  std::atomic<int> opened{0}, refused{0};
  std::atomic<bool> done{false};

 private:
  void serve() {
    ssh_session s = ssh_new();
    bool authed = false;
    ssh_server_callbacks_struct cb{};
    cb.userdata = &authed;
    cb.auth_pubkey_function = [](ssh_session, const char*, ssh_key, char state, void* ud) -> int {
      if (state == SSH_PUBLICKEY_STATE_VALID) *static_cast<bool*>(ud) = true;
      return SSH_AUTH_SUCCESS;
    };
    ssh_callbacks_init(&cb);
    if (b_.listening && ssh_bind_accept(b_.bind, s) == SSH_OK) {
      ssh_set_server_callbacks(s, &cb);
      ssh_set_auth_methods(s, SSH_AUTH_METHOD_PUBLICKEY);
      if (ssh_handle_key_exchange(s) == SSH_OK) {
        ssh_event ev = ssh_event_new();
        ssh_event_add_session(ev, s);
        auto end = Clock::now() + 5s;
        while (!authed && Clock::now() < end) ssh_event_dopoll(ev, 100);
        for (int kind = 0; authed && kind < 3; ++kind) {
          ssh_channel ch = ssh_channel_new(s);
          int rc = kind == 0   ? ssh_channel_open_auth_agent(ch)
                   : kind == 1 ? ssh_channel_open_x11(ch, "127.0.0.1", 6010)
                               : ssh_channel_open_reverse_forward(ch, "127.0.0.1", 8080,
                                                                  "127.0.0.1", 40000);
          (rc == SSH_OK ? opened : refused)++;
          ssh_channel_free(ch);
        }
        ssh_event_remove_session(ev, s);
        ssh_event_free(ev);
      }
    }
    done = true;
    ssh_disconnect(s);
    ssh_free(s);
  }

  TestBind b_;
  std::thread thread_;
};

// A target that logs the gateway in and opens its session channel, then never answers a
// channel request (a hung or hostile sshd).
class MuteTarget {
 public:
  explicit MuteTarget(const fs::path& host_key) : b_(host_key) {
    thread_ = std::thread([this] { serve(); });
  }
  ~MuteTarget() {
    stop = true;
    thread_.join();
  }
  bool listening() const { return b_.listening; }
  int port() const { return b_.port; }
  std::atomic<bool> stop{false};
  std::atomic<int> requests_ignored{0};

 private:
  void serve() {
    ssh_session s = ssh_new();
    ssh_server_callbacks_struct cb{};
    cb.auth_pubkey_function = [](ssh_session, const char*, ssh_key, char, void*) -> int {
      return SSH_AUTH_SUCCESS;
    };
    ssh_callbacks_init(&cb);
    std::vector<ssh_channel> channels;
    if (b_.listening && ssh_bind_accept(b_.bind, s) == SSH_OK) {
      ssh_set_server_callbacks(s, &cb);
      ssh_set_auth_methods(s, SSH_AUTH_METHOD_PUBLICKEY);
      struct Context {
        MuteTarget* self;
        std::vector<ssh_channel>* channels;
      } ctx{this, &channels};
      ssh_set_message_callback(
          s,
          [](ssh_session, ssh_message msg, void* ud) -> int {
            auto* c = static_cast<Context*>(ud);
            if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL_OPEN &&
                ssh_message_subtype(msg) == SSH_CHANNEL_SESSION) {
              c->channels->push_back(ssh_message_channel_request_open_reply_accept(msg));
              return 0;
            }
            if (ssh_message_type(msg) == SSH_REQUEST_CHANNEL) {
              c->self->requests_ignored++;
              return 0;  // handled: no answer, ever
            }
            return 1;  // the default answer
          },
          &ctx);
      if (ssh_handle_key_exchange(s) == SSH_OK) {
        ssh_event ev = ssh_event_new();
        ssh_event_add_session(ev, s);
        auto end = Clock::now() + 10s;
        while (!stop && Clock::now() < end) ssh_event_dopoll(ev, 50);
        ssh_event_remove_session(ev, s);
        ssh_event_free(ev);
      }
    }
    ssh_disconnect(s);
    ssh_free(s);
  }

  TestBind b_;
  std::thread thread_;
};

// A tiny epoll loop standing in for a worker.
class Loop : public Watcher {
 public:
  Loop() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {}
  ~Loop() override { ::close(epfd_); }
  bool watch(int fd, uint32_t events, Pollable* p) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = p;
    watched_[fd] = p;
    return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  bool rewatch(int fd, uint32_t events, Pollable* p) override {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = p;
    return ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
  }
  void unwatch(int fd) override {
    watched_.erase(fd);
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  }
  size_t watched() const { return watched_.size(); }

  // run_until polls until done() or the timeout; each round ends with step() (ticks, writes).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                 const std::function<void()>& step = {}) {
    auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      if (done()) return true;
      epoll_event evs[8];
      int n = ::epoll_wait(epfd_, evs, 8, 20);
      for (int i = 0; i < n; ++i) static_cast<Pollable*>(evs[i].data.ptr)->on_events(evs[i].events);
      if (step) step();
    }
    return done();
  }

 private:
  int epfd_;
  std::map<int, Pollable*> watched_;
};

// Records everything the session reports; room() limits how much output it takes.
struct Recorder : UpstreamSshListener {
  bool ready = false, open = false, eof = false, closed = false;
  std::optional<Error> failed;
  std::map<std::string, bool> requests;
  std::vector<std::pair<std::string, bool>> request_log;
  std::string out, err;
  std::optional<int> exit_status;
  std::optional<std::string> exit_signal;
  size_t room = std::numeric_limits<size_t>::max();
  int writable = 0;
  std::function<void()> on_ready, on_open;

  void upstream_ready() override {
    ready = true;
    if (on_ready) on_ready();
  }
  void upstream_failed(const Error& e) override { failed = e; }
  void upstream_channel_open() override {
    open = true;
    if (on_open) on_open();
  }
  void upstream_request_done(const std::string& r, bool ok) override {
    requests[r] = ok;
    request_log.emplace_back(r, ok);
  }
  size_t upstream_room(bool) override { return room; }
  void upstream_data(std::span<const uint8_t> d, bool is_stderr) override {
    (is_stderr ? err : out).append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  void upstream_writable() override { ++writable; }
  void upstream_exit_status(int s) override { exit_status = s; }
  void upstream_exit_signal(const std::string& s, bool, const std::string&) override {
    exit_signal = s;
  }
  void upstream_eof() override { eof = true; }
  void upstream_channel_closed() override { closed = true; }
};

class UpstreamSshTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/tg-upstream-ssh-XXXXXX";
    dir_ = new fs::path(::mkdtemp(tmpl));
    user_ = new std::string(::getpwuid(::geteuid())->pw_name);
    // OpenSSH 9.2 delivers a "signal" request only through its privilege-separated child, which
    // a root login does not have: as root, the signal test logs in as a plain account of its own.
    signal_user_ = new std::string(*user_);
    if (::geteuid() == 0) {
      *signal_user_ = "tg-upstream-test";
      if (::getpwnam(signal_user_->c_str()) == nullptr) {
        run("useradd -M -d / -s /bin/sh " + *signal_user_ + " && usermod -p '*' " + *signal_user_);
        created_user_ = true;
      }
    }
    const std::string d = dir_->string();
    run("ssh-keygen -q -t ed25519 -N '' -f " + d + "/host");
    run("ssh-keygen -q -t ed25519 -N '' -f " + d + "/other_host");
    run("ssh-keygen -q -t ecdsa -b 256 -N '' -f " + d + "/ecdsa_host");
    run("ssh-keygen -q -t ed25519 -N '' -f " + d + "/ca");
    run("ssh-keygen -q -t ed25519 -N '' -f " + d + "/rogue_ca");
    run("ssh-keygen -q -t ed25519 -N '' -f " + d + "/user");
    run("ssh-keygen -q -s " + d + "/ca -I tg-test -n " + *user_ + "," + *signal_user_ +
        " -V -5m:+5m " + d + "/user.pub");
    run("cp " + d + "/user.pub " + d + "/rogue.pub && ssh-keygen -q -s " + d +
        "/rogue_ca -I tg-rogue -n " + *user_ + " -V -5m:+5m " + d + "/rogue.pub");
    sshd_ = new Sshd(*dir_);
    ASSERT_TRUE(sshd_->start()) << "sshd did not start";
  }
  static void TearDownTestSuite() {
    delete sshd_;
    std::error_code ec;
    if (std::getenv("TG_KEEP_TEST_DIR") == nullptr) fs::remove_all(*dir_, ec);
    delete dir_;
    if (created_user_) run("userdel -f " + *signal_user_);
    delete user_;
    delete signal_user_;
  }

  UpstreamSshOptions options(const std::string& cert = "user-cert.pub") {
    UpstreamSshOptions o;
    o.target = "test-target";
    o.user = *user_;
    ssh_key key = nullptr;
    EXPECT_EQ(
        ssh_pki_import_privkey_file((*dir_ / "user").c_str(), nullptr, nullptr, nullptr, &key),
        SSH_OK);
    o.key.reset(key);
    o.certificate = key_file_blob(*dir_ / cert);
    o.host_key.pinned_blob = key_file_blob(*dir_ / "host.pub");
    return o;
  }

  // connect starts a session to the test sshd and runs it until ready (or failed).
  // local_port receives the client side's port (sshd logs it with every line of the connection).
  std::unique_ptr<UpstreamSsh> connect(UpstreamSshOptions o, int port = 0,
                                       int* local_port = nullptr) {
    int fd = connect_to(port != 0 ? port : sshd_->port());
    EXPECT_GE(fd, 0);
    if (local_port != nullptr) {
      sockaddr_in sin{};
      socklen_t len = sizeof sin;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
      *local_port = ntohs(sin.sin_port);
    }
    auto up = std::make_unique<UpstreamSsh>(loop_, rec_, std::move(o));
    auto started = up->start(fd);
    EXPECT_TRUE(started.has_value()) << (started ? "" : started.error().message);
    loop_.run_until([&] { return rec_.ready || rec_.failed.has_value(); }, 10s,
                    [&] { up->tick(Clock::now()); });
    return up;
  }

  // exec opens a channel, runs command and waits for the channel to close.
  std::unique_ptr<UpstreamSsh> exec(const std::string& command) {
    auto up = connect(options());
    EXPECT_TRUE(rec_.ready) << (rec_.failed ? rec_.failed->message : "");
    EXPECT_TRUE(up->open_session());
    up->request_exec(command);
    up->send_eof();
    up->pump();
    EXPECT_TRUE(loop_.run_until([&] { return rec_.closed || rec_.failed; }, 10s,
                                [&] { up->tick(Clock::now()); }));
    return up;
  }

  static fs::path* dir_;
  static std::string* user_;
  static std::string* signal_user_;
  static bool created_user_;
  static Sshd* sshd_;
  Loop loop_;
  Recorder rec_;
};

fs::path* UpstreamSshTest::dir_ = nullptr;
std::string* UpstreamSshTest::user_ = nullptr;
std::string* UpstreamSshTest::signal_user_ = nullptr;
bool UpstreamSshTest::created_user_ = false;
Sshd* UpstreamSshTest::sshd_ = nullptr;

TEST_F(UpstreamSshTest, ExecDeliversStdoutStderrExitStatusEofAndClose) {
  auto up = exec("echo hello; echo err >&2; exit 3");
  EXPECT_FALSE(rec_.failed) << rec_.failed->code << ": " << rec_.failed->message;
  EXPECT_TRUE(rec_.requests["exec"]);
  EXPECT_EQ(rec_.out, "hello\n");
  EXPECT_EQ(rec_.err, "err\n");
  EXPECT_EQ(rec_.exit_status, 3);
  EXPECT_FALSE(rec_.exit_signal);
  EXPECT_TRUE(rec_.eof);
  EXPECT_TRUE(rec_.closed);
  EXPECT_EQ(up->state(), UpstreamSsh::State::kReady);

  // The session stays up: a second channel on it.
  rec_ = Recorder{};
  ASSERT_TRUE(up->open_session());
  up->request_env("TG_GREETING", "hi there");
  up->request_env("NOT_ACCEPTED", "x");
  up->request_exec("echo \"$TG_GREETING\" ${NOT_ACCEPTED:-unset}");
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.closed || rec_.failed; }, 10s));
  EXPECT_EQ(rec_.out, "hi there unset\n");
  EXPECT_EQ(rec_.exit_status, 0);
  up->disconnect("test done");
  EXPECT_EQ(loop_.watched(), 0u);
}

TEST_F(UpstreamSshTest, EnvRefusedByTheTargetIsReportedAndNotFatal) {
  auto up = connect(options());
  ASSERT_TRUE(rec_.ready);
  ASSERT_TRUE(up->open_session());
  up->request_env("NOT_ACCEPTED", "x");
  up->request_env("TG_OK", "y");
  up->request_exec("echo ${NOT_ACCEPTED:-unset} $TG_OK");
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.closed || rec_.failed; }, 10s));
  EXPECT_FALSE(rec_.failed);
  // sshd accepts only AcceptEnv TG_*: the refusal is reported in order and the channel goes on.
  using Done = std::vector<std::pair<std::string, bool>>;
  EXPECT_EQ(rec_.request_log, (Done{{"env", false}, {"env", true}, {"exec", true}}));
  EXPECT_EQ(rec_.out, "unset y\n");
}

TEST_F(UpstreamSshTest, CatRoundTripsEightMiBWithinTheWindow) {
  auto up = connect(options());
  ASSERT_TRUE(rec_.ready);
  ASSERT_TRUE(up->open_session());
  up->request_exec("cat");
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.requests.count("exec") > 0; }, 10s));
  ASSERT_TRUE(rec_.requests["exec"]);

  const size_t total = 8u << 20;
  std::string data(total, '\0');
  for (size_t i = 0; i < total; ++i) data[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  rec_.out.reserve(total);
  size_t sent = 0, largest_write = 0, most_buffered = 0;
  bool eof_sent = false;
  auto feed = [&] {
    while (sent < total) {
      size_t n = up->write({reinterpret_cast<const uint8_t*>(data.data()) + sent, total - sent});
      largest_write = std::max(largest_write, n);
      if (n == 0) break;
      sent += n;
    }
    if (sent == total && !eof_sent) {
      up->send_eof();
      eof_sent = true;
    }
    most_buffered = std::max(most_buffered, up->buffered());
    up->pump();
  };

  // First the owner takes nothing: the target's window shuts, cat blocks, and our writes stop
  // long before 8 MiB, with what libssh holds for us bounded by the window we advertise.
  rec_.room = 0;
  size_t sent_before = 0;
  auto stall_end = Clock::now() + 1500ms;
  loop_.run_until([&] { return Clock::now() >= stall_end; }, 3s,
                  [&] {
                    feed();
                    if (Clock::now() + 500ms < stall_end) sent_before = sent;
                  });
  EXPECT_EQ(sent, sent_before) << "writes continued while nothing was read";
  EXPECT_LT(sent, total);
  EXPECT_TRUE(rec_.out.empty());
  EXPECT_LE(up->buffered(), 2u << 20);
  EXPECT_GT(up->buffered(), 0u);

  rec_.room = 32 * 1024;
  ASSERT_TRUE(loop_.run_until([&] { return rec_.closed || rec_.failed; }, 60s, feed));
  EXPECT_FALSE(rec_.failed);
  EXPECT_EQ(sent, total);
  EXPECT_LE(largest_write, UpstreamSsh::kMaxWrite);
  EXPECT_LE(most_buffered, 2u << 20);
  ASSERT_EQ(rec_.out.size(), total);
  EXPECT_TRUE(rec_.out == data);
  EXPECT_EQ(rec_.exit_status, 0);
  EXPECT_GT(rec_.writable, 0);
}

TEST_F(UpstreamSshTest, PtyShellSeesTheWindowChange) {
  auto up = connect(options());
  ASSERT_TRUE(rec_.ready);
  ASSERT_TRUE(up->open_session());
  up->request_pty("xterm", 80, 24);
  up->request_shell();
  up->window_change(100, 40);
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.requests.count("shell") > 0; }, 10s));
  EXPECT_TRUE(rec_.requests["pty-req"]);
  EXPECT_TRUE(rec_.requests["shell"]);
  std::string line = "stty size; exit\n";
  size_t off = 0;
  ASSERT_TRUE(loop_.run_until(
      [&] { return off == line.size(); }, 5s,
      [&] {
        off += up->write({reinterpret_cast<const uint8_t*>(line.data()) + off, line.size() - off});
        up->pump();
      }));
  ASSERT_TRUE(loop_.run_until([&] { return rec_.closed || rec_.failed; }, 10s));
  EXPECT_NE(rec_.out.find("40 100"), std::string::npos) << rec_.out;
  EXPECT_EQ(rec_.exit_status, 0);
}

TEST_F(UpstreamSshTest, SignalEndsTheCommandWithExitSignal) {
  auto o = options();
  o.user = *signal_user_;
  auto up = connect(std::move(o));
  ASSERT_TRUE(rec_.ready);
  ASSERT_TRUE(up->open_session());
  up->request_exec("sleep 30");
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.requests.count("exec") > 0; }, 10s));
  ASSERT_TRUE(rec_.requests["exec"]);
  loop_.run_until([] { return false; }, 300ms);  // let the command start
  auto sent_at = Clock::now();
  up->send_signal("TERM");
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.closed || rec_.failed; }, 10s));
  EXPECT_LT(Clock::now() - sent_at, 5s);
  EXPECT_EQ(rec_.exit_signal, "TERM");
  EXPECT_FALSE(rec_.exit_status);
}

TEST_F(UpstreamSshTest, SftpSubsystemAnswersInit) {
  auto up = connect(options());
  ASSERT_TRUE(rec_.ready);
  ASSERT_TRUE(up->open_session());
  up->request_subsystem("sftp");
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.requests.count("subsystem") > 0; }, 10s));
  ASSERT_TRUE(rec_.requests["subsystem"]);
  // SSH_FXP_INIT, version 3.
  const uint8_t init[] = {0, 0, 0, 5, 1, 0, 0, 0, 3};
  size_t off = 0;
  ASSERT_TRUE(loop_.run_until([&] { return off == sizeof init; }, 5s,
                              [&] {
                                off += up->write({init + off, sizeof init - off});
                                up->pump();
                              }));
  ASSERT_TRUE(loop_.run_until([&] { return rec_.out.size() >= 9; }, 5s));
  EXPECT_EQ(static_cast<uint8_t>(rec_.out[4]), 2);  // SSH_FXP_VERSION
  EXPECT_EQ(rec_.out.substr(5, 4), std::string("\0\0\0\3", 4));
  up->close_channel();
  up->pump();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.closed || rec_.failed; }, 10s));
  EXPECT_FALSE(rec_.failed);
}

TEST_F(UpstreamSshTest, TheTargetSeesNoAgentAndNoDisplay) {
  auto up = exec("echo ${SSH_AUTH_SOCK:-none} ${DISPLAY:-none}");
  EXPECT_EQ(rec_.out, "none none\n");
  EXPECT_EQ(rec_.exit_status, 0);
}

TEST_F(UpstreamSshTest, ChannelsTheTargetOpensAreRefused) {
  ChannelOpeningTarget target(*dir_ / "host");
  ASSERT_TRUE(target.listening());
  auto up = connect(options(), target.port());
  ASSERT_TRUE(rec_.ready) << (rec_.failed ? rec_.failed->message : "");
  ASSERT_TRUE(loop_.run_until([&] { return target.done.load(); }, 10s));
  EXPECT_EQ(target.refused, 3);
  EXPECT_EQ(target.opened, 0);
}

TEST_F(UpstreamSshTest, WrongPinnedHostKeyIsRefusedBeforeAuthentication) {
  std::string log_before = sshd_->log();
  auto o = options();
  o.host_key.pinned_blob = key_file_blob(*dir_ / "other_host.pub");
  int local_port = 0;
  auto up = connect(std::move(o), 0, &local_port);
  ASSERT_TRUE(rec_.failed);
  EXPECT_EQ(rec_.failed->code, "upstream_host_key_mismatch");
  std::string presented = ssh::fingerprint_sha256(key_file_blob(*dir_ / "host.pub"));
  std::string expected = ssh::fingerprint_sha256(key_file_blob(*dir_ / "other_host.pub"));
  EXPECT_NE(rec_.failed->message.find(presented), std::string::npos) << rec_.failed->message;
  EXPECT_NE(rec_.failed->message.find(expected), std::string::npos) << rec_.failed->message;
  EXPECT_FALSE(rec_.ready);
  EXPECT_EQ(up->state(), UpstreamSsh::State::kFailed);
  EXPECT_EQ(loop_.watched(), 0u);
  // sshd saw this connection end without any authentication attempt: its lines (they name our
  // port) say it closed before authentication and name neither a user nor a key.
  const std::string ours = fmt::format("port {} ", local_port);
  std::string lines;
  auto our_lines = [&] {
    lines.clear();
    std::istringstream in(sshd_->log().substr(log_before.size()));
    for (std::string line; std::getline(in, line);) {
      if ((line + " ").find(ours) != std::string::npos) lines += line + "\n";
    }
    return lines.find("Connection closed") != std::string::npos ||
           lines.find("Disconnected") != std::string::npos;
  };
  ASSERT_TRUE(loop_.run_until(our_lines, 3s)) << lines;
  EXPECT_NE(lines.find("Connection from"), std::string::npos) << lines;
  EXPECT_EQ(lines.find("publickey"), std::string::npos) << lines;
  EXPECT_EQ(lines.find("certificate"), std::string::npos) << lines;
  EXPECT_EQ(lines.find("Accepted"), std::string::npos) << lines;
  EXPECT_EQ(lines.find("user"), std::string::npos) << lines;
}

TEST_F(UpstreamSshTest, PinnedHostKeyOfAnotherTypeIsAMismatchNamingBothTypes) {
  // The target has only an Ed25519 host key; the pinned one is ECDSA.
  auto o = options();
  o.host_key.pinned_blob = key_file_blob(*dir_ / "ecdsa_host.pub");
  auto up = connect(std::move(o), 0);
  ASSERT_TRUE(rec_.failed);
  EXPECT_EQ(rec_.failed->code, "upstream_host_key_mismatch") << rec_.failed->message;
  const std::string& m = rec_.failed->message;
  EXPECT_NE(m.find("has no ecdsa-sha2-nistp256 host key"), std::string::npos) << m;
  EXPECT_NE(m.find(ssh::fingerprint_sha256(key_file_blob(*dir_ / "ecdsa_host.pub"))),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("presented ssh-ed25519 " +
                   ssh::fingerprint_sha256(key_file_blob(*dir_ / "host.pub"))),
            std::string::npos)
      << m;
  EXPECT_FALSE(rec_.ready);
}

TEST_F(UpstreamSshTest, HostKeyJudgeSeesTheFingerprintAndCanRefuse) {
  std::string presented = ssh::fingerprint_sha256(key_file_blob(*dir_ / "host.pub"));
  auto o = options();
  o.host_key.pinned_blob.clear();
  std::string seen;
  o.host_key.judge = [&](const PresentedHostKey& k) {
    seen = k.fingerprint;
    return HostKeyVerdict{k.fingerprint == presented, "SHA256:somethingelse"};
  };
  auto up = connect(std::move(o));
  EXPECT_TRUE(rec_.ready);
  EXPECT_EQ(seen, presented);
  up->disconnect("done");

  rec_ = Recorder{};
  auto o2 = options();
  o2.host_key.pinned_blob.clear();
  o2.host_key.judge = [](const PresentedHostKey&) {
    return HostKeyVerdict{false, "SHA256:somethingelse"};
  };
  auto up2 = connect(std::move(o2));
  ASSERT_TRUE(rec_.failed);
  EXPECT_EQ(rec_.failed->code, "upstream_host_key_mismatch");
  EXPECT_NE(rec_.failed->message.find("SHA256:somethingelse"), std::string::npos);
  EXPECT_NE(rec_.failed->message.find(presented), std::string::npos);
}

TEST_F(UpstreamSshTest, CertificateFromAnUntrustedCaIsRefused) {
  auto up = connect(options("rogue-cert.pub"));
  ASSERT_TRUE(rec_.failed);
  EXPECT_EQ(rec_.failed->code, "upstream_auth_failed") << rec_.failed->message;
  EXPECT_FALSE(rec_.ready);
  EXPECT_EQ(loop_.watched(), 0u);
}

TEST_F(UpstreamSshTest, CertificateForAnotherKeyIsRefusedAtStart) {
  auto o = options();
  ssh_key other = nullptr;
  ASSERT_EQ(ssh_pki_import_privkey_file((*dir_ / "ca").c_str(), nullptr, nullptr, nullptr, &other),
            SSH_OK);
  o.key.reset(other);
  int fd = connect_to(sshd_->port());
  ASSERT_GE(fd, 0);
  UpstreamSsh up(loop_, rec_, std::move(o));
  auto started = up.start(fd);
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, "upstream_certificate_invalid");
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "the socket was not closed";
}

TEST_F(UpstreamSshTest, NothingListeningFailsCleanly) {
  int port = free_port();
  SocketAddress addr;
  ASSERT_TRUE(resolve_numeric("127.0.0.1", static_cast<uint16_t>(port), &addr));
  bool in_progress = false;
  auto fd = start_connect(addr, &in_progress);
  if (!fd) GTEST_SKIP() << "the refusal was immediate: nothing to hand over";
  // ssh_connect polls the socket once itself: the refusal comes back from start().
  UpstreamSsh up(loop_, rec_, options());
  auto started = up.start(*fd);
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, "upstream_handshake_failed");
  EXPECT_NE(started.error().message.find("refused"), std::string::npos) << started.error().message;
  EXPECT_EQ(loop_.watched(), 0u);
  EXPECT_EQ(::fcntl(*fd, F_GETFD), -1) << "the socket was not closed";
}

TEST_F(UpstreamSshTest, TargetClosingBeforeTheBannerFailsCleanly) {
  int port = 0;
  const int srv = touchgate::testing::listen_loopback(&port);
  ASSERT_GE(srv, 0);
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  UpstreamSsh up(loop_, rec_, options());
  ASSERT_TRUE(up.start(fd).has_value());
  ::close(::accept(srv, nullptr, nullptr));
  ASSERT_TRUE(
      loop_.run_until([&] { return rec_.failed.has_value(); }, 5s, [&] { up.tick(Clock::now()); }));
  EXPECT_EQ(rec_.failed->code, "upstream_handshake_failed") << rec_.failed->message;
  EXPECT_EQ(loop_.watched(), 0u);
  ::close(srv);
}

TEST_F(UpstreamSshTest, SilentTargetTimesOut) {
  int port = 0;
  const int srv = touchgate::testing::listen_loopback(&port);
  ASSERT_GE(srv, 0);
  auto o = options();
  o.handshake_timeout = 300ms;
  auto start = Clock::now();
  auto up = connect(std::move(o), port);
  ASSERT_TRUE(rec_.failed);
  EXPECT_EQ(rec_.failed->code, "upstream_timeout");
  EXPECT_LT(Clock::now() - start, 3s);
  ::close(srv);
}

TEST_F(UpstreamSshTest, TargetDyingMidSessionFailsCleanly) {
  auto up = connect(options());
  ASSERT_TRUE(rec_.ready);
  ASSERT_TRUE(up->open_session());
  // The command kills its own sshd session process: the connection drops mid-channel.
  up->request_exec("echo started; sleep 0.2; kill -9 $PPID; sleep 5");
  up->pump();
  auto start = Clock::now();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.failed.has_value(); }, 10s,
                              [&] { up->tick(Clock::now()); }));
  EXPECT_EQ(rec_.failed->code, "upstream_connection_lost") << rec_.failed->message;
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(rec_.out, "started\n");
  EXPECT_EQ(up->state(), UpstreamSsh::State::kFailed);
  EXPECT_EQ(loop_.watched(), 0u);
  // Writes after the failure take nothing.
  const uint8_t byte = 'x';
  EXPECT_EQ(up->write({&byte, 1}), 0u);
}

TEST_F(UpstreamSshTest, ARequestTheTargetNeverAnswersTimesOut) {
  MuteTarget target(*dir_ / "host");
  ASSERT_TRUE(target.listening());
  auto o = options();
  o.handshake_timeout = 500ms;
  auto up = connect(std::move(o), target.port());
  ASSERT_TRUE(rec_.ready) << (rec_.failed ? rec_.failed->message : "");
  ASSERT_TRUE(up->open_session());
  up->request_exec("true");
  up->pump();
  auto start = Clock::now();
  ASSERT_TRUE(loop_.run_until([&] { return rec_.failed.has_value(); }, 10s,
                              [&] { up->tick(Clock::now()); }));
  EXPECT_EQ(rec_.failed->code, "upstream_timeout");
  EXPECT_NE(rec_.failed->message.find("did not answer the exec request"), std::string::npos)
      << rec_.failed->message;
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(target.requests_ignored.load(), 1);
  EXPECT_EQ(loop_.watched(), 0u);
}

}  // namespace
}  // namespace touchgate::gateway
