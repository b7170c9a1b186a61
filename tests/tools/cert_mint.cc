// cert_mint: mints an OpenSSH user certificate with ssh::build_user_certificate, signed by a CA
// key in a PEM file (openssl genpkey, or ssh-keygen -m PEM), for the scenarios that log in to a
// real sshd with it.
//
// Usage: cert_mint [options] CA_PEM KEY_PUB OUT_CERT
//        cert_mint --print-public CA_PEM
//   --serial N            (default 1)
//   --key-id ID           (default "cert_mint")
//   --principal NAME      repeatable; at least one
//   --valid-after N       seconds since the epoch (default: now - 5)
//   --valid-before N      seconds since the epoch (default: valid-after + 65)
//   --critical NAME[=VALUE]   repeatable (e.g. force-command=/bin/echo hi)
//   --extension NAME[=VALUE]  repeatable (e.g. permit-pty)
// KEY_PUB is an OpenSSH .pub line. OUT_CERT receives the certificate line; exit status 1 with
// the refusal's code on stderr when the request is refused, 2 on usage errors.
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "ssh/cert_builder.h"
#include "ssh/key.h"
#include "tests/unit/ssh/test_signer.h"

using namespace touchgate;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: cert_mint [--serial N] [--key-id ID] [--principal NAME]... "
               "[--valid-after N] [--valid-before N] [--critical NAME[=VALUE]]... "
               "[--extension NAME[=VALUE]]... CA_PEM KEY_PUB OUT_CERT\n"
               "       cert_mint --print-public CA_PEM\n");
  return 2;
}

std::pair<std::string, std::string> name_value(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos) return {arg, ""};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--print-public") {
    auto ca = ssh::testing::TestSigner::load_pem(args[1]);
    if (!ca) {
      std::fprintf(stderr, "cert_mint: %s\n", ca.error().message.c_str());
      return 1;
    }
    std::printf("%s\n", (*ca)->public_line("cert_mint-ca").c_str());
    return 0;
  }

  ssh::CertRequest req;
  req.serial = 1;
  req.key_id = "cert_mint";
  req.valid_after = static_cast<uint64_t>(std::time(nullptr)) - 5;
  bool before_set = false;
  size_t i = 0;
  for (; i + 1 < args.size() && args[i].starts_with("--"); i += 2) {
    const std::string& opt = args[i];
    const std::string& v = args[i + 1];
    if (opt == "--serial") {
      req.serial = std::strtoull(v.c_str(), nullptr, 10);
    } else if (opt == "--key-id") {
      req.key_id = v;
    } else if (opt == "--principal") {
      req.principals.push_back(v);
    } else if (opt == "--valid-after") {
      req.valid_after = std::strtoull(v.c_str(), nullptr, 10);
    } else if (opt == "--valid-before") {
      req.valid_before = std::strtoull(v.c_str(), nullptr, 10);
      before_set = true;
    } else if (opt == "--critical") {
      req.critical_options.push_back(name_value(v));
    } else if (opt == "--extension") {
      req.extensions.push_back(name_value(v));
    } else {
      return usage();
    }
  }
  if (args.size() - i != 3) return usage();
  if (!before_set) req.valid_before = req.valid_after + 65;

  auto ca = ssh::testing::TestSigner::load_pem(args[i]);
  if (!ca) {
    std::fprintf(stderr, "cert_mint: %s\n", ca.error().message.c_str());
    return 1;
  }
  std::ifstream in(args[i + 1]);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto line = ssh::parse_key_line(text.substr(0, text.find('\n')));
  if (!line) {
    std::fprintf(stderr, "cert_mint: %s: %s\n", args[i + 1].c_str(), line.error().message.c_str());
    return 1;
  }
  req.key = line->blob;

  std::vector<uint8_t> nonce(ssh::kCertNonceSize);
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) return 1;
  auto cert = ssh::build_user_certificate(req, **ca, nonce);
  if (!cert) {
    std::fprintf(stderr, "cert_mint: %s (%s)\n", cert.error().message.c_str(),
                 cert.error().code.c_str());
    return 1;
  }
  std::ofstream out(args[i + 2], std::ios::trunc);
  out << ssh::certificate_line(*cert, req.key_id) << "\n";
  return out.good() ? 0 : 1;
}
