// Reading OpenSSH public key and certificate files an administrator gives the CLI.
// Trust boundary: the file comes from a user; nothing of it is echoed back but its key type.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "ssh/certificate.h"
#include "ssh/error.h"

namespace touchgate::cli {

// read_public_key_file returns the key blob of the first line of an OpenSSH public key file
// ("type base64 [comment]") that is neither blank nor a '#' comment. The blob's key material is
// not checked here (the store does that). Codes:
//   key_file_unreadable  missing, unreadable, not a regular file, or over 64 KiB
//   key_file_private     the file holds a private key (its content is never printed)
//   key_file_empty       no key line
//   key_line_malformed   the first key line does not parse
//   key_is_certificate   the line is a certificate, not a plain public key
Result<std::vector<uint8_t>> read_public_key_file(const std::filesystem::path& file);

// read_certificate_file parses the first key line of an OpenSSH certificate file
// (NAME-cert.pub), at most 64 KiB. Codes: cert_file_unreadable, key_file_private,
// cert_file_empty, cert_file_not_certificate, and those of ssh::parse_key_line and
// ssh::parse_certificate.
Result<ssh::Certificate> read_certificate_file(const std::filesystem::path& file);

}  // namespace touchgate::cli
