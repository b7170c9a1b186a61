#!/usr/bin/env python3
"""Bulk data through `ssh -J gw target` arrives intact: 256 MiB of random bytes uploaded to the
target's sha256sum, and 64 MiB downloaded from the target, compared by SHA-256."""

import hashlib
import os
import threading
import time

import harness
from harness import check

UPLOAD = 256 << 20
DOWNLOAD = 64 << 20
CHUNK = 1 << 20


def main():
    with harness.Env("large_transfer", deadline=110) as env:
        w = env.world()

        # Upload: stream random bytes into ssh's stdin while hashing them.
        p = env.spawn(env.ssh_argv(w.config, "target", "sha256sum"))
        out = {}
        readers = [threading.Thread(target=lambda n, f: out.__setitem__(n, f.read()),
                                    args=(n, f), daemon=True)
                   for n, f in (("stdout", p.stdout), ("stderr", p.stderr))]
        for t in readers:
            t.start()
        digest = hashlib.sha256()
        start = time.monotonic()
        try:
            for _ in range(UPLOAD // CHUNK):
                chunk = os.urandom(CHUNK)
                digest.update(chunk)
                p.stdin.write(chunk)
            p.stdin.close()
        except BrokenPipeError:
            pass
        p.wait(timeout=80)
        for t in readers:
            t.join(timeout=5)
        elapsed = time.monotonic() - start
        r = harness.Result(p.args, p.returncode, out.get("stdout", b"").decode(errors="replace"),
                           out.get("stderr", b"").decode(errors="replace"), elapsed)
        env.results.append(r)
        check(r.returncode == 0, "upload: expected exit status 0", r)
        check(r.stdout.split()[:1] == [digest.hexdigest()],
              f"upload: the target's sha256 differs from the sent {digest.hexdigest()}", r)
        print(f"upload 256 MiB: {elapsed:.1f} s ({UPLOAD / elapsed / 2**20:.0f} MiB/s)")

        # Download: the target cats a file of random bytes; compare what arrives.
        source = env.path("download.bin")
        with open(source, "wb") as f:
            f.write(os.urandom(DOWNLOAD))
        with open(source, "rb") as f:
            expected = hashlib.sha256(f.read()).hexdigest()
        r = env.ssh(w.config, "target", f"cat {source}", binary=True, timeout=60)
        got = hashlib.sha256(r.stdout).hexdigest()
        r.stdout = f"<{len(r.stdout)} bytes, sha256 {got}>"
        check(r.returncode == 0, "download: expected exit status 0", r)
        check(got == expected, f"download: expected {DOWNLOAD} bytes with sha256 {expected}", r)
        print(f"download 64 MiB: {r.elapsed:.1f} s ({DOWNLOAD / r.elapsed / 2**20:.0f} MiB/s)")
        check(w.gw.alive(), "touchgated is no longer running")


if __name__ == "__main__":
    harness.scenario(main)
