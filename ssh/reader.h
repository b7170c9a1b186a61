// Reader: the one way touchgate reads untrusted bytes (trust boundary: everything a peer sends).
//
// A Reader is a cursor over a borrowed span. Every getter checks the remaining length first and
// returns false without consuming anything when the input is too short or violates a cap; on
// success it advances. Strings are SSH `string`s (uint32 big-endian length + bytes). Nested
// structures are read through sub-readers so that their own `finish()` rejects trailing bytes.
// The Reader never allocates and never throws. The caller keeps the underlying bytes alive for as
// long as the Reader and every span it returned are used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace touchgate::ssh {

using Bytes = std::span<const uint8_t>;

// Largest string any touchgate parser accepts unless a caller asks for less (1 MiB).
inline constexpr size_t kMaxString = 1u << 20;

class Reader {
 public:
  Reader() = default;
  explicit Reader(Bytes data) noexcept : data_(data) {}

  [[nodiscard]] bool u8(uint8_t* out) noexcept;
  [[nodiscard]] bool u32(uint32_t* out) noexcept;
  [[nodiscard]] bool u64(uint64_t* out) noexcept;
  // boolean reads one byte; any non-zero value is true (RFC 4251).
  [[nodiscard]] bool boolean(bool* out) noexcept;
  // bytes reads exactly n raw bytes.
  [[nodiscard]] bool bytes(size_t n, Bytes* out) noexcept;
  // string reads an SSH string whose length is at most max.
  [[nodiscard]] bool string(Bytes* out, size_t max = kMaxString) noexcept;
  // text reads an SSH string as text: at most max bytes and no NUL byte inside.
  [[nodiscard]] bool text(std::string_view* out, size_t max = kMaxString) noexcept;
  // text_copy is text() into an owned std::string.
  [[nodiscard]] bool text_copy(std::string* out, size_t max = kMaxString);
  // nested reads an SSH string and returns a Reader over its contents.
  [[nodiscard]] bool nested(Reader* out, size_t max = kMaxString) noexcept;
  // mpint reads an SSH mpint that must be non-negative and minimally encoded; out receives the
  // magnitude without the optional leading zero byte (empty for zero).
  [[nodiscard]] bool mpint(Bytes* out, size_t max = 16384 / 8 + 1) noexcept;
  // skip drops n bytes.
  [[nodiscard]] bool skip(size_t n) noexcept;

  // finish is true when every byte was consumed: the check for "no trailing data".
  [[nodiscard]] bool finish() const noexcept { return pos_ == data_.size(); }
  bool empty() const noexcept { return pos_ == data_.size(); }
  size_t remaining() const noexcept { return data_.size() - pos_; }
  size_t offset() const noexcept { return pos_; }
  Bytes rest() const noexcept { return data_.subspan(pos_); }
  // consumed returns the bytes read so far (from the start of this reader).
  Bytes consumed() const noexcept { return data_.first(pos_); }

 private:
  Bytes data_;
  size_t pos_ = 0;
};

inline Bytes as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_text(Bytes b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace touchgate::ssh
