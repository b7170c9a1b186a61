// Trust boundary: parses SSHSIG proofs, stored ones (audit) and ones a peer hands in.
#include "ssh/sshsig.h"

#include <string>

#include "ssh/digest.h"
#include "ssh/writer.h"

namespace touchgate::ssh {
namespace {

constexpr std::string_view kMagic = "SSHSIG";
constexpr uint32_t kVersion = 1;
constexpr std::string_view kBegin = "-----BEGIN SSH SIGNATURE-----";
constexpr std::string_view kEnd = "-----END SSH SIGNATURE-----";
constexpr size_t kArmorWidth = 70;  // ssh-keygen's line width (sshbuf_dtob64 with wrap)

std::string_view hash_name(SshsigHash hash) {
  return hash == SshsigHash::kSha256 ? "sha256" : "sha512";
}

std::vector<uint8_t> hash_message(SshsigHash hash, Bytes message) {
  if (hash == SshsigHash::kSha256) {
    auto h = sha256(message);
    return {h.begin(), h.end()};
  }
  auto h = sha512(message);
  return {h.begin(), h.end()};
}

tl::unexpected<Error> malformed(const std::string& message) {
  return fail("sshsig_malformed", "SSH signature " + message);
}

// next_line returns the text up to the next '\n' (without it, and without a '\r' before it) and
// advances text past it; the last line may lack its '\n'.
std::string_view next_line(std::string_view* text) {
  const size_t nl = text->find('\n');
  std::string_view line = text->substr(0, nl);
  text->remove_prefix(nl == std::string_view::npos ? text->size() : nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

std::vector<uint8_t> sshsig_signed_data(std::string_view ns, SshsigHash hash, Bytes message) {
  return Writer()
      .raw(kMagic)
      .string(ns)
      .string(std::string_view())
      .string(hash_name(hash))
      .string(hash_message(hash, message))
      .take();
}

std::vector<uint8_t> encode_sshsig(Bytes public_key_blob, std::string_view ns, SshsigHash hash,
                                   Bytes signature_blob) {
  return Writer()
      .raw(kMagic)
      .u32(kVersion)
      .string(public_key_blob)
      .string(ns)
      .string(std::string_view())
      .string(hash_name(hash))
      .string(signature_blob)
      .take();
}

std::string armor_sshsig(Bytes blob) {
  const std::string b64 = base64_encode(blob);
  std::string out;
  out.reserve(kBegin.size() + kEnd.size() + b64.size() + b64.size() / kArmorWidth + 4);
  out.append(kBegin).push_back('\n');
  for (size_t i = 0; i < b64.size(); i += kArmorWidth) {
    out.append(b64, i, kArmorWidth).push_back('\n');
  }
  out.append(kEnd).push_back('\n');
  return out;
}

Result<Sshsig> parse_sshsig(Bytes blob) {
  Reader r(blob);
  Bytes magic;
  uint32_t version = 0;
  if (!r.bytes(kMagic.size(), &magic) || as_text(magic) != kMagic) {
    return malformed("does not start with SSHSIG");
  }
  if (!r.u32(&version)) return malformed("is truncated");
  if (version != kVersion) return malformed("has version " + std::to_string(version) + ", not 1");

  Sshsig out;
  Bytes key;
  Bytes reserved;
  std::string_view hash;
  Bytes signature;
  if (!r.string(&key, kMaxSshsigKey) || !r.text_copy(&out.ns, kMaxSshsigNamespace) ||
      !r.string(&reserved, kMaxSshsigKey) || !r.text(&hash, 64) ||
      !r.string(&signature, kMaxSshsigSignature)) {
    return malformed("is truncated or has an oversized field");
  }
  if (!r.finish()) return malformed("has trailing bytes");
  if (key.empty()) return malformed("has no public key");
  if (out.ns.empty()) return malformed("has an empty namespace");
  if (!reserved.empty()) return malformed("has a non-empty reserved field");
  if (hash == "sha256") {
    out.hash = SshsigHash::kSha256;
  } else if (hash == "sha512") {
    out.hash = SshsigHash::kSha512;
  } else {
    return malformed("uses an unsupported hash algorithm");
  }
  if (signature.empty()) return malformed("has no signature");
  out.public_key.assign(key.begin(), key.end());
  out.signature.assign(signature.begin(), signature.end());
  return out;
}

Result<std::vector<uint8_t>> dearmor_sshsig(std::string_view text) {
  if (text.size() > kMaxSshsigArmor) return malformed("text is too long");
  if (next_line(&text) != kBegin) return malformed("text does not start with the BEGIN line");
  std::string b64;
  bool ended = false;
  while (!text.empty()) {
    const std::string_view line = next_line(&text);
    if (line == kEnd) {
      ended = true;
      break;
    }
    b64.append(line);
  }
  if (!ended) return malformed("text has no END line");
  while (!text.empty()) {
    if (!next_line(&text).empty()) return malformed("text has data after the END line");
  }
  if (b64.empty()) return malformed("text holds no signature");
  auto blob = base64_decode(b64);
  if (!blob) return malformed("text holds invalid base64");
  return std::move(*blob);
}

}  // namespace touchgate::ssh
