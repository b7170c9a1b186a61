#include "cli/key_file.h"

#include <string>
#include <string_view>

#include <fmt/format.h>

#include "policy/file.h"
#include "ssh/key.h"

namespace touchgate::cli {
namespace {

constexpr size_t kMaxKeyFile = 64 * 1024;

// first_key_line: the first line of `file` that is neither blank nor a '#' comment, without its
// leading blanks; refuses a private key (never echoing it) and a file without such a line.
// `give` completes "this is a private key; give ..."; `empty` names what is missing.
Result<std::string> first_key_line(const std::filesystem::path& file, const char* unreadable_code,
                                   std::string_view give, const char* empty_code,
                                   std::string_view empty) {
  const std::string name = file.string();
  auto data = policy::read_file(file, kMaxKeyFile, unreadable_code);
  if (!data) return tl::unexpected(data.error());
  std::string_view text(reinterpret_cast<const char*>(data->data()), data->size());
  if (text.find("PRIVATE KEY-----") != std::string_view::npos) {
    return fail("key_file_private",
                fmt::format("{}: this is a private key; give {}", name, give));
  }
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    return std::string(line.substr(first));
  }
  return fail(empty_code, fmt::format("{}: no {} in the file", name, empty));
}

}  // namespace

Result<std::vector<uint8_t>> read_public_key_file(const std::filesystem::path& file) {
  const std::string name = file.string();
  auto line = first_key_line(file, "key_file_unreadable", "the public key (the .pub file)",
                             "key_file_empty", "public key");
  if (!line) return tl::unexpected(line.error());
  // Messages name the key type only once it is known to be one, so that a file that is not a
  // key file (a password, a private key in another format) is never echoed.
  const std::string_view type_name = std::string_view(*line).substr(0, line->find_first_of(" \t"));
  ssh::KeyType type;
  const bool certificate = ssh::key_type_from_cert_name(type_name, &type);
  if (!certificate && !ssh::key_type_from_name(type_name, &type)) {
    return fail(
        "key_line_malformed",
        fmt::format("{}: the first key line is not an OpenSSH public key of a known type", name));
  }
  auto key = ssh::parse_key_line(*line);
  if (!key) return fail(key.error().code, fmt::format("{}: {}", name, key.error().message));
  if (certificate) {
    return fail("key_is_certificate",
                fmt::format("{}: this is a certificate ({}); enroll the plain public key", name,
                            key->type));
  }
  return std::move(key->blob);
}

Result<ssh::Certificate> read_certificate_file(const std::filesystem::path& file) {
  const std::string name = file.string();
  auto line = first_key_line(file, "cert_file_unreadable", "the certificate (-cert.pub)",
                             "cert_file_empty", "certificate");
  if (!line) return tl::unexpected(line.error());
  ssh::KeyType type;
  if (!ssh::key_type_from_cert_name(std::string_view(*line).substr(0, line->find_first_of(" \t")),
                                    &type)) {
    return fail("cert_file_not_certificate",
                fmt::format("{}: the first key line is not an OpenSSH certificate", name));
  }
  auto key = ssh::parse_key_line(*line);
  if (!key) return fail(key.error().code, fmt::format("{}: {}", name, key.error().message));
  auto cert = ssh::parse_certificate(key->blob);
  if (!cert) return fail(cert.error().code, fmt::format("{}: {}", name, cert.error().message));
  return cert;
}

}  // namespace touchgate::cli
