// Fuzz target: PKCS#11 URIs (trust boundary: operator configuration text). Seed corpus:
// corpus/pkcs11_uri/ (RFC 7512's examples and touchgate's own). Invariants violated abort.
#include <cstddef>
#include <cstdint>
#include <string>

#include "pkcs11/uri.h"

using namespace touchgate::pkcs11;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto uri = parse_uri(text);
  if (!uri) {
    if (uri.error().code != "pkcs11_bad_uri" || uri.error().message.empty()) __builtin_trap();
    return 0;
  }
  if (size > kMaxUri) __builtin_trap();
  if (uri->id && uri->id->size() > 255) __builtin_trap();
  if (uri->token && uri->token->size() > 32) __builtin_trap();
  // An accepted URI formats to one that parses back to the same attributes, and formatting is
  // stable from then on.
  const std::string formatted = format_uri(*uri);
  auto again = parse_uri(formatted);
  if (formatted.size() <= kMaxUri) {
    if (!again || !(*again == *uri)) __builtin_trap();
    if (format_uri(*again) != formatted) __builtin_trap();
  }
  (void)describe_uri(*uri);
  return 0;
}
