#include "cli/key_file.h"

#include <string>
#include <string_view>

#include <fmt/format.h>

#include "policy/file.h"
#include "ssh/key.h"

namespace touchgate::cli {
namespace {

constexpr size_t kMaxKeyFile = 64 * 1024;

}  // namespace

Result<std::vector<uint8_t>> read_public_key_file(const std::filesystem::path& file) {
  const std::string name = file.string();
  auto data = policy::read_file(file, kMaxKeyFile, "key_file_unreadable");
  if (!data) return tl::unexpected(data.error());
  std::string_view text(reinterpret_cast<const char*>(data->data()), data->size());
  if (text.find("PRIVATE KEY-----") != std::string_view::npos) {
    return fail(
        "key_file_private",
        fmt::format("{}: this is a private key; give the public key (the .pub file)", name));
  }
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    // Messages name the key type only once it is known to be one, so that a file that is not a
    // key file (a password, a private key in another format) is never echoed.
    line.remove_prefix(first);
    const std::string_view type_name = line.substr(0, line.find_first_of(" \t"));
    ssh::KeyType type;
    const bool certificate = ssh::key_type_from_cert_name(type_name, &type);
    if (!certificate && !ssh::key_type_from_name(type_name, &type)) {
      return fail(
          "key_line_malformed",
          fmt::format("{}: the first key line is not an OpenSSH public key of a known type", name));
    }
    auto key = ssh::parse_key_line(line);
    if (!key) return fail(key.error().code, fmt::format("{}: {}", name, key.error().message));
    if (certificate) {
      return fail("key_is_certificate",
                  fmt::format("{}: this is a certificate ({}); enroll the plain public key", name,
                              key->type));
    }
    return std::move(key->blob);
  }
  return fail("key_file_empty", fmt::format("{}: no public key in the file", name));
}

}  // namespace touchgate::cli
