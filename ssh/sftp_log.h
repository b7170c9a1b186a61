// SFTP operation log: a passive tap on both directions of a relayed `sftp` session
// (draft-ietf-secsh-filexfer-02, protocol version 3 as OpenSSH speaks it, with OpenSSH's
// extensions). Trust boundary: every byte comes from a peer — the client or the target — and both
// are untrusted. The bytes are only read, never changed; the relay does not depend on this parser.
//
// SftpLog reassembles the packets of each direction from chunks split anywhere, matches replies to
// requests by request id and handles to the paths they were opened with, and queues one SftpOp per
// completed operation:
//   - a file or directory handle: ONE op ("open" / "opendir") when its CLOSE is answered, with the
//     path, the open flags as text and the byte totals the server confirmed (bytes_written counts
//     WRITEs answered with STATUS ok; bytes_read counts DATA bytes as they stream by). A failed
//     OPEN/OPENDIR gives its op at once with ok=false.
//   - "remove", "rename" (also posix-rename@openssh.com), "mkdir", "rmdir", "setstat" (also
//     FSETSTAT — path from the handle — and lsetstat@openssh.com), "symlink", "hardlink"
//     (hardlink@openssh.com), "copy-data" (copy-data): when the server's STATUS comes back.
// Everything else (stat, lstat, fstat, readdir, realpath, readlink, statvfs, fsync, limits, ...)
// is only counted in stats().
//
// ok is true only when the server confirmed every step (open, each read and write, close). status
// names the first failure: the STATUS code's name ("no_such_file", "permission_denied", ...,
// "status_<n>" for codes without one), or one the log synthesises: "no_handle" (STATUS ok to an
// OPEN), "bad_reply" (answered with a reply of the wrong type), "no_reply" (request evicted from
// the full table, or still pending at end()), "evicted" (handle evicted from the full table, or
// handed out again by the server: later I/O on it is not counted), "unclosed" (handle still open
// at end()).
//
// Symlink arguments are taken in OpenSSH's wire order (target first, then the new link — see
// OpenSSH's PROTOCOL, "sftp: Reversal of arguments to SSH_FXP_SYMLINK"): path is the target and
// path2 the link, as in `ln -s path path2`; hardlink likewise (path existing, path2 new).
//
// Malformed input — a packet length of 0 or over kMaxPacket, a field running past its packet,
// trailing bytes, a handle over 256 bytes, a first packet other than INIT / VERSION, a version
// other than 3, an unknown reply type — desyncs the log: it stops parsing both directions for
// good and desync_reason() says why. What was logged before stays; end() still reports the
// handles left open.
//
// Memory is bounded: per direction at most one packet (4 + kMaxPacket bytes) is buffered, and for
// WRITE and DATA only the fields before the data (the data bytes are counted and dropped);
// kMaxOutstanding requests, kMaxHandles handles and kMaxQueuedOps queued ops, each path cut to
// kMaxPath bytes. Paths are raw bytes (not UTF-8, may hold any byte): nothing is escaped here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace touchgate::ssh {

struct SftpOp {
  std::string op;     // "open", "opendir", "remove", "rename", "mkdir", "rmdir", "setstat", ...
  std::string path;   // raw bytes, at most kMaxPath of them
  std::string path2;  // rename/symlink/hardlink/copy-data: the second path
  std::string mode;   // open: "r", "w" or "rw", then ",append", ",create", ",trunc", ",excl"
  std::string attrs;  // open/mkdir/setstat: attributes sent, "size=.. uid=.. gid=.. perm=0644 .."
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;  // copy-data: the length asked to copy (0: to end of file)
  bool ok = false;
  bool truncated = false;  // path or path2 was longer than kMaxPath and cut
  std::string status;      // "ok", a STATUS code name or a synthesised one (see above)
  std::string message;     // the server's STATUS message for a failure, at most kMaxMessage bytes
};

struct SftpStats {
  // Requests by name: "read", "stat", ...; extensions by their name when known
  // ("statvfs@openssh.com"), else "extended"; packet types unknown here, "unknown". A fixed set.
  std::map<std::string, uint64_t, std::less<>> requests;
  uint64_t unmatched_replies = 0;  // a reply whose id matched no outstanding request of its kind
  uint64_t dropped_requests = 0;   // outstanding requests evicted from the full table
  uint64_t dropped_handles = 0;    // open handles evicted from the full table
  uint64_t unknown_handles = 0;    // requests on a handle not in the table
  uint64_t dropped_ops = 0;        // ops not queued because kMaxQueuedOps were waiting
};

class SftpLog {
 public:
  // Largest packet (length field value) either peer may send: OpenSSH's 256 KiB plus a margin.
  static constexpr uint32_t kMaxPacket = 256 * 1024 + 1024;
  static constexpr size_t kMaxPath = 4096;
  static constexpr size_t kMaxMessage = 1024;
  static constexpr size_t kMaxHandle = 256;
  static constexpr size_t kMaxOutstanding = 1024;
  static constexpr size_t kMaxHandles = 4096;
  static constexpr size_t kMaxQueuedOps = 4096;

  // client_bytes / server_bytes take the channel data of each direction in order, in any
  // chunking. A request must be fed before its reply (tap the client side before relaying it).
  void client_bytes(std::span<const uint8_t> data);
  void server_bytes(std::span<const uint8_t> data);

  // end marks the end of the session (channel closed): every request still unanswered that would
  // have been logged gives its op with status "no_reply", every handle still open gives its op
  // with status "unclosed". Later input is ignored.
  void end();

  // take drains the queued ops, oldest first.
  std::vector<SftpOp> take();

  const SftpStats& stats() const { return stats_; }
  bool desynced() const { return !desync_reason_.empty(); }
  // desync_reason is empty while in sync, else one sentence naming the peer and the fault.
  const std::string& desync_reason() const { return desync_reason_; }
  // The protocol version the server answered with (0 before VERSION).
  uint32_t version() const { return version_; }

  // Sizes of the bounded state, for tests and the fuzz target.
  size_t buffered() const { return client_.buf.size() + server_.buf.size(); }
  size_t outstanding() const { return pending_.size(); }
  size_t open_handles() const { return handles_.size(); }

 private:
  enum class Kind : uint8_t { kOpen, kOpendir, kClose, kRead, kWrite, kLogged, kOther };
  // An outstanding request. Logged kinds keep what their op will say.
  struct Pending {
    Kind kind = Kind::kOther;
    uint64_t seq = 0;
    std::string handle;  // kClose, kRead, kWrite
    uint64_t bytes = 0;  // kWrite: the data length, counted once the server says ok
    SftpOp op;           // kOpen, kOpendir, kLogged
  };
  // An open handle and what was done through it.
  struct Handle {
    uint64_t seq = 0;
    SftpOp op;  // ok/status/message: the first failure, if any
  };
  struct Stream {
    std::vector<uint8_t> buf;   // length + type + the fields buffered so far
    uint32_t length = 0;        // the current packet's length field, once read
    uint64_t skip = 0;          // WRITE/DATA bytes still to stream by
    bool started = false;       // the first packet (INIT / VERSION) was seen
    bool data_tracked = false;  // the DATA being streamed answers a READ on data_handle
    std::string data_handle;
  };

  void feed(Stream& s, bool from_client, std::span<const uint8_t> data);
  size_t wanted(const Stream& s, bool from_client);
  void process(Stream& s, bool from_client);
  bool streams_data(const Stream& s, bool from_client) const;
  bool on_init(std::span<const uint8_t> body);
  bool on_version(std::span<const uint8_t> body);
  bool on_request(uint8_t type, std::span<const uint8_t> body);
  bool on_extended(uint32_t id, std::span<const uint8_t> rest);
  bool on_reply(uint8_t type, std::span<const uint8_t> body);
  bool on_write_prefix(Stream& s, std::span<const uint8_t> body);
  bool on_data_prefix(Stream& s, std::span<const uint8_t> body);
  void on_status(Pending& p, uint32_t code, std::string message);
  void on_handle(Pending& p, std::string handle);
  void add_pending(uint32_t id, Pending p);
  bool take_pending(uint32_t id, Pending* out);
  Handle* find_handle(const std::string& handle);
  void erase_handle(const std::string& handle);
  void emit(SftpOp op);
  void count(std::string_view name);
  void desync(bool from_client, const std::string& why);

  Stream client_, server_;
  uint32_t version_ = 0;
  bool ended_ = false;
  std::string desync_reason_;
  uint64_t seq_ = 0;
  std::map<uint32_t, Pending> pending_;         // by request id
  std::map<uint64_t, uint32_t> pending_order_;  // sequence -> request id, oldest first
  std::map<std::string, Handle> handles_;       // by handle bytes
  std::map<uint64_t, std::string> handle_order_;
  std::vector<SftpOp> ops_;
  SftpStats stats_;
};

}  // namespace touchgate::ssh
