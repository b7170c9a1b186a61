#include "ssh/text.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace touchgate::ssh {

size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  if (i >= s.size()) return 0;
  const uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint8_t lo = 0x80, hi = 0xbf;  // bounds of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() - i < n || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  }
  return n;
}

namespace {

// plain_prefix is how many bytes from s[i] on are printable ASCII other than '"' and '\' (the
// bytes written as they are without a look at their neighbours), counted 16 at a time where
// SSE2 is there; it may stop short of the first special byte near the end of s.
inline size_t plain_prefix(std::string_view s, size_t i) {
  size_t k = i;
#if defined(__SSE2__)
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  const __m128i low = _mm_set1_epi8(static_cast<char>(0x20 ^ 0x80));   // unsigned < 0x20
  const __m128i high = _mm_set1_epi8(static_cast<char>(0x7e ^ 0x80));  // unsigned > 0x7e
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  while (s.size() - k >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + k));
    const __m128i u = _mm_xor_si128(v, flip);  // signed compares now order bytes unsigned
    const __m128i special =
        _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(u, low), _mm_cmpgt_epi8(u, high)),
                     _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    const int mask = _mm_movemask_epi8(special);
    if (mask != 0) return k - i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    k += 16;
  }
#endif
  return k - i;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  // Runs of bytes written as they are (printable ASCII, valid UTF-8) are appended at once; runs
  // of bytes to escape (binary output: NUL bytes become 6 characters each) go through a small
  // buffer, appended a block at a time.
  size_t run = 0, i = 0;
  while (i < s.size()) {
    i += plain_prefix(s, i);
    if (i >= s.size()) break;
    auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const size_t n = utf8_sequence_length(s, i); n != 0) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    char buf[1024];
    size_t b = 0;
    for (; i < s.size(); ++i) {
      c = static_cast<uint8_t>(s[i]);
      if (c == '"' || c == '\\') {
        buf[b++] = '\\';
        buf[b++] = static_cast<char>(c);
      } else if (c < 0x20 || c == 0x7f) {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        std::memcpy(buf + b, esc, sizeof esc);
        b += sizeof esc;
      } else if (c >= 0x80 && utf8_sequence_length(s, i) == 0) {
        std::memcpy(buf + b, "\xef\xbf\xbd", 3);  // U+FFFD for a byte that is not UTF-8
        b += 3;
      } else {
        break;  // a byte written as it is: back to the runs
      }
      if (b > sizeof buf - 6) {
        out.append(buf, b);
        b = 0;
      }
    }
    out.append(buf, b);
    run = i;
  }
  out.append(s.data() + run, i - run);
  out.push_back('"');
}

}  // namespace touchgate::ssh
