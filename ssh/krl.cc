// Trust boundary: KRL and revoked-keys files are parsed as untrusted bytes, only through Reader.
#include "ssh/krl.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "ssh/certificate.h"
#include "ssh/digest.h"
#include "ssh/key.h"

namespace touchgate::ssh {
namespace {

constexpr uint32_t kKrlFormatVersion = 1;

// Section types (PROTOCOL.krl §1).
constexpr uint8_t kSectionCertificates = 1;
constexpr uint8_t kSectionExplicitKey = 2;
constexpr uint8_t kSectionFingerprintSha1 = 3;
constexpr uint8_t kSectionSignature = 4;
constexpr uint8_t kSectionFingerprintSha256 = 5;
constexpr uint8_t kSectionExtension = 255;

// Certificate subsection types (PROTOCOL.krl §2).
constexpr uint8_t kCertSerialList = 0x20;
constexpr uint8_t kCertSerialRange = 0x21;
constexpr uint8_t kCertSerialBitmap = 0x22;
constexpr uint8_t kCertKeyId = 0x23;
constexpr uint8_t kCertExtension = 0x39;

// OpenSSH reads the bitmap as a bignum of at most 16384 bits (magnitude bytes; the encoding may
// add a zero sign byte).
constexpr size_t kMaxBitmapBytes = 16384 / 8;
// Longest key type name accepted when peeking into an explicit key blob.
constexpr size_t kMaxKeyTypeName = 256;

constexpr uint64_t kMaxSerial = std::numeric_limits<uint64_t>::max();

using Status = Result<void>;

tl::unexpected<Error> malformed(std::string_view where, std::string_view what) {
  return fail("krl_malformed", fmt::format("KRL {}: {}", where, what));
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// printable returns s for an error message when it is short printable ASCII, else a placeholder.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  const bool ok = s.size() <= kMaxShown && std::all_of(s.begin(), s.end(), [](char c) {
                    return c >= 0x20 && c < 0x7f && c != '"';
                  });
  return ok ? std::string(s) : std::string("(unprintable)");
}

// merge_ranges sorts inclusive ranges and joins overlapping or adjacent ones.
void merge_ranges(std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  merged.reserve(ranges.size());
  for (const auto& [lo, hi] : ranges) {
    if (!merged.empty()) {
      auto& last = merged.back();
      if (last.second == kMaxSerial || lo <= last.second + 1) {
        last.second = std::max(last.second, hi);
        continue;
      }
    }
    merged.emplace_back(lo, hi);
  }
  ranges = std::move(merged);
}

class KrlParser {
 public:
  Result<Krl> run(Bytes data);

 private:
  Status header(Reader& r);
  Status section(uint8_t type, Reader& body, std::string_view where);
  Status cert_section(Reader& body, std::string_view where);
  Status cert_subsection(uint8_t type, Reader& body, KrlCertSection& out, std::string_view where);
  Status serial_bitmap(Reader& body, KrlCertSection& out, std::string_view where);
  Status blob_section(uint8_t type, Reader& body, std::string_view where);
  Status extension(Reader& body, std::string_view where);
  Status charge(size_t n, std::string_view where);

  Krl krl_;
  std::map<std::vector<uint8_t>, size_t, BlobLess> ca_index_;  // CA key blob ("" = any) -> cert_sections_
  size_t entries_ = 0;
};

Result<Krl> KrlParser::run(Bytes data) {
  Reader r(data);
  if (auto st = header(r); !st) return tl::unexpected(st.error());
  for (size_t index = 0; !r.empty(); ++index) {
    const size_t offset = r.offset();
    uint8_t type = 0;
    Reader body;
    const std::string where = fmt::format("section {} at offset {}", index, offset);
    if (!r.u8(&type) || !r.nested(&body, data.size())) return malformed(where, "truncated");
    if (auto st = section(type, body, fmt::format("{} (type {})", where, type)); !st) {
      return tl::unexpected(st.error());
    }
  }
  for (auto& cs : krl_.cert_sections) merge_ranges(cs.serial_ranges);
  return std::move(krl_);
}

Status KrlParser::header(Reader& r) {
  uint64_t magic = 0;
  uint32_t format_version = 0;
  if (!r.u64(&magic) || magic != kKrlMagic) return malformed("header", "bad magic");
  if (!r.u32(&format_version)) return malformed("header", "truncated");
  if (format_version != kKrlFormatVersion) {
    return malformed("header", fmt::format("unsupported format version {}", format_version));
  }
  Bytes reserved;
  if (!r.u64(&krl_.version) || !r.u64(&krl_.generated_date) || !r.u64(&krl_.flags) ||
      !r.string(&reserved) || !r.text_copy(&krl_.comment)) {
    return malformed("header", "truncated or invalid comment");
  }
  return {};
}

Status KrlParser::charge(size_t n, std::string_view where) {
  if (n > kMaxRevocationEntries - entries_) {
    return malformed(where, fmt::format("more than {} revocation entries", kMaxRevocationEntries));
  }
  entries_ += n;
  return {};
}

Status KrlParser::section(uint8_t type, Reader& body, std::string_view where) {
  Status st;
  switch (type) {
    case kSectionCertificates:
      st = cert_section(body, where);
      break;
    case kSectionExplicitKey:
    case kSectionFingerprintSha1:
    case kSectionFingerprintSha256:
      st = blob_section(type, body, where);
      break;
    case kSectionExtension:
      st = extension(body, where);
      break;
    case kSectionSignature:
      return malformed(where, "signature sections are obsolete and not supported");
    default:
      return malformed(where, "unknown section type");
  }
  if (!st) return st;
  if (!body.finish()) return malformed(where, "section contains unparsed data");
  return {};
}

Status KrlParser::cert_section(Reader& body, std::string_view where) {
  Bytes ca_blob, reserved;
  if (!body.string(&ca_blob) || !body.string(&reserved)) return malformed(where, "truncated");
  std::vector<uint8_t> ca_key;
  if (!ca_blob.empty()) {
    auto key = parse_public_key(ca_blob);
    if (!key) return malformed(where, "CA key: " + key.error().message);
    ca_key = std::move(key->blob);
  }
  if (auto st = charge(1, where); !st) return st;
  auto [it, inserted] = ca_index_.try_emplace(ca_key, krl_.cert_sections.size());
  if (inserted) {
    krl_.cert_sections.emplace_back();
    krl_.cert_sections.back().ca_key = std::move(ca_key);
  }
  KrlCertSection& out = krl_.cert_sections[it->second];

  for (size_t index = 0; !body.empty(); ++index) {
    uint8_t type = 0;
    Reader sub;
    const std::string sub_where = fmt::format("{}, subsection {}", where, index);
    if (!body.u8(&type) || !body.nested(&sub, body.remaining())) {
      return malformed(sub_where, "truncated");
    }
    const std::string typed_where = fmt::format("{} (type {:#04x})", sub_where, type);
    if (auto st = cert_subsection(type, sub, out, typed_where); !st) return st;
    if (!sub.finish()) return malformed(typed_where, "subsection contains unparsed data");
  }
  return {};
}

Status KrlParser::cert_subsection(uint8_t type, Reader& body, KrlCertSection& out,
                                  std::string_view where) {
  switch (type) {
    case kCertSerialList:
      while (!body.empty()) {
        uint64_t serial = 0;
        if (!body.u64(&serial)) return malformed(where, "truncated serial");
        if (serial == 0) return malformed(where, "serial 0 cannot be revoked");
        if (auto st = charge(1, where); !st) return st;
        out.serial_ranges.emplace_back(serial, serial);
      }
      return {};
    case kCertSerialRange: {
      uint64_t lo = 0, hi = 0;
      if (!body.u64(&lo) || !body.u64(&hi)) return malformed(where, "truncated range");
      if (lo == 0) return malformed(where, "serial 0 cannot be revoked");
      if (lo > hi) return malformed(where, fmt::format("serial range {}-{} is reversed", lo, hi));
      if (auto st = charge(1, where); !st) return st;
      out.serial_ranges.emplace_back(lo, hi);
      return {};
    }
    case kCertSerialBitmap:
      return serial_bitmap(body, out, where);
    case kCertKeyId:
      while (!body.empty()) {
        std::string key_id;
        if (!body.text_copy(&key_id)) return malformed(where, "truncated or invalid key id");
        if (auto st = charge(1, where); !st) return st;
        out.key_ids.insert(std::move(key_id));
      }
      return {};
    case kCertExtension:
      return extension(body, where);
    default:
      return malformed(where, "unknown certificate subsection type");
  }
}

// serial_bitmap stores each run of set bits as one range: at most 8192 ranges for the largest
// bitmap OpenSSH accepts, whatever serials it covers.
Status KrlParser::serial_bitmap(Reader& body, KrlCertSection& out, std::string_view where) {
  uint64_t offset = 0;
  Bytes bitmap;  // big-endian magnitude, minimal: bitmap[0] != 0 when non-empty
  if (!body.u64(&offset)) return malformed(where, "truncated bitmap offset");
  if (!body.mpint(&bitmap, kMaxBitmapBytes + 1) || bitmap.size() > kMaxBitmapBytes) {
    return malformed(where, "invalid or oversized bitmap");
  }
  if (bitmap.empty()) return {};
  const uint64_t nbits =
      uint64_t{bitmap.size() - 1} * 8 + static_cast<uint64_t>(std::bit_width(bitmap[0]));
  if (offset > kMaxSerial - (nbits - 1)) return malformed(where, "bitmap wraps past 2^64");
  auto bit = [&](uint64_t i) {
    return ((bitmap[bitmap.size() - 1 - static_cast<size_t>(i / 8)] >> (i % 8)) & 1) != 0;
  };
  if (offset == 0 && bit(0)) return malformed(where, "serial 0 cannot be revoked");
  for (uint64_t i = 0; i < nbits;) {
    if (!bit(i)) {
      ++i;
      continue;
    }
    const uint64_t start = i;
    while (i < nbits && bit(i)) ++i;
    if (auto st = charge(1, where); !st) return st;
    out.serial_ranges.emplace_back(offset + start, offset + (i - 1));
  }
  return {};
}

Status KrlParser::blob_section(uint8_t type, Reader& body, std::string_view where) {
  while (!body.empty()) {
    Bytes blob;
    if (!body.string(&blob, body.remaining())) return malformed(where, "truncated entry");
    if (auto st = charge(1, where); !st) return st;
    switch (type) {
      case kSectionExplicitKey: {
        Reader peek(blob);
        std::string_view name;
        if (!peek.text(&name, kMaxKeyTypeName) || name.empty()) {
          return malformed(where, "explicit key blob has no key type");
        }
        if (ends_with(name, "-cert-v01@openssh.com") || ends_with(name, "-cert-v00@openssh.com")) {
          return malformed(where, "explicit key is a certificate");
        }
        krl_.explicit_keys.emplace(blob.begin(), blob.end());
        break;
      }
      case kSectionFingerprintSha1: {
        std::array<uint8_t, 20> h{};
        if (blob.size() != h.size()) return malformed(where, "SHA1 fingerprint is not 20 bytes");
        std::copy(blob.begin(), blob.end(), h.begin());
        krl_.sha1_fingerprints.insert(h);
        break;
      }
      default: {
        std::array<uint8_t, 32> h{};
        if (blob.size() != h.size()) return malformed(where, "SHA256 fingerprint is not 32 bytes");
        std::copy(blob.begin(), blob.end(), h.begin());
        krl_.sha256_fingerprints.insert(h);
        break;
      }
    }
  }
  return {};
}

Status KrlParser::extension(Reader& body, std::string_view where) {
  std::string_view name;
  bool critical = false;
  Bytes contents;
  if (!body.text(&name) || !body.boolean(&critical) || !body.string(&contents, body.remaining())) {
    return malformed(where, "truncated extension");
  }
  if (critical) {
    return malformed(where, fmt::format("unsupported critical extension \"{}\"", printable(name)));
  }
  return {};
}

tl::unexpected<Error> bad_line(size_t line_no, std::string_view what) {
  return fail("revoked_keys_malformed",
              fmt::format("revoked keys file line {}: {}", line_no, what));
}

// parse_key_list reads OpenSSH's plain revoked-keys format into krl.explicit_keys.
Result<Krl> parse_key_list(Bytes data) {
  Krl krl;
  std::string_view text = as_text(data);
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line.remove_prefix(first);
    if (krl.explicit_keys.size() >= kMaxRevocationEntries) {
      return bad_line(line_no, fmt::format("more than {} keys", kMaxRevocationEntries));
    }
    auto parsed = parse_key_line(line);
    if (!parsed) return bad_line(line_no, parsed.error().message);
    KeyType type{};
    if (key_type_from_cert_name(parsed->type, &type)) {
      auto cert = parse_certificate(parsed->blob);
      if (!cert) return bad_line(line_no, cert.error().message);
      krl.explicit_keys.insert(std::move(cert->key.blob));
    } else {
      auto key = parse_public_key(parsed->blob);
      if (key) {
        krl.explicit_keys.insert(std::move(key->blob));
      } else if (key.error().code == "key_unsupported") {
        // Well-formed but refused for login (e.g. a short RSA key): revoking it is still valid.
        krl.explicit_keys.insert(std::move(parsed->blob));
      } else {
        return bad_line(line_no, key.error().message);
      }
    }
  }
  return krl;
}

bool starts_with_krl_magic(Bytes data) {
  Reader r(data);
  uint64_t magic = 0;
  return r.u64(&magic) && magic == kKrlMagic;
}

}  // namespace

Result<Krl> parse_krl(Bytes data) {
  return KrlParser().run(data);
}

Result<RevocationList> RevocationList::parse(Bytes data) {
  auto krl = starts_with_krl_magic(data) ? parse_krl(data) : parse_key_list(data);
  if (!krl) return tl::unexpected(krl.error());
  RevocationList list;
  list.krl_ = std::move(*krl);
  return list;
}

bool RevocationList::key_revoked(Bytes plain_key_blob) const {
  if (!krl_.explicit_keys.empty()) {
    const std::vector<uint8_t> blob(plain_key_blob.begin(), plain_key_blob.end());
    if (krl_.explicit_keys.count(blob)) return true;
  }
  if (!krl_.sha1_fingerprints.empty() && krl_.sha1_fingerprints.count(sha1(plain_key_blob))) {
    return true;
  }
  return !krl_.sha256_fingerprints.empty() &&
         krl_.sha256_fingerprints.count(sha256(plain_key_blob)) != 0;
}

bool RevocationList::cert_revoked(Bytes ca_key_blob, uint64_t serial,
                                  std::string_view key_id) const {
  for (const auto& cs : krl_.cert_sections) {
    if (!cs.ca_key.empty() &&
        !std::equal(cs.ca_key.begin(), cs.ca_key.end(), ca_key_blob.begin(), ca_key_blob.end())) {
      continue;
    }
    if (!cs.key_ids.empty() && cs.key_ids.count(std::string(key_id))) return true;
    if (serial == 0) continue;
    // First range starting after serial; the one before it is the only candidate.
    auto it = std::upper_bound(cs.serial_ranges.begin(), cs.serial_ranges.end(), serial,
                               [](uint64_t s, const auto& range) { return s < range.first; });
    if (it != cs.serial_ranges.begin() && std::prev(it)->second >= serial) return true;
  }
  return false;
}

}  // namespace touchgate::ssh
