#!/bin/sh
# Checks dist/touchgated.service with systemd's own parser (systemd-analyze verify): any
# complaint (an unknown key, a bad value, a misspelt section) fails the test. The programs it
# starts are replaced by /bin/true, which exists everywhere.
set -eu
unit="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed -e 's#/usr/sbin/touchgated#/bin/true#g' -e 's#/usr/bin/touchgate#/bin/true#g' \
    "$unit" >"$dir/touchgated.service"
out=$(systemd-analyze verify --man=no "$dir/touchgated.service" 2>&1) || {
  echo "systemd-analyze verify failed:"; echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:"; echo "$out"; exit 1
fi
# The syscall filter must leave the calls touchgated makes: fchown/lchown for admin_group.
grep -qx 'SystemCallFilter=@chown' "$dir/touchgated.service" || {
  echo "the unit's SystemCallFilter removes @chown (needed for [server] admin_group)"; exit 1; }
echo "touchgated.service: ok"
