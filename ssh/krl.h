// OpenSSH key revocation lists (PROTOCOL.krl) and plain revoked-keys files.
// Trust boundary: the file is admin-supplied but parsed as untrusted bytes (it may come from a
// distribution pipeline); any malformation refuses the whole list.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ssh/error.h"
#include "ssh/reader.h"

namespace touchgate::ssh {

// Revocations of certificates issued by one CA (or by any CA when ca_key is empty).
struct KrlCertSection {
  std::vector<uint8_t> ca_key;                               // CA key blob; empty = any CA
  std::vector<std::pair<uint64_t, uint64_t>> serial_ranges;  // inclusive [lo, hi], merged & sorted
  std::set<std::string> key_ids;
};

// Orders byte strings by length, then content. (std::less on vectors trips a false g++ 12
// -Wstringop-overread at -O3.)
struct BlobLess {
  bool operator()(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) const {
    if (a.size() != b.size()) return a.size() < b.size();
    return a.empty() ? false : std::memcmp(a.data(), b.data(), a.size()) < 0;
  }
};

struct Krl {
  uint64_t version = 0;
  uint64_t generated_date = 0;
  uint64_t flags = 0;
  std::string comment;
  std::vector<KrlCertSection> cert_sections;
  std::set<std::vector<uint8_t>, BlobLess> explicit_keys;  // plain key blobs
  std::set<std::array<uint8_t, 20>> sha1_fingerprints;    // SHA1 of plain key blobs
  std::set<std::array<uint8_t, 32>> sha256_fingerprints;  // SHA256 of plain key blobs
};

// The 8 bytes every binary KRL starts with ("SSHKRL\n\0").
inline constexpr uint64_t kKrlMagic = 0x5353484B524C0A00;
// Most revocation entries (serials, ranges, bitmap runs, key ids, keys, fingerprints, lines) one
// list may hold; a list over the cap is refused rather than truncated.
inline constexpr size_t kMaxRevocationEntries = 1u << 20;

// parse_krl parses a binary KRL: magic, format version 1, every section type (1 certificates with
// subsections 0x20 serial list, 0x21 serial range, 0x22 serial bitmap, 0x23 key ids, 0x39
// extension; 2 explicit keys; 3 SHA1; 5 SHA256; 255 extension). Critical extensions (non-critical
// ones are skipped), unknown section/subsection types, serial ranges with lo > hi, zero serials
// (in lists, ranges and bitmaps), bitmaps that wrap past 2^64, signature sections (type 4,
// obsolete), certificate blobs in explicit-key sections, fingerprints of the wrong length, a
// non-empty CA key that parse_public_key refuses, more than kMaxRevocationEntries entries and
// trailing bytes in any section or subsection are refused. Certificate sections naming the same
// CA (or both "any CA") are merged into one KrlCertSection; serials are stored as ranges, never
// expanded per serial. Explicit key blobs are kept as bytes (not parsed), as OpenSSH does, so a
// KRL may revoke key types touchgate does not support. Code "krl_malformed".
Result<Krl> parse_krl(Bytes data);

// What can be revoked: a revocation list built from a KRL or a plain revoked-keys file.
class RevocationList {
 public:
  // parse auto-detects a binary KRL (by magic) or a text file of OpenSSH public keys, one per line
  // ('#' comments and blank lines skipped, leading blanks and a trailing CR ignored; certificates
  // on a line revoke their CA-less key). Text-file keys go to krl().explicit_keys. Each line must
  // pass parse_key_line, then parse_certificate (certificates) or parse_public_key (plain keys;
  // a well-formed key it refuses only as "key_unsupported", e.g. short RSA, is kept as given). A
  // malformed line or section refuses the whole file (fail closed); a text-file error message names
  // the 1-based line number. Codes "krl_malformed", "revoked_keys_malformed".
  static Result<RevocationList> parse(Bytes data);
  static RevocationList empty() { return RevocationList(); }

  // key_revoked checks a plain key blob against explicit keys, SHA1 and SHA256 fingerprints.
  bool key_revoked(Bytes plain_key_blob) const;
  // cert_revoked checks a certificate identity (its CA key blob, serial, key id) against the
  // certificate sections, both CA-specific and any-CA ones. Serial 0 is never revoked by serial
  // (OpenSSH: it means "no serial"), only by key id. It does not check the CA key or the certified
  // key themselves: callers also ask key_revoked for both.
  bool cert_revoked(Bytes ca_key_blob, uint64_t serial, std::string_view key_id) const;

  const Krl& krl() const { return krl_; }

 private:
  Krl krl_;
};

}  // namespace touchgate::ssh
