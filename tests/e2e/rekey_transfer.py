#!/usr/bin/env python3
"""Bulk data survives key re-exchanges on the client-to-gateway connection: with RekeyLimit 1M on
the jump hop, 48 MiB each way cross dozens of rekeys and arrive intact (SHA-256)."""

import hashlib
import os

import harness
from harness import check

SIZE = 48 << 20


def main():
    with harness.Env("rekey_transfer", deadline=110) as env:
        w = env.world()
        config = env.client_config(w.gw, w.key, w.cert, target=w.target,
                                   gw_extra="  RekeyLimit 1M\n")
        source = env.path("payload.bin")
        with open(source, "wb") as f:
            f.write(os.urandom(SIZE))
        with open(source, "rb") as f:
            data = f.read()
        expected = hashlib.sha256(data).hexdigest()

        # Download: the target sends the file through the gateway.
        r = env.ssh(config, "target", f"cat {source}", binary=True, timeout=90)
        got = hashlib.sha256(r.stdout).hexdigest()
        size = len(r.stdout)
        r.stdout = f"<{size} bytes, sha256 {got}>"
        check(r.returncode == 0, "download: expected exit status 0", r)
        check(got == expected, f"download: expected {SIZE} bytes with sha256 {expected}", r)

        # Upload: the same bytes go to the target's sha256sum.
        r = env.ssh(config, "target", "sha256sum", input=data, binary=True, timeout=90)
        out = r.stdout.decode(errors="replace")
        r.stdout = out
        check(r.returncode == 0, "upload: expected exit status 0", r)
        check(out.split()[:1] == [expected], f"upload: expected sha256 {expected}", r)
        check(w.gw.alive(), "touchgated is no longer running")


if __name__ == "__main__":
    harness.scenario(main)
