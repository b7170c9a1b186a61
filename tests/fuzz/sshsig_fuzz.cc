// Fuzz target: SSHSIG blobs and their armoured text (trust boundary: proofs read back from storage
// or handed in by a peer). Seed corpus: corpus/sshsig/ (ssh-keygen -Y sign output, armoured and
// binary, from tests/data/touch/generate.sh). Invariants violated abort.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ssh/key.h"
#include "ssh/signature.h"
#include "ssh/sk_signature.h"
#include "ssh/sshsig.h"

namespace {

using namespace touchgate::ssh;

void check_blob(Bytes blob) {
  auto sig = parse_sshsig(blob);
  if (!sig) return;
  if (sig->ns.empty() || sig->public_key.empty() || sig->signature.empty()) __builtin_trap();
  // An accepted blob is canonical, and its armour reads back to it.
  const auto again = encode_sshsig(sig->public_key, sig->ns, sig->hash, sig->signature);
  if (!std::equal(again.begin(), again.end(), blob.begin(), blob.end())) __builtin_trap();
  const std::string text = armor_sshsig(blob);
  auto back = dearmor_sshsig(text);
  if (text.size() <= kMaxSshsigArmor && (!back || *back != again)) __builtin_trap();

  (void)sshsig_signed_data(sig->ns, sig->hash, blob);
  if (auto key = parse_public_key(sig->public_key)) {
    if (is_security_key(key->type)) {
      (void)parse_sk_signature(key->type, sig->signature);
    } else {
      (void)signature_algorithm(sig->signature);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes input(data, size);
  check_blob(input);
  if (auto blob = dearmor_sshsig(as_text(input))) {
    if (blob->empty()) __builtin_trap();
    check_blob(*blob);
    // Any accepted armour re-armours to text that reads back the same (within the text cap:
    // narrower lines than the input's may make it longer).
    const std::string text = armor_sshsig(*blob);
    auto back = dearmor_sshsig(text);
    if (text.size() <= kMaxSshsigArmor && (!back || *back != *blob)) __builtin_trap();
  }
  return 0;
}
