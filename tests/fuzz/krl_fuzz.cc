// Fuzz target: RevocationList::parse (binary KRL or revoked-keys text) and every query on the
// result. Seed corpus: corpus/krl/ (KRLs and a text list from tests/data/krl/generate.sh).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ssh/krl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace touchgate::ssh;
  const Bytes input(data, size);
  auto list = RevocationList::parse(input);
  if (!list) return 0;
  // Query with slices of the input so that matches are reachable, and with edge serials.
  const Bytes head = input.first(size / 2);
  const std::string_view id(reinterpret_cast<const char*>(data), size < 16 ? size : 16);
  for (uint64_t serial : {uint64_t{0}, uint64_t{1}, uint64_t{5}, uint64_t{3000}, ~uint64_t{0}}) {
    (void)list->cert_revoked(head, serial, id);
    (void)list->cert_revoked(Bytes(), serial, "");
  }
  (void)list->key_revoked(input);
  (void)list->key_revoked(head);
  for (const auto& cs : list->krl().cert_sections) {
    for (const auto& [lo, hi] : cs.serial_ranges) {
      if (lo == 0 || lo > hi) __builtin_trap();  // parse_krl's invariants
      (void)list->cert_revoked(cs.ca_key, lo, "");
      (void)list->cert_revoked(cs.ca_key, hi, "");
    }
    for (size_t i = 1; i < cs.serial_ranges.size(); ++i) {
      if (cs.serial_ranges[i - 1].second >= cs.serial_ranges[i].first) __builtin_trap();
    }
  }
  for (const auto& key : list->krl().explicit_keys) {
    if (!list->key_revoked(key)) __builtin_trap();
  }
  return 0;
}
