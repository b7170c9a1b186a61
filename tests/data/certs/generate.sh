#!/usr/bin/env bash
# Regenerates the certificate test data with the real ssh-keygen (OpenSSH). The outputs are checked
# in; tests never run this script. Validity periods are absolute (UTC) so tests can pass `now`.
#
#   tests/data/certs/generate.sh        # from anywhere; writes next to this script
#
# Needs: ssh-keygen, and the sk-dummy software authenticator from Debian's openssh-tests package
# for the security-key (sk) user keys.
set -euo pipefail
export TZ=UTC LC_ALL=C
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus="$here/../../fuzz/corpus/certificate"
sk_provider="${SK_PROVIDER:-/usr/lib/openssh/regress/misc/sk-dummy/sk-dummy.so}"
cd "$here"
rm -f ./*.pub ./ca_* ./user_* ./*.krl ./*.txt ./*.fp
mkdir -p "$corpus"
rm -f "$corpus"/*.cert

keygen() { ssh-keygen -q -N '' -C "$1" "${@:2}" -f "$1"; }

# Certificate authorities, one per key type.
keygen ca_ed25519 -t ed25519
keygen ca_ecdsa256 -t ecdsa -b 256
keygen ca_ecdsa384 -t ecdsa -b 384
keygen ca_ecdsa521 -t ecdsa -b 521
keygen ca_rsa -t rsa -b 3072
keygen ca_other -t ed25519          # a CA nobody trusts

# User keys, one per type (sk keys through the software authenticator).
keygen user_ed25519 -t ed25519
keygen user_ecdsa256 -t ecdsa -b 256
keygen user_ecdsa384 -t ecdsa -b 384
keygen user_ecdsa521 -t ecdsa -b 521
keygen user_rsa -t rsa -b 2048
keygen user_ecdsa_sk -t ecdsa-sk -w "$sk_provider"
keygen user_ed25519_sk -t ed25519-sk -w "$sk_provider"
keygen user_rsa1024 -t rsa -b 1024  # too small for touchgate

# sign NAME CA USERKEY [ssh-keygen options...] -> NAME-cert.pub
sign() {
  local name="$1" ca="$2" key="$3"
  shift 3
  cp "$key.pub" "$name.pub"
  ssh-keygen -q -s "$ca" "$@" "$name.pub"
  rm -f "$name.pub"
}
valid=(-V 20200101:20990101)

# Each user key type, certified by the ed25519 CA.
for t in ed25519 ecdsa256 ecdsa384 ecdsa521 rsa ecdsa_sk ed25519_sk; do
  sign "cert_${t}" ca_ed25519 "user_${t}" -I "alice-${t}" -z 100 -n alice,bob "${valid[@]}"
done
# The ed25519 user key certified by each CA type and signature algorithm.
sign cert_by_ecdsa256 ca_ecdsa256 user_ed25519 -I by-ecdsa256 -z 11 -n alice "${valid[@]}"
sign cert_by_ecdsa384 ca_ecdsa384 user_ed25519 -I by-ecdsa384 -z 12 -n alice "${valid[@]}"
sign cert_by_ecdsa521 ca_ecdsa521 user_ed25519 -I by-ecdsa521 -z 13 -n alice "${valid[@]}"
sign cert_by_rsa_sha256 ca_rsa user_ed25519 -t rsa-sha2-256 -I by-rsa-256 -z 14 -n alice "${valid[@]}"
sign cert_by_rsa_sha512 ca_rsa user_ed25519 -t rsa-sha2-512 -I by-rsa-512 -z 15 -n alice "${valid[@]}"
sign cert_by_rsa_sha1 ca_rsa user_ed25519 -t ssh-rsa -I by-rsa-sha1 -z 16 -n alice "${valid[@]}"
sign cert_by_other ca_other user_ed25519 -I by-other -z 17 -n alice "${valid[@]}"
# Certified rsa user key signed by an rsa CA (both sides RSA).
sign cert_rsa_by_rsa ca_rsa user_rsa -t rsa-sha2-512 -I rsa-by-rsa -z 18 -n alice "${valid[@]}"

# Options, principals and validity variants (ed25519 CA, ed25519 user unless noted).
sign cert_host ca_ed25519 user_ed25519 -h -I host -z 20 -n host.example.com "${valid[@]}"
sign cert_source_address ca_ed25519 user_ed25519 -I src -z 21 -n alice "${valid[@]}" \
  -O source-address=192.168.0.0/16,10.0.0.1,2001:db8::/32
sign cert_bad_source_address ca_ed25519 user_ed25519 -I badsrc -z 22 -n alice "${valid[@]}" \
  -O critical:source-address=10.1.2.3/8
sign cert_force_command ca_ed25519 user_ed25519 -I force -z 23 -n alice "${valid[@]}" \
  -O force-command="/usr/bin/uptime"
sign cert_verify_required ca_ed25519 user_ecdsa_sk -I verify -z 24 -n alice "${valid[@]}" \
  -O verify-required
sign cert_no_touch ca_ed25519 user_ed25519_sk -I notouch -z 25 -n alice "${valid[@]}" \
  -O no-touch-required
sign cert_unknown_critical ca_ed25519 user_ed25519 -I unknown-crit -z 26 -n alice "${valid[@]}" \
  -O critical:unknown-option@example.com=yes
sign cert_unknown_extension ca_ed25519 user_ed25519 -I unknown-ext -z 27 -n alice "${valid[@]}" \
  -O extension:custom@example.com=value
sign cert_clear ca_ed25519 user_ed25519 -I clear -z 28 -n alice "${valid[@]}" -O clear -O permit-pty
sign cert_no_principals ca_ed25519 user_ed25519 -I noprincipals -z 29 "${valid[@]}"
sign cert_24h ca_ed25519 user_ed25519 -I day -z 30 -n alice -V 20300101:20300102
sign cert_forever ca_ed25519 user_ed25519 -I forever -z 31 -n alice -V always:forever
sign cert_expired ca_ed25519 user_ed25519 -I expired -z 32 -n alice -V 20000101:20010101
sign cert_not_yet_valid ca_ed25519 user_ed25519 -I future -z 33 -n alice -V 20980101:20990101
sign cert_revoked_serial ca_ed25519 user_ed25519 -I revoked-serial -z 7 -n alice "${valid[@]}"
sign cert_revoked_id ca_ed25519 user_ed25519 -I revoked-id -z 34 -n alice "${valid[@]}"
sign cert_revoked_key ca_ed25519 user_ecdsa256 -I revoked-key -z 35 -n alice "${valid[@]}"
sign cert_rsa1024 ca_ed25519 user_rsa1024 -I small-rsa -z 36 -n alice "${valid[@]}"

# Revocation lists made by ssh-keygen -k.
printf 'serial: 7\n' >krl_serial.spec
ssh-keygen -q -k -f revoked_serial.krl -s ca_ed25519.pub krl_serial.spec
printf 'id: revoked-id\n' >krl_id.spec
ssh-keygen -q -k -f revoked_id.krl -s ca_ed25519.pub krl_id.spec
ssh-keygen -q -k -f revoked_key.krl user_ecdsa256.pub
ssh-keygen -q -k -f revoked_ca.krl ca_ed25519.pub
rm -f krl_serial.spec krl_id.spec

# Fingerprints as ssh-keygen prints them: "<file> <fingerprint>" (certs print the certified key's).
for f in *.pub; do
  printf '%s %s\n' "$f" "$(ssh-keygen -E sha256 -lf "$f" | awk '{print $2}')"
done >fingerprints.txt

# Fuzz seeds: raw certificate blobs of several types.
for f in cert_ed25519 cert_ecdsa256 cert_ecdsa384 cert_ecdsa521 cert_rsa cert_ecdsa_sk \
  cert_ed25519_sk cert_by_rsa_sha512 cert_by_ecdsa521 cert_source_address cert_force_command \
  cert_unknown_extension cert_no_touch; do
  awk '{print $2}' "$f-cert.pub" | base64 -d >"$corpus/$f.cert"
done
