#!/bin/sh
# Regenerates the seed corpus tests/fuzz/corpus/sftp_log/ from real sessions: OpenSSH's `sftp`
# client (-D: no ssh, straight to a local server) talking to OpenSSH's sftp-server, both
# directions captured with tee. Outputs are checked in; unit tests (tests/unit/ssh/
# sftp_log_test.cc) assert the ops of put_get.bin and failures.bin, so re-run them after this.
#
# File format (as sftp_log_fuzz.cc reads it): uint16 big-endian length of the client stream,
# one flags byte (bit 0: replay packet by packet, each reply right after its request; else
# alternate raw chunks), the client stream, the server stream.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/corpus/sftp_log"
server=/usr/lib/openssh/sftp-server
[ -x "$server" ] || { echo "needs $server (apt-get install openssh-sftp-server)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$corpus"
rm -f "$corpus"/*.bin

cat >"$scratch/tap" <<TAP
#!/bin/sh
tee "$scratch/client" | $server | tee "$scratch/server"
TAP
chmod +x "$scratch/tap"

u8() { printf "\\$(printf %03o "$1")"; }

session() {  # session <name> <flags>, batch commands on stdin
  mkdir "$scratch/work"
  head -c 3000 /dev/zero | tr '\0' 'a' >"$scratch/work/local.txt"
  (cd "$scratch/work" && sftp -q -b - -D "$scratch/tap" >/dev/null 2>&1) || true
  n=$(wc -c <"$scratch/client")
  [ "$n" -lt 65536 ] || { echo "$1: client stream too long" >&2; exit 1; }
  { u8 $((n / 256)); u8 $((n % 256)); u8 "$2"; cat "$scratch/client" "$scratch/server"; } \
    >"$corpus/$1.bin"
  rm -rf "$scratch/work" "$scratch/client" "$scratch/server"
}

session put_get 1 <<'B'
mkdir d
put local.txt d/a.txt
get d/a.txt back.txt
rename d/a.txt d/b.txt
chmod 600 d/b.txt
ls d
symlink b.txt d/l
ln d/b.txt d/h
rm d/l
rm d/h
rm d/b.txt
rmdir d
B

session put_get_chunked 0 <<'B'
mkdir d
put local.txt d/a.txt
get d/a.txt back.txt
rm d/a.txt
rmdir d
B

session failures 1 <<'B'
-mkdir .
-rmdir missing
-get missing back.txt
-rename missing other
-rm missing
-chmod 600 missing
B
ls -l "$corpus"
