#!/bin/sh
# Regenerates the policy (config + trust) test data with the real ssh-keygen. Outputs are checked
# in; run this only to change them, then re-run the unit tests.
#
#   ca_ed25519.pub, ca_ecdsa.pub, ca_rsa.pub   single-key CA files
#   two_cas.pub        both ed25519 and ecdsa CAs, with comments, blank lines and a CRLF line
#   cert_as_ca.pub     a user certificate where a CA key is expected (refused)
#   comments_only.pub  no key at all (refused)
#   bad_line3.pub      a valid key, then a corrupt one on line 3 (refused, naming line 3)
#   rsa1024_ca.pub     a CA key too small to trust (refused)
#   revoked.krl        KRL revoking serial 7 of ca_ed25519 and the key id "mallory"
#   revoked_keys.txt   plain revoked-keys list (one key)
#   bad_revoked.txt    plain list whose line 2 is corrupt (refused, naming line 2)
#   truncated.krl      revoked.krl cut short (refused)
#   touchgate.toml     a config using these files by relative path
set -eu
cd "$(dirname "$0")"
rm -f ./*.pub ./*.krl ./*.txt ./*.spec
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() {  # key <name> <type> [bits]
  if [ -n "${3:-}" ]; then
    ssh-keygen -q -t "$2" -b "$3" -N '' -C "$1" -f "$tmp/$1"
  else
    ssh-keygen -q -t "$2" -N '' -C "$1" -f "$tmp/$1"
  fi
}

key ca_ed25519 ed25519
key ca_ecdsa ecdsa 256
key ca_rsa rsa 3072
key ca_rsa1024 rsa 1024
key user ed25519
key revoked_user ed25519
cp "$tmp/ca_ed25519.pub" "$tmp/ca_ecdsa.pub" "$tmp/ca_rsa.pub" .
cp "$tmp/ca_rsa1024.pub" rsa1024_ca.pub

{
  echo "# SSO CAs: current and next (rotation overlap)"
  echo
  cat ca_ed25519.pub
  printf '   \t\n'
  printf '%s\r\n' "$(cat ca_ecdsa.pub)"
  echo "# end"
} > two_cas.pub

ssh-keygen -q -s "$tmp/ca_ed25519" -I alice -n alice -z 7 -V always:forever "$tmp/user.pub"
cp "$tmp/user-cert.pub" cert_as_ca.pub

printf '# no keys here\n\n# none at all\n' > comments_only.pub

{
  cat ca_ed25519.pub
  echo "# the next key is corrupt"
  awk '{ print $1, substr($2, 1, length($2) - 12) "AAAAAAAAAAAA", $3 }' ca_ecdsa.pub
} > bad_line3.pub

printf 'serial: 7\nid: mallory\n' > "$tmp/revoked.spec"
ssh-keygen -q -k -f revoked.krl -s ca_ed25519.pub -z 1 "$tmp/revoked.spec"
head -c 40 revoked.krl > truncated.krl

{
  echo "# revoked by hand"
  cat "$tmp/revoked_user.pub"
} > revoked_keys.txt
{
  cat "$tmp/revoked_user.pub"
  echo "ssh-ed25519 AAAAnotbase64!! broken"
} > bad_revoked.txt

cat > touchgate.toml <<TOML
# Used by tests/unit/policy/trust_test.cc: every path is relative to this file.
[server]
listen = ["127.0.0.1:2222"]
state_dir = "state"

[trust]
user_ca_keys = ["two_cas.pub", { name = "legacy", path = "ca_rsa.pub" }]
revoked_keys = "revoked.krl"
max_cert_lifetime = "12h"
clock_skew = "90s"
permit_force_command = true

[[target]]
name = "db1"
address = "127.0.0.1:2201"
tags = ["prod"]
TOML
