// Trust boundary: every byte from a peer is read here.
#include "ssh/reader.h"

#include <cstring>

namespace touchgate::ssh {

bool Reader::u8(uint8_t* out) noexcept {
  if (remaining() < 1) return false;
  *out = data_[pos_++];
  return true;
}

bool Reader::u32(uint32_t* out) noexcept {
  if (remaining() < 4) return false;
  const uint8_t* p = data_.data() + pos_;
  *out = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  pos_ += 4;
  return true;
}

bool Reader::u64(uint64_t* out) noexcept {
  if (remaining() < 8) return false;
  const uint8_t* p = data_.data() + pos_;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  *out = v;
  pos_ += 8;
  return true;
}

bool Reader::boolean(bool* out) noexcept {
  uint8_t b = 0;
  if (!u8(&b)) return false;
  *out = b != 0;
  return true;
}

bool Reader::bytes(size_t n, Bytes* out) noexcept {
  if (remaining() < n) return false;
  *out = data_.subspan(pos_, n);
  pos_ += n;
  return true;
}

bool Reader::skip(size_t n) noexcept {
  if (remaining() < n) return false;
  pos_ += n;
  return true;
}

bool Reader::string(Bytes* out, size_t max) noexcept {
  Reader probe = *this;
  uint32_t len = 0;
  if (!probe.u32(&len) || len > max || probe.remaining() < len) return false;
  *out = probe.data_.subspan(probe.pos_, len);
  probe.pos_ += len;
  *this = probe;
  return true;
}

bool Reader::text(std::string_view* out, size_t max) noexcept {
  Reader probe = *this;
  Bytes b;
  if (!probe.string(&b, max)) return false;
  if (std::memchr(b.data(), 0, b.size()) != nullptr) return false;
  *out = as_text(b);
  *this = probe;
  return true;
}

bool Reader::text_copy(std::string* out, size_t max) {
  std::string_view v;
  if (!text(&v, max)) return false;
  out->assign(v);
  return true;
}

bool Reader::nested(Reader* out, size_t max) noexcept {
  Bytes b;
  if (!string(&b, max)) return false;
  *out = Reader(b);
  return true;
}

bool Reader::mpint(Bytes* out, size_t max) noexcept {
  Reader probe = *this;
  Bytes b;
  if (!probe.string(&b, max)) return false;
  if (!b.empty()) {
    if (b[0] & 0x80) return false;                          // negative
    if (b[0] == 0 && (b.size() == 1 || !(b[1] & 0x80))) {  // non-minimal leading zero
      return false;
    }
    if (b[0] == 0) b = b.subspan(1);
  }
  *out = b;
  *this = probe;
  return true;
}

}  // namespace touchgate::ssh
