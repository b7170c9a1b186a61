// Writer: builds SSH wire encodings (RFC 4251) into an owned byte vector.
#pragma once

#include <cstdint>
#include <utility>
#include <span>
#include <string_view>
#include <vector>

namespace touchgate::ssh {

class Writer {
 public:
  Writer& u8(uint8_t v);
  Writer& u32(uint32_t v);
  Writer& u64(uint64_t v);
  Writer& boolean(bool v) { return u8(v ? 1 : 0); }
  Writer& raw(std::span<const uint8_t> b);
  Writer& raw(std::string_view s);
  Writer& string(std::span<const uint8_t> b);
  Writer& string(std::string_view s);
  // mpint writes a non-negative big-endian magnitude (leading zeros stripped, a zero byte added
  // when the top bit is set).
  Writer& mpint(std::span<const uint8_t> magnitude);

  const std::vector<uint8_t>& bytes() const { return buf_; }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace touchgate::ssh
