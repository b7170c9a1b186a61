// Trust boundary: every byte parsed here comes from the sftp client or from the target's server.
#include "ssh/sftp_log.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "ssh/reader.h"

namespace touchgate::ssh {
namespace {

// Packet types (draft-ietf-secsh-filexfer-02).
constexpr uint8_t kInit = 1;
constexpr uint8_t kVersion = 2;
constexpr uint8_t kOpen = 3;
constexpr uint8_t kClose = 4;
constexpr uint8_t kRead = 5;
constexpr uint8_t kWrite = 6;
constexpr uint8_t kLstat = 7;
constexpr uint8_t kFstat = 8;
constexpr uint8_t kSetstat = 9;
constexpr uint8_t kFsetstat = 10;
constexpr uint8_t kOpendir = 11;
constexpr uint8_t kReaddir = 12;
constexpr uint8_t kRemove = 13;
constexpr uint8_t kMkdir = 14;
constexpr uint8_t kRmdir = 15;
constexpr uint8_t kRealpath = 16;
constexpr uint8_t kStat = 17;
constexpr uint8_t kRename = 18;
constexpr uint8_t kReadlink = 19;
constexpr uint8_t kSymlink = 20;
constexpr uint8_t kStatus = 101;
constexpr uint8_t kHandle = 102;
constexpr uint8_t kData = 103;
constexpr uint8_t kName = 104;
constexpr uint8_t kAttrs = 105;
constexpr uint8_t kExtended = 200;
constexpr uint8_t kExtendedReply = 201;

constexpr uint32_t kStatusOk = 0;
constexpr uint32_t kStatusEof = 1;

// Open flags (pflags).
constexpr uint32_t kFxfRead = 0x01;
constexpr uint32_t kFxfWrite = 0x02;
constexpr uint32_t kFxfAppend = 0x04;
constexpr uint32_t kFxfCreat = 0x08;
constexpr uint32_t kFxfTrunc = 0x10;
constexpr uint32_t kFxfExcl = 0x20;

// Attribute flags.
constexpr uint32_t kAttrSize = 0x01;
constexpr uint32_t kAttrUidGid = 0x02;
constexpr uint32_t kAttrPermissions = 0x04;
constexpr uint32_t kAttrAcModTime = 0x08;
constexpr uint32_t kAttrExtended = 0x80000000;

constexpr size_t kLengthSize = 4;
constexpr size_t kHeaderSize = kLengthSize + 1;  // length + type
// Bytes a WRITE or DATA packet holds before its data: header, request id, a string length.
constexpr size_t kStreamPrefix = kHeaderSize + 4 + 4;

const char* request_name(uint8_t type) {
  switch (type) {
    case kOpen:
      return "open";
    case kClose:
      return "close";
    case kRead:
      return "read";
    case kWrite:
      return "write";
    case kLstat:
      return "lstat";
    case kFstat:
      return "fstat";
    case kSetstat:
      return "setstat";
    case kFsetstat:
      return "fsetstat";
    case kOpendir:
      return "opendir";
    case kReaddir:
      return "readdir";
    case kRemove:
      return "remove";
    case kMkdir:
      return "mkdir";
    case kRmdir:
      return "rmdir";
    case kRealpath:
      return "realpath";
    case kStat:
      return "stat";
    case kRename:
      return "rename";
    case kReadlink:
      return "readlink";
    case kSymlink:
      return "symlink";
    case kExtended:
      return "extended";
    default:
      return nullptr;
  }
}

const char* reply_name(uint8_t type) {
  switch (type) {
    case kStatus:
      return "STATUS";
    case kHandle:
      return "HANDLE";
    case kData:
      return "DATA";
    case kName:
      return "NAME";
    case kAttrs:
      return "ATTRS";
    case kExtendedReply:
      return "EXTENDED_REPLY";
    default:
      return nullptr;
  }
}

std::string status_name(uint32_t code) {
  static const char* const kNames[] = {
      "ok",          "eof",           "no_such_file",    "permission_denied", "failure",
      "bad_message", "no_connection", "connection_lost", "op_unsupported"};
  if (code < std::size(kNames)) return kNames[code];
  return fmt::format("status_{}", code);
}

// Extensions whose requests are only counted, by their name.
constexpr std::string_view kCountedExtensions[] = {
    "statvfs@openssh.com", "fstatvfs@openssh.com",           "fsync@openssh.com",
    "limits@openssh.com",  "expand-path@openssh.com",        "home-directory",
    "check-file-name",     "users-groups-by-id@openssh.com", "check-file-handle",
};

// cut keeps at most max bytes of b; *truncated is set when bytes were dropped.
std::string cut(Bytes b, size_t max, bool* truncated) {
  if (b.size() > max) {
    *truncated = true;
    b = b.first(max);
  }
  return std::string(as_text(b));
}

bool read_path(Reader& r, std::string* out, bool* truncated) {
  Bytes b;
  if (!r.string(&b, SftpLog::kMaxPacket)) return false;
  *out = cut(b, SftpLog::kMaxPath, truncated);
  return true;
}

bool read_handle(Reader& r, std::string* out) {
  Bytes b;
  if (!r.string(&b, SftpLog::kMaxHandle)) return false;
  *out = std::string(as_text(b));
  return true;
}

// read_attrs reads an ATTRS structure; text (if not null) receives a summary of what it sets.
bool read_attrs(Reader& r, std::string* text) {
  uint32_t flags = 0;
  if (!r.u32(&flags)) return false;
  std::string out;
  auto add = [&out](const std::string& item) {
    if (!out.empty()) out += ' ';
    out += item;
  };
  if (flags & kAttrSize) {
    uint64_t size = 0;
    if (!r.u64(&size)) return false;
    add(fmt::format("size={}", size));
  }
  if (flags & kAttrUidGid) {
    uint32_t uid = 0, gid = 0;
    if (!r.u32(&uid) || !r.u32(&gid)) return false;
    add(fmt::format("uid={} gid={}", uid, gid));
  }
  if (flags & kAttrPermissions) {
    uint32_t perm = 0;
    if (!r.u32(&perm)) return false;
    add(fmt::format("perm={:04o}", perm));
  }
  if (flags & kAttrAcModTime) {
    uint32_t atime = 0, mtime = 0;
    if (!r.u32(&atime) || !r.u32(&mtime)) return false;
    add(fmt::format("atime={} mtime={}", atime, mtime));
  }
  if (flags & kAttrExtended) {
    uint32_t n = 0;
    if (!r.u32(&n)) return false;
    // Each pair takes at least 8 bytes, so a bogus count fails as soon as the bytes run out.
    for (uint32_t i = 0; i < n; ++i) {
      Bytes type, data;
      if (!r.string(&type) || !r.string(&data)) return false;
    }
    add(fmt::format("extended={}", n));
  }
  if (text != nullptr) *text = std::move(out);
  return true;
}

// read_extensions reads the extension-pair list that ends INIT and VERSION.
bool read_extensions(Reader& r) {
  while (!r.empty()) {
    Bytes name, data;
    if (!r.string(&name) || !r.string(&data)) return false;
  }
  return true;
}

std::string open_mode(uint32_t pflags) {
  std::string mode;
  if ((pflags & kFxfRead) && (pflags & kFxfWrite)) {
    mode = "rw";
  } else if (pflags & kFxfWrite) {
    mode = "w";
  } else if (pflags & kFxfRead) {
    mode = "r";
  } else {
    mode = "-";
  }
  if (pflags & kFxfAppend) mode += ",append";
  if (pflags & kFxfCreat) mode += ",create";
  if (pflags & kFxfTrunc) mode += ",trunc";
  if (pflags & kFxfExcl) mode += ",excl";
  const uint32_t other =
      pflags & ~(kFxfRead | kFxfWrite | kFxfAppend | kFxfCreat | kFxfTrunc | kFxfExcl);
  if (other != 0) mode += fmt::format(",0x{:x}", other);
  return mode;
}

}  // namespace

void SftpLog::client_bytes(std::span<const uint8_t> data) {
  feed(client_, true, data);
}
void SftpLog::server_bytes(std::span<const uint8_t> data) {
  feed(server_, false, data);
}

void SftpLog::feed(Stream& s, bool from_client, std::span<const uint8_t> data) {
  while (!data.empty() && !desynced() && !ended_) {
    if (s.skip > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(s.skip, data.size()));
      if (!from_client && s.data_tracked) {
        if (Handle* h = find_handle(s.data_handle)) h->op.bytes_read += n;
      }
      s.skip -= n;
      data = data.subspan(n);
      if (s.skip == 0) {
        s.buf.clear();
        s.data_tracked = false;
      }
      continue;
    }
    if (s.buf.size() < kLengthSize) {
      const size_t n = std::min(kLengthSize - s.buf.size(), data.size());
      s.buf.insert(s.buf.end(), data.begin(), data.begin() + n);
      data = data.subspan(n);
      if (s.buf.size() == kLengthSize) {
        Reader r(s.buf);
        (void)r.u32(&s.length);
        if (s.length == 0) return desync(from_client, "sent a packet of length 0");
        if (s.length > kMaxPacket) {
          return desync(from_client,
                        fmt::format("sent a packet of {} bytes, over the {} byte limit", s.length,
                                    kMaxPacket));
        }
      }
      continue;
    }
    const size_t want = wanted(s, from_client);
    if (desynced()) return;
    const size_t n = std::min(want - s.buf.size(), data.size());
    s.buf.insert(s.buf.end(), data.begin(), data.begin() + n);
    data = data.subspan(n);
    if (s.buf.size() == want && wanted(s, from_client) == want && !desynced()) {
      process(s, from_client);
    }
  }
}

bool SftpLog::streams_data(const Stream& s, bool from_client) const {
  if (!s.started || s.buf.size() < kHeaderSize) return false;
  return s.buf[kLengthSize] == (from_client ? kWrite : kData);
}

// wanted is how many bytes buf must hold before the packet can be acted on: the whole packet, or
// for WRITE / DATA the fields before the data. It desyncs when those fields run past the packet.
size_t SftpLog::wanted(const Stream& s, bool from_client) {
  const size_t whole = kLengthSize + s.length;
  if (s.buf.size() < kHeaderSize || !streams_data(s, from_client)) {
    return s.buf.size() < kHeaderSize ? kHeaderSize : whole;
  }
  size_t want = kStreamPrefix;
  if (from_client && s.buf.size() >= kStreamPrefix) {
    Reader r(std::span<const uint8_t>(s.buf).subspan(kStreamPrefix - 4));
    uint32_t handle_len = 0;
    (void)r.u32(&handle_len);
    if (handle_len > kMaxHandle) {
      desync(true, fmt::format("sent a WRITE with a handle of {} bytes", handle_len));
      return s.buf.size();
    }
    want = kStreamPrefix + handle_len + 8 + 4;  // handle, offset, data length
  }
  if (want > whole) {
    desync(from_client, fmt::format("sent a {} packet too short for its fields",
                                    from_client ? "WRITE" : "DATA"));
    return s.buf.size();
  }
  return want;
}

void SftpLog::process(Stream& s, bool from_client) {
  const uint8_t type = s.buf[kLengthSize];
  const auto body = std::span<const uint8_t>(s.buf).subspan(kHeaderSize);
  if (streams_data(s, from_client)) {
    const bool ok = from_client ? on_write_prefix(s, body) : on_data_prefix(s, body);
    if (!ok) {
      return desync(from_client,
                    fmt::format("sent a malformed {}", from_client ? "WRITE" : "DATA"));
    }
    if (s.skip == 0) {
      s.buf.clear();
      s.data_tracked = false;
    }
    return;
  }
  bool ok = false;
  std::string what;
  if (!s.started) {
    const uint8_t first = from_client ? kInit : kVersion;
    if (type != first) {
      return desync(from_client, fmt::format("sent packet type {} before {}", type,
                                             from_client ? "INIT" : "VERSION"));
    }
    s.started = true;
    ok = from_client ? on_init(body) : on_version(body);
    what = from_client ? "INIT" : "VERSION";
  } else if (from_client) {
    ok = on_request(type, body);
    const char* name = request_name(type);
    what = name != nullptr ? fmt::format("{} request", name) : fmt::format("request type {}", type);
  } else {
    if (reply_name(type) == nullptr) {
      return desync(false, fmt::format("sent unknown reply type {}", type));
    }
    ok = on_reply(type, body);
    what = reply_name(type);
  }
  if (desynced()) return;
  if (!ok) return desync(from_client, "sent a malformed " + what);
  s.buf.clear();
}

bool SftpLog::on_init(std::span<const uint8_t> body) {
  Reader r(body);
  uint32_t version = 0;
  return r.u32(&version) && read_extensions(r);
}

bool SftpLog::on_version(std::span<const uint8_t> body) {
  Reader r(body);
  if (!r.u32(&version_) || !read_extensions(r)) return false;
  if (version_ != 3) {
    desync(false, fmt::format("answered with protocol version {}, only 3 is parsed", version_));
  }
  return true;
}

bool SftpLog::on_request(uint8_t type, std::span<const uint8_t> body) {
  Reader r(body);
  uint32_t id = 0;
  if (type == kInit || type == kVersion) return false;  // only once, first
  if (!r.u32(&id)) return false;
  const char* name = request_name(type);
  if (type != kExtended) count(name != nullptr ? name : "unknown");  // extended: by its name
  Pending p;
  SftpOp& op = p.op;
  auto logged = [&p, &op](const char* what) {
    p.kind = Kind::kLogged;
    op.op = what;
  };
  switch (type) {
    case kOpen: {
      uint32_t pflags = 0;
      if (!read_path(r, &op.path, &op.truncated) || !r.u32(&pflags) || !read_attrs(r, &op.attrs)) {
        return false;
      }
      p.kind = Kind::kOpen;
      op.op = "open";
      op.mode = open_mode(pflags);
      break;
    }
    case kOpendir:
      if (!read_path(r, &op.path, &op.truncated)) return false;
      p.kind = Kind::kOpendir;
      op.op = "opendir";
      break;
    case kClose:
    case kRead:
    case kFsetstat: {
      if (!read_handle(r, &p.handle)) return false;
      if (type == kRead) {
        uint64_t offset = 0;
        uint32_t len = 0;
        if (!r.u64(&offset) || !r.u32(&len)) return false;
      }
      if (type == kFsetstat && !read_attrs(r, &op.attrs)) return false;
      p.kind = type == kClose ? Kind::kClose : type == kRead ? Kind::kRead : Kind::kLogged;
      if (type == kFsetstat) op.op = "setstat";
      if (const Handle* h = find_handle(p.handle)) {
        op.path = h->op.path;
        op.truncated = h->op.truncated;
      } else {
        ++stats_.unknown_handles;
      }
      break;
    }
    case kFstat:
    case kReaddir:
      if (!read_handle(r, &p.handle)) return false;
      break;
    case kLstat:
    case kStat:
    case kRealpath:
    case kReadlink:
      if (!read_path(r, &op.path, &op.truncated)) return false;
      break;
    case kRemove:
    case kRmdir:
      if (!read_path(r, &op.path, &op.truncated)) return false;
      logged(type == kRemove ? "remove" : "rmdir");
      break;
    case kMkdir:
    case kSetstat:
      if (!read_path(r, &op.path, &op.truncated) || !read_attrs(r, &op.attrs)) return false;
      logged(type == kMkdir ? "mkdir" : "setstat");
      break;
    case kRename:
    case kSymlink:
      if (!read_path(r, &op.path, &op.truncated) || !read_path(r, &op.path2, &op.truncated)) {
        return false;
      }
      logged(type == kRename ? "rename" : "symlink");
      break;
    case kExtended:
      return on_extended(id, r.rest());
    default:
      // Unknown to this log: the server answers it (OP_UNSUPPORTED, most likely) by the same id.
      add_pending(id, std::move(p));
      return true;
  }
  if (!r.finish()) return false;
  add_pending(id, std::move(p));
  return true;
}

bool SftpLog::on_extended(uint32_t id, std::span<const uint8_t> rest) {
  Reader r(rest);
  Bytes name_bytes;
  if (!r.string(&name_bytes, kMaxPacket)) return false;
  const std::string_view name = as_text(name_bytes);
  Pending p;
  SftpOp& op = p.op;
  if (name == "posix-rename@openssh.com" || name == "hardlink@openssh.com") {
    if (!read_path(r, &op.path, &op.truncated) || !read_path(r, &op.path2, &op.truncated)) {
      return false;
    }
    p.kind = Kind::kLogged;
    op.op = name == "hardlink@openssh.com" ? "hardlink" : "rename";
  } else if (name == "lsetstat@openssh.com") {
    if (!read_path(r, &op.path, &op.truncated) || !read_attrs(r, &op.attrs)) return false;
    p.kind = Kind::kLogged;
    op.op = "setstat";
  } else if (name == "copy-data") {
    std::string from, to;
    uint64_t from_offset = 0, to_offset = 0;
    if (!read_handle(r, &from) || !r.u64(&from_offset) || !r.u64(&op.bytes_written) ||
        !read_handle(r, &to) || !r.u64(&to_offset)) {
      return false;
    }
    for (auto [handle, path] : {std::pair{&from, &op.path}, std::pair{&to, &op.path2}}) {
      if (const Handle* h = find_handle(*handle)) {
        *path = h->op.path;
        op.truncated = op.truncated || h->op.truncated;
      } else {
        ++stats_.unknown_handles;
      }
    }
    p.kind = Kind::kLogged;
    op.op = "copy-data";
  } else {
    // Counted only; their arguments are not needed, so not parsed.
    const bool known = std::find(std::begin(kCountedExtensions), std::end(kCountedExtensions),
                                 name) != std::end(kCountedExtensions);
    count(known ? name : "extended");
    add_pending(id, std::move(p));
    return true;
  }
  count(name);
  if (!r.finish()) return false;
  add_pending(id, std::move(p));
  return true;
}

bool SftpLog::on_write_prefix(Stream& s, std::span<const uint8_t> body) {
  Reader r(body);
  uint32_t id = 0, len = 0;
  uint64_t offset = 0;
  Pending p;
  if (!r.u32(&id) || !read_handle(r, &p.handle) || !r.u64(&offset) || !r.u32(&len)) return false;
  // The data must fill the packet exactly: a string longer than the packet, or trailing bytes
  // after it, is malformed.
  if (!r.finish() || len != s.length - (1 + body.size())) return false;
  count("write");
  p.kind = Kind::kWrite;
  p.bytes = len;
  if (find_handle(p.handle) == nullptr) ++stats_.unknown_handles;
  add_pending(id, std::move(p));
  s.skip = len;
  return true;
}

bool SftpLog::on_data_prefix(Stream& s, std::span<const uint8_t> body) {
  Reader r(body);
  uint32_t id = 0, len = 0;
  if (!r.u32(&id) || !r.u32(&len) || !r.finish()) return false;
  if (len != s.length - (1 + body.size())) return false;
  Pending p;
  if (take_pending(id, &p) && p.kind == Kind::kRead) {
    s.data_tracked = true;
    s.data_handle = std::move(p.handle);
  } else {
    ++stats_.unmatched_replies;
  }
  s.skip = len;
  return true;
}

bool SftpLog::on_reply(uint8_t type, std::span<const uint8_t> body) {
  Reader r(body);
  uint32_t id = 0;
  if (!r.u32(&id)) return false;
  Pending p;
  const bool matched = take_pending(id, &p);
  switch (type) {
    case kStatus: {
      uint32_t code = 0;
      Bytes message, language;
      if (!r.u32(&code)) return false;
      // Servers of protocol versions before 3 send neither message nor language tag.
      if (!r.empty() && (!r.string(&message, kMaxPacket) || !r.string(&language))) return false;
      if (!r.finish()) return false;
      bool truncated = false;
      if (matched) on_status(p, code, cut(message, kMaxMessage, &truncated));
      break;
    }
    case kHandle: {
      std::string handle;
      if (!read_handle(r, &handle) || !r.finish()) return false;
      if (matched && (p.kind == Kind::kOpen || p.kind == Kind::kOpendir)) {
        on_handle(p, std::move(handle));
        return true;
      }
      break;
    }
    case kName: {
      uint32_t n = 0;
      if (!r.u32(&n)) return false;
      // Each entry takes at least 12 bytes: a bogus count fails as soon as the bytes run out.
      for (uint32_t i = 0; i < n; ++i) {
        Bytes filename, longname;
        if (!r.string(&filename, kMaxPacket) || !r.string(&longname, kMaxPacket) ||
            !read_attrs(r, nullptr)) {
          return false;
        }
      }
      if (!r.finish()) return false;
      break;
    }
    case kAttrs:
      if (!read_attrs(r, nullptr) || !r.finish()) return false;
      break;
    case kExtendedReply:
      break;  // opaque, extension-specific
    default:
      return false;
  }
  if (!matched) {
    ++stats_.unmatched_replies;
  } else if (type != kStatus && p.kind != Kind::kOther) {
    // A NAME / ATTRS / HANDLE / EXTENDED_REPLY answering a request that wants a STATUS (or a
    // HANDLE): what the server did is unknown.
    ++stats_.unmatched_replies;
    if (p.kind == Kind::kOpen || p.kind == Kind::kOpendir || p.kind == Kind::kLogged) {
      p.op.ok = false;
      p.op.status = "bad_reply";
      emit(std::move(p.op));
    }
  }
  return true;
}

void SftpLog::on_status(Pending& p, uint32_t code, std::string message) {
  const bool ok = code == kStatusOk;
  auto fail_handle = [&](const std::string& handle) {
    Handle* h = find_handle(handle);
    if (h == nullptr || !h->op.ok) return;
    h->op.ok = false;
    h->op.status = status_name(code);
    h->op.message = message;
  };
  switch (p.kind) {
    case Kind::kOpen:
    case Kind::kOpendir:
      p.op.ok = false;
      p.op.status = ok ? "no_handle" : status_name(code);
      p.op.message = std::move(message);
      return emit(std::move(p.op));
    case Kind::kLogged:
      p.op.ok = ok;
      p.op.status = status_name(code);
      if (!ok) p.op.message = std::move(message);
      return emit(std::move(p.op));
    case Kind::kWrite:
      if (!ok) return fail_handle(p.handle);
      if (Handle* h = find_handle(p.handle)) h->op.bytes_written += p.bytes;
      return;
    case Kind::kRead:
      if (code != kStatusEof && !ok) fail_handle(p.handle);
      return;
    case Kind::kClose:
      if (Handle* h = find_handle(p.handle)) {
        SftpOp op = std::move(h->op);
        if (op.ok) {
          op.ok = ok;
          op.status = status_name(code);
          if (!ok) op.message = std::move(message);
        }
        erase_handle(p.handle);
        emit(std::move(op));
      }
      return;
    case Kind::kOther:
      return;
  }
}

void SftpLog::on_handle(Pending& p, std::string handle) {
  if (Handle* old = find_handle(handle)) {
    // The server handed out a handle still open: the old file's log ends here.
    old->op.ok = false;
    old->op.status = "evicted";
    emit(std::move(old->op));
    erase_handle(handle);
    ++stats_.dropped_handles;
  }
  if (handles_.size() >= kMaxHandles) {
    auto oldest = handle_order_.begin();
    Handle& h = handles_.at(oldest->second);
    h.op.ok = false;
    h.op.status = "evicted";
    emit(std::move(h.op));
    erase_handle(std::string(oldest->second));
    ++stats_.dropped_handles;
  }
  Handle h;
  h.seq = ++seq_;
  h.op = std::move(p.op);
  h.op.ok = true;
  h.op.status = "ok";
  handle_order_.emplace(h.seq, handle);
  handles_.emplace(std::move(handle), std::move(h));
}

void SftpLog::add_pending(uint32_t id, Pending p) {
  auto drop = [this](uint32_t old_id) {
    auto it = pending_.find(old_id);
    Pending& old = it->second;
    if (old.kind == Kind::kOpen || old.kind == Kind::kOpendir || old.kind == Kind::kLogged) {
      old.op.ok = false;
      old.op.status = "no_reply";
      emit(std::move(old.op));
    }
    pending_order_.erase(old.seq);
    pending_.erase(it);
    ++stats_.dropped_requests;
  };
  if (pending_.count(id) != 0) drop(id);  // the client reused an id still outstanding
  if (pending_.size() >= kMaxOutstanding) drop(pending_order_.begin()->second);
  p.seq = ++seq_;
  pending_order_.emplace(p.seq, id);
  pending_.emplace(id, std::move(p));
}

bool SftpLog::take_pending(uint32_t id, Pending* out) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return false;
  *out = std::move(it->second);
  pending_order_.erase(out->seq);
  pending_.erase(it);
  return true;
}

SftpLog::Handle* SftpLog::find_handle(const std::string& handle) {
  auto it = handles_.find(handle);
  return it == handles_.end() ? nullptr : &it->second;
}

void SftpLog::erase_handle(const std::string& handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end()) return;
  handle_order_.erase(it->second.seq);
  handles_.erase(it);
}

void SftpLog::end() {
  if (ended_) return;
  ended_ = true;
  // Both in the order they began.
  for (const auto& [seq, id] : pending_order_) {
    Pending& p = pending_.at(id);
    if (p.kind == Kind::kOpen || p.kind == Kind::kOpendir || p.kind == Kind::kLogged) {
      p.op.ok = false;
      p.op.status = "no_reply";
      emit(std::move(p.op));
    }
  }
  for (const auto& [seq, handle] : handle_order_) {
    Handle& h = handles_.at(handle);
    if (h.op.ok) h.op.status = "unclosed";
    h.op.ok = false;
    emit(std::move(h.op));
  }
  pending_.clear();
  pending_order_.clear();
  handles_.clear();
  handle_order_.clear();
  client_.buf.clear();
  server_.buf.clear();
}

std::vector<SftpOp> SftpLog::take() {
  return std::exchange(ops_, {});
}

void SftpLog::emit(SftpOp op) {
  if (ops_.size() >= kMaxQueuedOps) {
    ++stats_.dropped_ops;
    return;
  }
  ops_.push_back(std::move(op));
}

void SftpLog::count(std::string_view name) {
  auto it = stats_.requests.find(name);
  if (it == stats_.requests.end()) it = stats_.requests.emplace(std::string(name), 0).first;
  ++it->second;
}

void SftpLog::desync(bool from_client, const std::string& why) {
  if (desynced()) return;
  desync_reason_ = (from_client ? "client " : "server ") + why;
  client_.buf.clear();
  client_.buf.shrink_to_fit();
  server_.buf.clear();
  server_.buf.shrink_to_fit();
}

}  // namespace touchgate::ssh
