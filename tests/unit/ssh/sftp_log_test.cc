#include "ssh/sftp_log.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "ssh/reader.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

using Packet = std::vector<uint8_t>;

constexpr uint32_t kRead = 0x01, kWrite = 0x02, kCreat = 0x08, kTrunc = 0x10;

// ---- Packets, built by hand ----

Packet packet(uint8_t type, const Writer& body) {
  Writer inner;
  inner.u8(type).raw(body.bytes());
  return Writer().string(inner.bytes()).take();
}

Packet init() {
  return packet(1, Writer().u32(3));
}
Packet version(uint32_t v = 3) {
  return packet(2, Writer().u32(v).string("posix-rename@openssh.com").string("1"));
}
Packet path_request(uint8_t type, uint32_t id, std::string_view path) {
  return packet(type, Writer().u32(id).string(path));
}
Packet open(uint32_t id, std::string_view path, uint32_t pflags, uint32_t perm = 0) {
  Writer w;
  w.u32(id).string(path).u32(pflags);
  if (perm != 0) {
    w.u32(0x04).u32(perm);
  } else {
    w.u32(0);
  }
  return packet(3, w);
}
Packet handle_request(uint8_t type, uint32_t id, std::string_view handle) {
  return packet(type, Writer().u32(id).string(handle));
}
Packet close(uint32_t id, std::string_view h) {
  return handle_request(4, id, h);
}
Packet read(uint32_t id, std::string_view h, uint64_t offset, uint32_t len) {
  return packet(5, Writer().u32(id).string(h).u64(offset).u32(len));
}
Packet write(uint32_t id, std::string_view h, uint64_t offset, size_t len) {
  return packet(6, Writer().u32(id).string(h).u64(offset).string(std::string(len, 'x')));
}
Packet two_paths(uint8_t type, uint32_t id, std::string_view a, std::string_view b) {
  return packet(type, Writer().u32(id).string(a).string(b));
}
Packet mkdir(uint32_t id, std::string_view path) {
  return packet(14, Writer().u32(id).string(path).u32(0x04).u32(0755));
}
Packet extended(uint32_t id, std::string_view name, std::string_view a, std::string_view b) {
  return packet(200, Writer().u32(id).string(name).string(a).string(b));
}

Packet status(uint32_t id, uint32_t code, std::string_view message = "") {
  return packet(101, Writer().u32(id).u32(code).string(message).string(""));
}
Packet handle(uint32_t id, std::string_view h) {
  return packet(102, Writer().u32(id).string(h));
}
Packet data(uint32_t id, size_t len) {
  return packet(103, Writer().u32(id).string(std::string(len, 'd')));
}
Packet name(uint32_t id, std::vector<std::string> names) {
  Writer w;
  w.u32(id).u32(static_cast<uint32_t>(names.size()));
  for (const auto& n : names) w.string(n).string("-rw-r--r-- 1 a a 0 " + n).u32(0);
  return packet(104, w);
}
Packet attrs(uint32_t id) {
  return packet(105, Writer().u32(id).u32(0x01 | 0x04).u64(42).u32(0100644));
}

Packet cat(std::initializer_list<Packet> parts) {
  Packet out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A request and the server's answer.
struct Exchange {
  Packet request, reply;
};

// The session of the chunking tests: init, open, write x3, close, rename, remove, mkdir, rmdir,
// stat, opendir/readdir/close, and a file read.
std::vector<Exchange> small_session() {
  return {
      {init(), version()},
      {open(1, "dir/file.txt", kWrite | kCreat | kTrunc, 0644), handle(1, "h1")},
      {write(2, "h1", 0, 100), status(2, 0)},
      {write(3, "h1", 100, 200), status(3, 0)},
      {write(4, "h1", 300, 300), status(4, 0)},
      {close(5, "h1"), status(5, 0)},
      {two_paths(18, 6, "dir/file.txt", "dir/renamed.txt"), status(6, 0)},
      {path_request(13, 7, "dir/renamed.txt"), status(7, 0)},
      {mkdir(8, "newdir"), status(8, 0)},
      {path_request(15, 9, "newdir"), status(9, 0)},
      {path_request(17, 10, "dir"), attrs(10)},
      {path_request(11, 11, "."), handle(11, "h2")},
      {handle_request(12, 12, "h2"), name(12, {".", "..", "dir"})},
      {handle_request(12, 13, "h2"), status(13, 1, "End of file")},
      {close(14, "h2"), status(14, 0)},
      {open(15, "in.bin", kRead), handle(15, "h3")},
      {read(16, "h3", 0, 1000), data(16, 1000)},
      {read(17, "h3", 1000, 1000), status(17, 1, "End of file")},
      {close(18, "h3"), status(18, 0)},
  };
}

// numbered is prefix followed by n ("f7"); built by appending (GCC 12 at -O3 warns wrongly
// about operator+ on a temporary, -Wrestrict).
std::string numbered(const char* prefix, uint32_t n) {
  std::string s = prefix;
  s += std::to_string(n);
  return s;
}

std::string describe(const SftpOp& op) {
  std::string s = op.op + " '" + op.path + "'";
  if (!op.path2.empty()) s += " '" + op.path2 + "'";
  if (!op.mode.empty()) s += " mode=" + op.mode;
  if (!op.attrs.empty()) s += " [" + op.attrs + "]";
  if (op.bytes_read != 0) s += " read=" + std::to_string(op.bytes_read);
  if (op.bytes_written != 0) s += " written=" + std::to_string(op.bytes_written);
  s += op.ok ? " ok" : " FAILED";
  s += " " + op.status;
  if (!op.message.empty()) s += " (" + op.message + ")";
  return s;
}

std::vector<std::string> describe(const std::vector<SftpOp>& ops) {
  std::vector<std::string> out;
  for (const auto& op : ops) out.push_back(describe(op));
  return out;
}

const std::vector<std::string> kSmallSessionOps = {
    "open 'dir/file.txt' mode=w,create,trunc [perm=0644] written=600 ok ok",
    "rename 'dir/file.txt' 'dir/renamed.txt' ok ok",
    "remove 'dir/renamed.txt' ok ok",
    "mkdir 'newdir' [perm=0755] ok ok",
    "rmdir 'newdir' ok ok",
    "opendir '.' ok ok",
    "open 'in.bin' mode=r read=1000 ok ok",
};

void feed_chunked(SftpLog& log, bool client, const Packet& p, size_t chunk) {
  for (size_t pos = 0; pos < p.size(); pos += chunk) {
    const auto part = std::span<const uint8_t>(p).subspan(pos, std::min(chunk, p.size() - pos));
    client ? log.client_bytes(part) : log.server_bytes(part);
  }
}

// ---- A session, chunked every way ----

TEST(SftpLogTest, LogsASmallSession) {
  SftpLog log;
  for (const auto& e : small_session()) {
    log.client_bytes(e.request);
    log.server_bytes(e.reply);
  }
  EXPECT_EQ(describe(log.take()), kSmallSessionOps);
  EXPECT_TRUE(log.take().empty());
  EXPECT_EQ(log.desync_reason(), "");
  EXPECT_EQ(log.version(), 3u);
  EXPECT_EQ(log.outstanding(), 0u);
  EXPECT_EQ(log.open_handles(), 0u);
  EXPECT_EQ(log.buffered(), 0u);
  const std::map<std::string, uint64_t, std::less<>> counts = {
      {"close", 3},  {"mkdir", 1},  {"open", 2},  {"opendir", 1}, {"read", 2},  {"readdir", 2},
      {"remove", 1}, {"rename", 1}, {"rmdir", 1}, {"stat", 1},    {"write", 3},
  };
  EXPECT_EQ(log.stats().requests, counts);
  EXPECT_EQ(log.stats().unmatched_replies, 0u);
  EXPECT_EQ(log.stats().unknown_handles, 0u);
}

TEST(SftpLogTest, ChunkingAtEveryByteBoundaryChangesNothing) {
  Packet client, server;
  for (const auto& e : small_session()) {
    client.insert(client.end(), e.request.begin(), e.request.end());
    server.insert(server.end(), e.reply.begin(), e.reply.end());
  }
  const std::span<const uint8_t> c(client), s(server);
  // All requests first (they stay outstanding), split at every byte of either stream.
  for (size_t k = 0; k <= client.size(); ++k) {
    SftpLog log;
    log.client_bytes(c.first(k));
    log.client_bytes(c.subspan(k));
    log.server_bytes(s);
    ASSERT_EQ(describe(log.take()), kSmallSessionOps) << "client split at " << k;
  }
  for (size_t k = 0; k <= server.size(); ++k) {
    SftpLog log;
    log.client_bytes(c);
    log.server_bytes(s.first(k));
    log.server_bytes(s.subspan(k));
    ASSERT_EQ(describe(log.take()), kSmallSessionOps) << "server split at " << k;
  }
  // Request, reply, request, ... in chunks of every size up to the longest packet.
  for (size_t chunk = 1; chunk <= 1020; chunk += chunk < 32 ? 1 : 61) {
    SftpLog log;
    for (const auto& e : small_session()) {
      feed_chunked(log, true, e.request, chunk);
      feed_chunked(log, false, e.reply, chunk);
    }
    ASSERT_EQ(describe(log.take()), kSmallSessionOps) << "chunks of " << chunk;
  }
  // One byte at a time, and several packets per chunk.
  SftpLog log;
  feed_chunked(log, true, client, 1);
  feed_chunked(log, false, server, 3);
  EXPECT_EQ(describe(log.take()), kSmallSessionOps);
}

TEST(SftpLogTest, WriteDataIsCountedNotBuffered) {
  SftpLog log;
  log.client_bytes(init());
  log.server_bytes(version());
  log.client_bytes(open(1, "big", kWrite | kCreat));
  log.server_bytes(handle(1, "h"));
  const auto w = write(2, "h", 0, 256 * 1024);
  const auto d = data(3, 256 * 1024);
  size_t most = 0;
  for (size_t pos = 0; pos < w.size(); pos += 1000) {
    log.client_bytes(
        std::span<const uint8_t>(w).subspan(pos, std::min<size_t>(1000, w.size() - pos)));
    most = std::max(most, log.buffered());
  }
  log.server_bytes(status(2, 0));
  log.client_bytes(read(3, "h", 0, 256 * 1024));
  for (size_t pos = 0; pos < d.size(); pos += 999) {
    log.server_bytes(
        std::span<const uint8_t>(d).subspan(pos, std::min<size_t>(999, d.size() - pos)));
    most = std::max(most, log.buffered());
  }
  EXPECT_LE(most, 64u);
  log.client_bytes(close(4, "h"));
  log.server_bytes(status(4, 0));
  EXPECT_EQ(describe(log.take()),
            std::vector<std::string>{"open 'big' mode=w,create read=262144 written=262144 ok ok"});
}

// ---- Matching ----

TEST(SftpLogTest, MismatchedIdsAreCountedNotLogged) {
  SftpLog log;
  log.client_bytes(cat({init(), mkdir(1, "a"), mkdir(2, "b"), path_request(13, 3, "c")}));
  log.server_bytes(cat({version(), status(99, 0), status(2, 0), handle(3, "h")}));
  log.server_bytes(status(1, 0));
  log.server_bytes(status(1, 0));  // answered twice
  EXPECT_EQ(describe(log.take()), (std::vector<std::string>{
                                      "mkdir 'b' [perm=0755] ok ok",
                                      "remove 'c' FAILED bad_reply",
                                      "mkdir 'a' [perm=0755] ok ok",
                                  }));
  EXPECT_EQ(log.stats().unmatched_replies, 3u);
  EXPECT_EQ(log.desync_reason(), "");
}

TEST(SftpLogTest, AReusedIdDropsTheEarlierRequest) {
  SftpLog log;
  log.client_bytes(cat({init(), mkdir(7, "first"), path_request(15, 7, "second")}));
  log.server_bytes(cat({version(), status(7, 0)}));
  EXPECT_EQ(describe(log.take()), (std::vector<std::string>{
                                      "mkdir 'first' [perm=0755] FAILED no_reply",
                                      "rmdir 'second' ok ok",
                                  }));
  EXPECT_EQ(log.stats().dropped_requests, 1u);
}

TEST(SftpLogTest, IoOnAnUnknownHandleIsCounted) {
  SftpLog log;
  log.client_bytes(cat({init(), write(1, "nope", 0, 10), close(2, "nope")}));
  log.server_bytes(cat({version(), status(1, 0), status(2, 0)}));
  EXPECT_TRUE(log.take().empty());
  EXPECT_EQ(log.stats().unknown_handles, 2u);
}

// ---- Failures ----

TEST(SftpLogTest, FailuresCarryTheStatus) {
  SftpLog log;
  log.client_bytes(cat({init(), mkdir(1, "/root/x"), open(2, "/missing", kRead),
                        open(3, "out", kWrite | kCreat), two_paths(18, 4, "a", "b")}));
  log.server_bytes(cat({version(), status(1, 3, "Permission denied"), status(2, 2, "No such file"),
                        handle(3, "h"), status(4, 77, "odd")}));
  log.client_bytes(
      cat({write(5, "h", 0, 10), write(6, "h", 10, 20), write(7, "h", 30, 40), close(8, "h")}));
  log.server_bytes(cat({status(5, 0), status(6, 4, "Failure"), status(7, 0), status(8, 0)}));
  EXPECT_EQ(describe(log.take()),
            (std::vector<std::string>{
                "mkdir '/root/x' [perm=0755] FAILED permission_denied (Permission denied)",
                "open '/missing' mode=r FAILED no_such_file (No such file)",
                "rename 'a' 'b' FAILED status_77 (odd)",
                "open 'out' mode=w,create written=50 FAILED failure (Failure)",
            }));
}

TEST(SftpLogTest, ExtendedRequestsByName) {
  SftpLog log;
  log.client_bytes(
      cat({init(), extended(1, "posix-rename@openssh.com", "a", "b"),
           extended(2, "hardlink@openssh.com", "b", "c"), two_paths(20, 3, "target", "link"),
           extended(4, "statvfs@openssh.com", "/", ""),
           packet(200, Writer().u32(5).string("vendor-thing").u64(1)),
           packet(99, Writer().u32(6).u32(0))}));
  log.server_bytes(cat({version(), status(1, 0), status(2, 0), status(3, 0),
                        packet(201, Writer().u32(4).u64(1)), status(5, 8), status(6, 8)}));
  EXPECT_EQ(describe(log.take()), (std::vector<std::string>{
                                      "rename 'a' 'b' ok ok",
                                      "hardlink 'b' 'c' ok ok",
                                      "symlink 'target' 'link' ok ok",
                                  }));
  EXPECT_EQ(log.stats().requests.at("statvfs@openssh.com"), 1u);
  EXPECT_EQ(log.stats().requests.at("extended"), 1u);
  EXPECT_EQ(log.stats().requests.at("unknown"), 1u);
  EXPECT_EQ(log.stats().unmatched_replies, 0u);
}

TEST(SftpLogTest, PathsAreBytesCutAtTheLimit) {
  SftpLog log;
  const std::string odd("a\0b\xff\xfe\n/", 7);
  const std::string long_path(5000, 'p');
  log.client_bytes(cat({init(), mkdir(1, odd), mkdir(2, long_path)}));
  log.server_bytes(cat({version(), status(1, 0), status(2, 0)}));
  const auto ops = log.take();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].path, odd);
  EXPECT_FALSE(ops[0].truncated);
  EXPECT_EQ(ops[1].path, std::string(SftpLog::kMaxPath, 'p'));
  EXPECT_TRUE(ops[1].truncated);
}

TEST(SftpLogTest, EndReportsWhatWasLeftOpen) {
  SftpLog log;
  log.client_bytes(cat({init(), open(1, "f", kRead | kWrite), write(2, "h", 0, 5)}));
  log.server_bytes(cat({version(), handle(1, "h"), status(2, 0)}));
  log.client_bytes(cat({mkdir(3, "d"), write(4, "h", 5, 5)}));
  log.end();
  EXPECT_EQ(describe(log.take()), (std::vector<std::string>{
                                      "mkdir 'd' [perm=0755] FAILED no_reply",
                                      "open 'f' mode=rw written=5 FAILED unclosed",
                                  }));
  log.client_bytes(mkdir(5, "later"));
  log.server_bytes(status(5, 0));
  EXPECT_TRUE(log.take().empty());
}

// ---- Desync ----

struct DesyncCase {
  const char* name;
  Packet client, server;
  const char* reason;
};

TEST(SftpLogTest, MalformedInputDesyncs) {
  const Packet long_handle_write =
      packet(6, Writer().u32(1).string(std::string(257, 'h')).u64(0).string("x"));
  const DesyncCase cases[] = {
      {"zero length", cat({init(), Packet{0, 0, 0, 0}}), {}, "client sent a packet of length 0"},
      {"over the limit",
       cat({init(), Packet{0, 4, 0x04, 1, 5}}),
       {},
       "client sent a packet of 263169 bytes, over the 263168 byte limit"},
      {"string past the packet",
       cat({init(), packet(13, Writer().u32(1).u32(100).raw("ab"))}),
       {},
       "client sent a malformed remove request"},
      {"trailing bytes",
       cat({init(), packet(13, Writer().u32(1).string("a").u8(0))}),
       {},
       "client sent a malformed remove request"},
      {"truncated id",
       cat({init(), packet(15, Writer().u8(1))}),
       {},
       "client sent a malformed rmdir request"},
      {"write data past the packet",
       cat({init(), packet(6, Writer().u32(1).string("h").u64(0).u32(10).raw("abc"))}),
       {},
       "client sent a malformed WRITE"},
      {"write data short of the packet",
       cat({init(), packet(6, Writer().u32(1).string("h").u64(0).string("abc").u8(0))}),
       {},
       "client sent a malformed WRITE"},
      {"write too short",
       cat({init(), packet(6, Writer().u32(1))}),
       {},
       "client sent a WRITE packet too short for its fields"},
      {"long handle",
       cat({init(), long_handle_write}),
       {},
       "client sent a WRITE with a handle of 257 bytes"},
      {"no init", mkdir(1, "a"), {}, "client sent packet type 14 before INIT"},
      {"second init", cat({init(), init()}), {}, "client sent a malformed request type 1"},
      {"no version", init(), status(1, 0), "server sent packet type 101 before VERSION"},
      {"version 4", init(), version(4),
       "server answered with protocol version 4, only 3 is parsed"},
      {"unknown reply", init(), cat({version(), packet(150, Writer().u32(1))}),
       "server sent unknown reply type 150"},
      {"data past the packet", init(), cat({version(), packet(103, Writer().u32(1).u32(5))}),
       "server sent a malformed DATA"},
      {"bogus name count", init(),
       cat({version(),
            packet(104, Writer().u32(1).u32(0xffffffff).string("a").string("b").u32(0))}),
       "server sent a malformed NAME"},
      {"status without language", init(),
       cat({version(), packet(101, Writer().u32(1).u32(0).string("m"))}),
       "server sent a malformed STATUS"},
  };
  for (const auto& c : cases) {
    SftpLog log;
    log.client_bytes(c.client);
    log.server_bytes(c.server);
    EXPECT_TRUE(log.desynced()) << c.name;
    EXPECT_EQ(log.desync_reason(), c.reason) << c.name;
    EXPECT_EQ(log.buffered(), 0u) << c.name;
    // Parsing has stopped for good, both ways.
    log.client_bytes(cat({mkdir(50, "x")}));
    log.server_bytes(cat({status(50, 0)}));
    EXPECT_TRUE(log.take().empty()) << c.name;
    EXPECT_EQ(log.desync_reason(), c.reason) << c.name;
  }
}

TEST(SftpLogTest, DesyncKeepsWhatWasLogged) {
  SftpLog log;
  log.client_bytes(cat({init(), mkdir(1, "a"), open(2, "f", kWrite)}));
  log.server_bytes(cat({version(), status(1, 0), handle(2, "h"), Packet{0xff, 0, 0, 0}}));
  EXPECT_EQ(log.desync_reason(),
            "server sent a packet of 4278190080 bytes, over the 263168 byte limit");
  log.end();
  EXPECT_EQ(describe(log.take()), (std::vector<std::string>{
                                      "mkdir 'a' [perm=0755] ok ok",
                                      "open 'f' mode=w FAILED unclosed",
                                  }));
}

TEST(SftpLogTest, BufferedBytesAreBoundedByOnePacket) {
  SftpLog log;
  log.client_bytes(init());
  // A NAME of the largest size, fed but not finished: at most one packet is held.
  log.server_bytes(version());
  Packet big{0, 4, 4, 0, 104};
  big.resize(200 * 1024, 0);
  log.server_bytes(big);
  EXPECT_LE(log.buffered(), 4u + SftpLog::kMaxPacket);
  EXPECT_EQ(log.buffered(), big.size());
  EXPECT_FALSE(log.desynced());
}

// ---- Bounded tables ----

TEST(SftpLogTest, OutstandingRequestsAreBounded) {
  SftpLog log;
  log.client_bytes(init());
  log.server_bytes(version());
  for (uint32_t id = 0; id < SftpLog::kMaxOutstanding + 76; ++id) {
    log.client_bytes(id < 2 ? mkdir(id, numbered("d", id)) : path_request(17, id, "s"));
  }
  EXPECT_EQ(log.outstanding(), SftpLog::kMaxOutstanding);
  EXPECT_EQ(log.stats().dropped_requests, 76u);
  EXPECT_EQ(describe(log.take()), (std::vector<std::string>{
                                      "mkdir 'd0' [perm=0755] FAILED no_reply",
                                      "mkdir 'd1' [perm=0755] FAILED no_reply",
                                  }));
  log.server_bytes(attrs(0));         // evicted: unmatched
  log.server_bytes(attrs(1100 - 1));  // still outstanding
  EXPECT_EQ(log.stats().unmatched_replies, 1u);
  EXPECT_EQ(log.outstanding(), SftpLog::kMaxOutstanding - 1);
}

TEST(SftpLogTest, OpenHandlesAreBounded) {
  SftpLog log;
  log.client_bytes(init());
  log.server_bytes(version());
  const uint32_t n = SftpLog::kMaxHandles + 4;
  for (uint32_t id = 0; id < n; ++id) {
    log.client_bytes(open(id, numbered("f", id), kRead));
    log.server_bytes(handle(id, numbered("h", id)));
  }
  EXPECT_EQ(log.open_handles(), SftpLog::kMaxHandles);
  EXPECT_EQ(log.stats().dropped_handles, 4u);
  EXPECT_EQ(describe(log.take()), (std::vector<std::string>{
                                      "open 'f0' mode=r FAILED evicted",
                                      "open 'f1' mode=r FAILED evicted",
                                      "open 'f2' mode=r FAILED evicted",
                                      "open 'f3' mode=r FAILED evicted",
                                  }));
  log.client_bytes(cat({close(n, "h0"), close(n + 1, "h4")}));
  log.server_bytes(cat({status(n, 0), status(n + 1, 0)}));
  EXPECT_EQ(describe(log.take()), std::vector<std::string>{"open 'f4' mode=r ok ok"});
  EXPECT_EQ(log.stats().unknown_handles, 1u);
}

TEST(SftpLogTest, QueuedOpsAreBounded) {
  SftpLog log;
  log.client_bytes(init());
  log.server_bytes(version());
  for (uint32_t id = 0; id < SftpLog::kMaxQueuedOps + 10; ++id) {
    log.client_bytes(path_request(13, id, "x"));
    log.server_bytes(status(id, 2));
  }
  EXPECT_EQ(log.take().size(), SftpLog::kMaxQueuedOps);
  EXPECT_EQ(log.stats().dropped_ops, 10u);
}

// ---- Real sessions ----

// A session of OpenSSH's sftp client with OpenSSH's sftp-server, captured by
// tests/fuzz/sftp_log_corpus.sh (format: uint16 client length, flags byte, client, server).
struct Capture {
  Packet client, server;
};

Capture read_capture(const std::string& name) {
  std::ifstream in(std::string(TOUCHGATE_TEST_DATA) + "/../fuzz/corpus/sftp_log/" + name,
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  Packet all{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (all.size() < 3) return {};
  const size_t n = size_t{all[0]} << 8 | all[1];
  return {Packet(all.begin() + 3, all.begin() + 3 + n), Packet(all.begin() + 3 + n, all.end())};
}

// replay feeds a capture as the relay saw it: each server packet right after the client packet
// with its id (the client reuses ids once answered), the packets cut into chunks.
void replay(SftpLog& log, const Capture& cap, size_t chunk) {
  auto split = [](const Packet& stream) {
    std::vector<Packet> out;
    Reader r(stream);
    uint32_t len = 0;
    Bytes body;
    while (r.u32(&len) && r.bytes(len, &body)) out.push_back(Writer().string(body).take());
    EXPECT_TRUE(r.empty());
    return out;
  };
  auto id_of = [](const Packet& p) {
    return p.size() < 9
               ? ~0u
               : (uint32_t{p[5]} << 24 | uint32_t{p[6]} << 16 | uint32_t{p[7]} << 8 | p[8]);
  };
  const auto client = split(cap.client);
  size_t next = 0;
  for (const auto& reply : split(cap.server)) {
    const uint32_t id = reply[4] == 2 ? 0 : id_of(reply);  // VERSION follows INIT
    for (size_t j = next; j < client.size(); ++j) {
      if ((j == 0 ? 0 : id_of(client[j])) != id) continue;
      for (; next <= j; ++next) feed_chunked(log, true, client[next], chunk);
      break;
    }
    feed_chunked(log, false, reply, chunk);
  }
  for (; next < client.size(); ++next) feed_chunked(log, true, client[next], chunk);
}

// strip_dirs drops everything up to the scratch directory the capture ran in.
std::vector<std::string> strip_dirs(std::vector<SftpOp> ops) {
  auto strip = [](std::string& p) {
    const auto at = p.find("/work/");
    if (at != std::string::npos) p = p.substr(at + 6);
  };
  for (auto& op : ops) {
    strip(op.path);
    strip(op.path2);
  }
  return describe(ops);
}

TEST(SftpLogTest, RealSftpClientSession) {
  const auto cap = read_capture("put_get.bin");
  SftpLog log;
  replay(log, cap, 1 << 20);
  EXPECT_EQ(log.desync_reason(), "");
  EXPECT_EQ(strip_dirs(log.take()),
            (std::vector<std::string>{
                "mkdir 'd' [perm=0777] ok ok",
                "open 'd/a.txt' mode=w,create,trunc [perm=0644] written=3000 ok ok",
                "open 'd/a.txt' mode=r read=3000 ok ok",
                "rename 'd/a.txt' 'd/b.txt' ok ok",
                "setstat 'd/b.txt' [perm=0600] ok ok",
                "opendir 'd/' ok ok",
                "symlink 'b.txt' 'd/l' ok ok",
                "hardlink 'd/b.txt' 'd/h' ok ok",
                "remove 'd/l' ok ok",
                "remove 'd/h' ok ok",
                "remove 'd/b.txt' ok ok",
                "rmdir 'd' ok ok",
            }));
  EXPECT_EQ(log.outstanding(), 0u);
  EXPECT_EQ(log.open_handles(), 0u);
  EXPECT_EQ(log.stats().unmatched_replies, 0u);
  EXPECT_EQ(log.stats().unknown_handles, 0u);
  EXPECT_EQ(log.stats().requests.at("read"), 2u);  // the data, then EOF
}

TEST(SftpLogTest, RealSftpClientFailures) {
  const auto cap = read_capture("failures.bin");
  SftpLog log;
  replay(log, cap, 7);
  EXPECT_EQ(log.desync_reason(), "");
  EXPECT_EQ(strip_dirs(log.take()),
            (std::vector<std::string>{
                "mkdir '.' [perm=0777] FAILED failure (Failure)",
                "rmdir 'missing' FAILED no_such_file (No such file)",
                "rename 'missing' 'other' FAILED no_such_file (No such file)",
                "remove 'missing' FAILED no_such_file (No such file)",
                "setstat 'missing' [perm=0600] FAILED no_such_file (No such file)",
            }));
}

// SftpServer runs OpenSSH's sftp-server on pipes (it speaks SFTP on stdin/stdout, no ssh needed).
class SftpServer {
 public:
  static constexpr const char* kPath = "/usr/lib/openssh/sftp-server";

  bool start(const std::string& dir) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      if (chdir(dir.c_str()) != 0) _exit(127);
      execl(kPath, kPath, "-e", "-l", "QUIET", static_cast<char*>(nullptr));
      _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
    return pid_ > 0;
  }

  ~SftpServer() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }

  // exchange sends one request and returns the one packet that answers it.
  Packet exchange(const Packet& request) {
    if (::write(to_, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
      return {};
    }
    Packet reply = read_exactly(4);
    if (reply.size() != 4) return {};
    const size_t len =
        size_t{reply[0]} << 24 | size_t{reply[1]} << 16 | size_t{reply[2]} << 8 | reply[3];
    const Packet body = read_exactly(len);
    reply.insert(reply.end(), body.begin(), body.end());
    return reply;
  }

 private:
  Packet read_exactly(size_t n) {
    Packet out(n);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(from_, out.data() + got, n - got);
      if (r <= 0) return {};
      got += static_cast<size_t>(r);
    }
    return out;
  }

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
};

// handle_of reads the handle out of a HANDLE reply.
std::string handle_of(const Packet& reply) {
  Reader r(reply);
  uint32_t len = 0, id = 0;
  uint8_t type = 0;
  Bytes h;
  if (!r.u32(&len) || !r.u8(&type) || type != 102 || !r.u32(&id) || !r.string(&h)) return {};
  return std::string(as_text(h));
}

TEST(SftpLogTest, RealSftpServerSession) {
  if (access(SftpServer::kPath, X_OK) != 0) GTEST_SKIP() << "needs openssh-sftp-server";
  char tmpl[] = "/tmp/sftp_log_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  signal(SIGPIPE, SIG_IGN);

  SftpLog log;
  {
    SftpServer server;
    ASSERT_TRUE(server.start(dir));
    uint32_t id = 0;
    // Each request and its reply go to the log as the relay would see them, the replies split.
    auto step = [&](const Packet& request) {
      log.client_bytes(request);
      Packet reply = server.exchange(request);
      EXPECT_FALSE(reply.empty());
      const auto half = reply.size() / 2;
      log.server_bytes(std::span<const uint8_t>(reply).first(half));
      log.server_bytes(std::span<const uint8_t>(reply).subspan(half));
      return reply;
    };
    step(init());
    step(mkdir(++id, dir + "/sub"));
    const std::string h =
        handle_of(step(open(++id, dir + "/sub/up.bin", kWrite | kCreat | kTrunc, 0600)));
    ASSERT_FALSE(h.empty());
    step(write(++id, h, 0, 1000));
    step(write(++id, h, 1000, 5000));
    step(write(++id, h, 6000, 32768));
    step(close(++id, h));
    EXPECT_EQ(std::filesystem::file_size(dir + "/sub/up.bin"), 38768u);
    step(extended(++id, "posix-rename@openssh.com", dir + "/sub/up.bin", dir + "/sub/moved.bin"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/sub/moved.bin"));
    step(path_request(13, ++id, dir + "/sub/moved.bin"));
    step(path_request(13, ++id, dir + "/sub/moved.bin"));  // again: gone
    step(path_request(15, ++id, dir + "/sub"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/sub"));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(log.desync_reason(), "");
  std::vector<SftpOp> ops = log.take();
  for (auto& op : ops) {
    if (op.path.rfind(dir, 0) == 0) op.path = op.path.substr(dir.size());
    if (op.path2.rfind(dir, 0) == 0) op.path2 = op.path2.substr(dir.size());
  }
  EXPECT_EQ(describe(ops),
            (std::vector<std::string>{
                "mkdir '/sub' [perm=0755] ok ok",
                "open '/sub/up.bin' mode=w,create,trunc [perm=0600] written=38768 ok ok",
                "rename '/sub/up.bin' '/sub/moved.bin' ok ok",
                "remove '/sub/moved.bin' ok ok",
                "remove '/sub/moved.bin' FAILED no_such_file (No such file)",
                "rmdir '/sub' ok ok",
            }));
  EXPECT_EQ(log.stats().requests.at("write"), 3u);
  EXPECT_EQ(log.stats().requests.at("posix-rename@openssh.com"), 1u);
}

}  // namespace
}  // namespace touchgate::ssh
