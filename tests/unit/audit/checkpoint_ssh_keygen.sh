#!/bin/sh
# Checks the last checkpoint of an audit directory with stock OpenSSH, exactly as
# docs/audit-format.md tells an auditor to. Usage: checkpoint_ssh_keygen.sh DIR KEY.pub [HEAD]
# (HEAD, if given, replaces the head hash: the check must then fail).
set -eu
dir=$1
pub=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

line=$(cat "$dir"/audit-*.jsonl | grep '"event":"checkpoint"' | tail -n 1)
seq=$(printf '%s\n' "$line" | sed -n 's/.*"head_seq":\([0-9]*\).*/\1/p')
head=$(printf '%s\n' "$line" | sed -n 's/.*"head":"\([0-9a-f]*\)".*/\1/p')
sig=$(printf '%s\n' "$line" | sed -n 's/.*"sig":"\([A-Za-z0-9+\/=]*\)".*/\1/p')
if [ $# -ge 3 ]; then head=$3; fi
printf 'touchgate-audit-v1\nseq: %s\nhash: %s\n' "$seq" "$head" > msg
{ echo '-----BEGIN SSH SIGNATURE-----'; printf '%s\n' "$sig" | fold -w 70;
  echo '-----END SSH SIGNATURE-----'; } > msg.sig
echo "audit $(cut -d' ' -f1,2 "$pub")" > allowed_signers
ssh-keygen -Y verify -n touchgate-audit -f allowed_signers -I audit -s msg.sig < msg
