#!/bin/sh
# Regenerates the KRL test data with the real ssh-keygen. Outputs are checked in; run this only
# to change them (then re-run the unit tests and copy the KRLs to tests/fuzz/corpus/krl/).
#
#   ca_ed25519, ca_ecdsa        CAs (ca_ecdsa's key is itself revoked in revoke_ca.krl)
#   user_*                      user keys; user_*-cert.pub certificates issued by the CAs
#   *.krl                       KRLs built with ssh-keygen -k (see each step below)
#   revoked_keys.txt            plain OpenSSH revoked-keys file (keys, one certificate and a
#                               1024-bit RSA key that touchgate refuses for login)
set -eu
cd "$(dirname "$0")"
rm -f ./*.krl ./*.pub ./*.spec ca_* user_* revoked_keys.txt

key() {  # key <file> <type> [bits]
  if [ -n "${3:-}" ]; then
    ssh-keygen -q -t "$2" -b "$3" -N '' -C "$1" -f "$1"
  else
    ssh-keygen -q -t "$2" -N '' -C "$1" -f "$1"
  fi
}
cert() {  # cert <ca> <user key> <key id> <serial>
  ssh-keygen -q -s "$1" -I "$3" -n alice -z "$4" -V always:forever "$2.pub"
}

key ca_ed25519 ed25519
key ca_ecdsa ecdsa 256
key user_ed25519_a ed25519
key user_ed25519_b ed25519
key user_ecdsa ecdsa 384
key user_rsa rsa 3072
key user_rsa_short rsa 1024
key user_plain_sha1 ed25519
key user_plain_sha256 ecdsa 256
key user_plain_key ed25519
key user_plain_file ed25519
key user_ok ed25519

# Certificates issued by ca_ed25519 (key id, serial).
cert ca_ed25519 user_ed25519_a alice-laptop 5
cert ca_ed25519 user_ed25519_b bob-desktop 150
cert ca_ed25519 user_ecdsa carol-revoked-id 9000
cert ca_ed25519 user_rsa dave-rsa 42
cert ca_ed25519 user_ok erin-ok 7
# Certificates issued by ca_ecdsa (whole CA revoked in revoke_ca.krl).
cp user_ok.pub user_ok_ecdsa_ca.pub
cert ca_ecdsa user_ok_ecdsa_ca frank-other-ca 5

# serials.krl: list, range and key id revocations scoped to ca_ed25519; plain keys by key/sha1/sha256.
cat > serials.spec <<SPEC
# comments and blank lines are allowed

serial: 5
serial: 100-200
serial: 1000
id: carol-revoked-id
key: $(cat user_plain_key.pub)
sha1: $(cat user_plain_sha1.pub)
sha256: $(cat user_plain_sha256.pub)
SPEC
ssh-keygen -q -k -f serials.krl -s ca_ed25519.pub -z 1 serials.spec

# bitmap.krl: a dense set of nearby serials (every third serial from 3000 to 3300), which
# ssh-keygen encodes as a serial bitmap subsection.
: > bitmap.spec
i=3000
while [ "$i" -le 3300 ]; do
  echo "serial: $i" >> bitmap.spec
  i=$((i + 3))
done
ssh-keygen -q -k -f bitmap.krl -s ca_ed25519.pub -z 2 bitmap.spec

# anyca.krl: key ids revoked under any CA (-s none), and a plain key file (revoked by hash).
cat > anyca.spec <<SPEC
id: frank-other-ca
id: dave-rsa
SPEC
ssh-keygen -q -k -f anyca.krl -s none -z 3 anyca.spec user_plain_file.pub

# revoke_ca.krl: the CA key ca_ecdsa itself, plus a certificate file (revoked by its serial).
ssh-keygen -q -k -f revoke_ca.krl -z 4 ca_ecdsa.pub user_ed25519_b-cert.pub

# updated.krl: serials.krl updated (-u) with another serial and the RSA user key.
cp serials.krl updated.krl
printf 'serial: 42\n' > update.spec
ssh-keygen -q -k -u -f updated.krl -s ca_ed25519.pub -z 5 update.spec user_rsa.pub

# empty.krl: no revocations at all.
ssh-keygen -q -k -f empty.krl -z 6 /dev/null

# revoked_keys.txt: the plain (non-KRL) format sshd also accepts.
{
  echo "# revoked by hand"
  echo
  cat user_plain_key.pub
  echo "   "
  cat user_ecdsa-cert.pub
  cat user_rsa.pub
  cat user_rsa_short.pub  # too short for touchgate logins, still revocable
} > revoked_keys.txt

# Private keys are not needed by the tests.
rm -f ca_ed25519 ca_ecdsa user_ed25519_a user_ed25519_b user_ecdsa user_rsa user_rsa_short \
  user_plain_sha1 user_plain_sha256 user_plain_key user_plain_file user_ok user_ok_ecdsa_ca
