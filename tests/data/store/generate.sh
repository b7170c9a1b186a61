#!/usr/bin/env bash
# Regenerates the key store test data with the real ssh-keygen (OpenSSH). The outputs are checked
# in; tests never run this script. Only public halves are kept: the store never sees private keys.
#
#   tests/data/store/generate.sh        # from anywhere; writes next to this script
#
# Needs: ssh-keygen, and the sk-dummy software authenticator from Debian's openssh-tests package
# for the security-key (sk) keys.
set -euo pipefail
export TZ=UTC LC_ALL=C
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sk_provider="${SK_PROVIDER:-/usr/lib/openssh/regress/misc/sk-dummy/sk-dummy.so}"
cd "$here"
rm -f ./*.pub ./*.txt

keygen() {
  ssh-keygen -q -N '' -C "$1" "${@:2}" -f "$1"
  rm -f "$1"
}

# FIDO2 security keys (through the software authenticator).
keygen fido_ecdsa -t ecdsa-sk -w "$sk_provider"
keygen fido_ecdsa_2 -t ecdsa-sk -w "$sk_provider"
keygen fido_ed25519 -t ed25519-sk -w "$sk_provider"
# Keys as a PIV card holds them (plain key types).
keygen piv_ecdsa256 -t ecdsa -b 256
keygen piv_ecdsa384 -t ecdsa -b 384
keygen piv_rsa -t rsa -b 2048
keygen piv_ed25519 -t ed25519
# Refused by the store: an RSA key under 2048 bits, and a certificate.
keygen rsa1024 -t rsa -b 1024
ssh-keygen -q -N '' -C ca -t ed25519 -f ca
ssh-keygen -q -s ca -I alice -n alice -V 20200101:20990101 piv_ed25519.pub  # piv_ed25519-cert.pub
rm -f ca ca.pub

# Fingerprints as ssh-keygen prints them: "<file> <fingerprint>".
for f in *.pub; do
  printf '%s %s\n' "$f" "$(ssh-keygen -E sha256 -lf "$f" | awk '{print $2}')"
done >fingerprints.txt
