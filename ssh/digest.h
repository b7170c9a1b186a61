// Hashes and base64 as OpenSSH prints them (OpenSSL underneath).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace touchgate::ssh {

std::array<uint8_t, 32> sha256(std::span<const uint8_t> data);
std::array<uint8_t, 64> sha512(std::span<const uint8_t> data);
std::array<uint8_t, 20> sha1(std::span<const uint8_t> data);

// base64_encode is standard base64 with padding; base64_encode_unpadded drops the '='.
std::string base64_encode(std::span<const uint8_t> data);
std::string base64_encode_unpadded(std::span<const uint8_t> data);
// base64_decode accepts standard base64, padded or not, without whitespace; nullopt on any
// invalid character or length.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

// fingerprint_sha256 is OpenSSH's "SHA256:<unpadded base64>" of a public key blob.
std::string fingerprint_sha256(std::span<const uint8_t> key_blob);

// constant_time_equal compares two byte strings without data-dependent early exit.
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace touchgate::ssh
