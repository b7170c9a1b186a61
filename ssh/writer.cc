#include "ssh/writer.h"

namespace touchgate::ssh {

Writer& Writer::u8(uint8_t v) {
  buf_.push_back(v);
  return *this;
}

Writer& Writer::u32(uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) buf_.push_back(static_cast<uint8_t>(v >> shift));
  return *this;
}

Writer& Writer::u64(uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) buf_.push_back(static_cast<uint8_t>(v >> shift));
  return *this;
}

Writer& Writer::raw(std::span<const uint8_t> b) {
  buf_.insert(buf_.end(), b.begin(), b.end());
  return *this;
}

Writer& Writer::raw(std::string_view s) {
  buf_.insert(buf_.end(), s.begin(), s.end());
  return *this;
}

Writer& Writer::string(std::span<const uint8_t> b) {
  u32(static_cast<uint32_t>(b.size()));
  return raw(b);
}

Writer& Writer::string(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  return raw(s);
}

Writer& Writer::mpint(std::span<const uint8_t> magnitude) {
  size_t i = 0;
  while (i < magnitude.size() && magnitude[i] == 0) ++i;
  auto m = magnitude.subspan(i);
  bool pad = !m.empty() && (m[0] & 0x80);
  u32(static_cast<uint32_t>(m.size() + (pad ? 1 : 0)));
  if (pad) buf_.push_back(0);
  return raw(m);
}

}  // namespace touchgate::ssh
