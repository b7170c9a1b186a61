// Microbenchmark: the gateway's CPU for the parts of a touch that do not depend on the network —
// building the challenge's SSHSIG signed data, verifying the agent's signature (fido::verify_touch)
// and the store's counter compare-and-set (store::Store::record_touch, SQLite, synchronous=FULL).
// Usage: bench/touch_verify [DATA_DIR] (default: tests/data/touch of the source tree).
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fido/touch.h"
#include "ssh/key.h"
#include "ssh/sshsig.h"
#include "store/store.h"

namespace {

using namespace touchgate;

std::string dir;

std::string read_text(const std::string& name) {
  std::ifstream in(dir + "/" + name, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "touch_verify: cannot read %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// verify_case times n verifications of the ssh-keygen signature `name`.sig by `name`.pub.
void verify_case(const std::string& name, fido::TouchKind kind, int n) {
  auto line = ssh::parse_key_line(read_text(name + ".pub"));
  auto key = line ? ssh::parse_public_key(line->blob) : tl::unexpected(line.error());
  auto armored = ssh::dearmor_sshsig(read_text(name + ".sig"));
  auto sig = armored ? ssh::parse_sshsig(*armored) : tl::unexpected(armored.error());
  if (!key || !sig) {
    std::fprintf(stderr, "touch_verify: %s: unreadable test data\n", name.c_str());
    std::exit(1);
  }
  std::string message = read_text("message.txt");
  double t0 = cpu_now();
  for (int i = 0; i < n; ++i) {
    auto data = ssh::sshsig_signed_data(sig->ns, sig->hash, ssh::as_bytes(message));
    auto touch = fido::verify_touch(*key, kind, sig->signature, data, {});
    if (!touch) {
      std::fprintf(stderr, "touch_verify: %s: %s\n", name.c_str(), touch.error().message.c_str());
      std::exit(1);
    }
  }
  double us = (cpu_now() - t0) / n * 1e6;
  std::printf("  %-34s %8.1f us per touch\n", std::string(key->type_name()).c_str(), us);
}

void store_case(int n) {
  std::string tmp = std::filesystem::temp_directory_path() / ("touch_verify-" + std::to_string(getpid()));
  std::filesystem::create_directories(tmp);
  auto st = store::Store::open(tmp + "/touchgate.db");
  auto line = ssh::parse_key_line(read_text("sk_ecdsa.pub"));
  if (!st || !line) {
    std::fprintf(stderr, "touch_verify: cannot open a store in %s\n", tmp.c_str());
    std::exit(1);
  }
  auto key = (*st)->add_key({"alice", line->blob, store::KeyKind::kFido2, "bench", false}, 1);
  if (!key) {
    std::fprintf(stderr, "touch_verify: %s\n", key.error().message.c_str());
    std::exit(1);
  }
  double t0 = cpu_now();
  for (int i = 1; i <= n; ++i) {
    auto keys = (*st)->list_keys("alice");
    auto r = (*st)->record_touch(key->fingerprint, store::KeyKind::kFido2, static_cast<uint32_t>(i), i);
    if (!keys || !r || *r != store::TouchOutcome::kAccepted) {
      std::fprintf(stderr, "touch_verify: store round %d failed\n", i);
      std::exit(1);
    }
  }
  double us = (cpu_now() - t0) / n * 1e6;
  std::printf("  %-34s %8.1f us per touch (CPU; fsync wait not counted)\n",
              "store: list_keys + record_touch", us);
  std::filesystem::remove_all(tmp);
}

}  // namespace

int main(int argc, char** argv) {
  dir = argc > 1 ? argv[1] : TOUCHGATE_TOUCH_DATA;
  const int n = 2000;
  std::printf("gateway CPU per touch, excluding the agent channel (mean of %d)\n", n);
  verify_case("sk_ecdsa", fido::TouchKind::kFido2, n);
  verify_case("sk_ed25519", fido::TouchKind::kFido2, n);
  verify_case("ecdsa256", fido::TouchKind::kPiv, n);
  verify_case("ecdsa384", fido::TouchKind::kPiv, n);
  verify_case("ed25519", fido::TouchKind::kPiv, n);
  verify_case("rsa", fido::TouchKind::kPiv, n);
  store_case(200);
  return 0;
}
