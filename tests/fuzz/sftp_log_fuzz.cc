// Fuzz target: the SFTP operation log (trust boundary: the sftp client and the target's server,
// both untrusted). Input: uint16 big-endian length of the client stream, a flags byte, the client
// stream, the server stream. Flags bit 0: replay packet by packet, each reply right after the
// request it answers (as a relay sees a real session); else alternate raw chunks of the two
// streams. Each piece is fed again split into chunks whose sizes come from the input; the result
// must not change. Seed corpus: corpus/sftp_log/ (real sftp sessions, from sftp_log_corpus.sh).
// Invariants violated abort.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ssh/reader.h"
#include "ssh/sftp_log.h"

namespace {

using touchgate::ssh::Reader;
using touchgate::ssh::SftpLog;
using touchgate::ssh::SftpOp;
using Span = std::span<const uint8_t>;

struct Totals {
  uint64_t client = 0, server = 0;  // bytes fed
  uint64_t read = 0, written = 0;   // bytes the ops report
};

void check_ops(const std::vector<SftpOp>& ops, Totals* t) {
  if (ops.size() > SftpLog::kMaxQueuedOps) __builtin_trap();
  for (const auto& op : ops) {
    if (op.op.empty() || op.op.size() > 16) __builtin_trap();
    if (op.path.size() > SftpLog::kMaxPath || op.path2.size() > SftpLog::kMaxPath) __builtin_trap();
    if (op.message.size() > SftpLog::kMaxMessage) __builtin_trap();
    if (op.mode.size() > 64 || op.attrs.size() > 160 || op.status.empty() ||
        op.status.size() > 32) {
      __builtin_trap();
    }
    if (op.ok != (op.status == "ok")) __builtin_trap();
    t->read += op.bytes_read;
    // copy-data reports the length asked for, not bytes that went by.
    if (op.op != "copy-data") t->written += op.bytes_written;
  }
  // Bytes are counted as they stream by: never more than were fed.
  if (t->read > t->server || t->written > t->client) __builtin_trap();
}

void check_bounds(const SftpLog& log) {
  if (log.buffered() > 2 * (4 + size_t{SftpLog::kMaxPacket})) __builtin_trap();
  if (log.outstanding() > SftpLog::kMaxOutstanding) __builtin_trap();
  if (log.open_handles() > SftpLog::kMaxHandles) __builtin_trap();
  if (log.desynced() && log.buffered() != 0) __builtin_trap();
}

bool same(const SftpOp& a, const SftpOp& b) {
  return a.op == b.op && a.path == b.path && a.path2 == b.path2 && a.mode == b.mode &&
         a.attrs == b.attrs && a.bytes_read == b.bytes_read && a.bytes_written == b.bytes_written &&
         a.ok == b.ok && a.truncated == b.truncated && a.status == b.status &&
         a.message == b.message;
}

struct Piece {
  bool client;
  Span bytes;
};

// packets splits a stream into whole packets (length + body); an unframable tail is one piece.
std::vector<Span> packets(Span stream) {
  std::vector<Span> out;
  Reader r(stream);
  while (!r.empty()) {
    const size_t start = r.offset();
    uint32_t len = 0;
    Span body;
    if (!r.u32(&len) || !r.bytes(len, &body)) {
      out.push_back(stream.subspan(start));
      break;
    }
    out.push_back(stream.subspan(start, 4 + len));
  }
  return out;
}

// request_id is the id a packet carries after its type byte (none for INIT / VERSION).
bool request_id(Span packet, uint32_t* id) {
  Reader r(packet);
  uint32_t len = 0;
  uint8_t type = 0;
  return r.u32(&len) && r.u8(&type) && type > 2 && r.u32(id);
}

// causal orders the packets of both streams as a relay sees them: each server packet right after
// the first not yet fed client packet with its id (VERSION after INIT).
std::vector<Piece> causal(Span client, Span server) {
  const auto c = packets(client);
  std::vector<Piece> out;
  size_t next = 0;
  for (Span sp : packets(server)) {
    uint32_t id = 0;
    size_t until = next;  // client packets [next, until) go first
    if (!request_id(sp, &id)) {
      until = std::max<size_t>(next, std::min<size_t>(1, c.size()));
    } else {
      for (size_t j = next; j < c.size(); ++j) {
        uint32_t cid = 0;
        if (request_id(c[j], &cid) && cid == id) {
          until = j + 1;
          break;
        }
      }
    }
    for (; next < until; ++next) out.push_back({true, c[next]});
    out.push_back({false, sp});
  }
  for (; next < c.size(); ++next) out.push_back({true, c[next]});
  return out;
}

// alternating cuts both streams into chunks sized by the input, client and server in turn.
std::vector<Piece> alternating(Span client, Span server, Span input, uint8_t flags) {
  std::vector<Piece> out;
  size_t cpos = 0, spos = 0, step = 0;
  while (cpos < client.size() || spos < server.size()) {
    const bool c = cpos < client.size() && (step % 2 == 0 || spos == server.size());
    const size_t left = c ? client.size() - cpos : server.size() - spos;
    const size_t n = std::min<size_t>(left, 1 + input[step++ % input.size()] * (1 + (flags >> 1)));
    out.push_back({c, (c ? client : server).subspan(c ? cpos : spos, n)});
    (c ? cpos : spos) += n;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const Span input(data, size);
  const size_t client_len = std::min<size_t>(size - 3, size_t{data[0]} << 8 | data[1]);
  const uint8_t flags = data[2];
  const Span client = input.subspan(3, client_len);
  const Span server = input.subspan(3 + client_len);
  const auto pieces =
      (flags & 1) ? causal(client, server) : alternating(client, server, input, flags);

  SftpLog log;
  SftpLog whole;
  Totals totals;
  std::vector<SftpOp> all;
  std::string reason;
  size_t step = 0;
  for (const auto& p : pieces) {
    (p.client ? totals.client : totals.server) += p.bytes.size();
    p.client ? whole.client_bytes(p.bytes) : whole.server_bytes(p.bytes);
    for (size_t pos = 0; pos < p.bytes.size();) {
      const size_t n = std::min<size_t>(p.bytes.size() - pos, 1 + data[step++ % size] % 64);
      p.client ? log.client_bytes(p.bytes.subspan(pos, n))
               : log.server_bytes(p.bytes.subspan(pos, n));
      pos += n;
      check_bounds(log);
      // Once desynced, the log stays desynced for the same reason and logs nothing more.
      if (!reason.empty() && log.desync_reason() != reason) __builtin_trap();
      auto ops = log.take();
      if (!reason.empty() && !ops.empty()) __builtin_trap();
      if (log.desynced()) reason = log.desync_reason();
      check_ops(ops, &totals);
      all.insert(all.end(), ops.begin(), ops.end());
    }
  }
  log.end();
  auto ops = log.take();
  check_ops(ops, &totals);
  all.insert(all.end(), ops.begin(), ops.end());
  if (log.outstanding() != 0 || log.open_handles() != 0 || log.buffered() != 0) __builtin_trap();

  // The chunking does not change what is logged.
  whole.end();
  const auto expected = whole.take();
  if (whole.desync_reason() != log.desync_reason()) __builtin_trap();
  if (expected.size() != all.size() ||
      !std::equal(all.begin(), all.end(), expected.begin(), same)) {
    __builtin_trap();
  }
  return 0;
}
