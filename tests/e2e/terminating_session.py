#!/usr/bin/env python3
"""Terminating mode as a user sees it, with the real ssh client and a real sshd target:
- a shell under a real pty (`ssh -tt gw db9` on a pty this scenario makes): the size the
  terminal had at the start reaches the target, a resize of the user's terminal (SIGWINCH to
  ssh, then window-change) reaches it too, and the recording holds the first size in its header
  and the new one as an "r" event;
- typed input is recorded as "i" events only where the rule says record_input = true;
- the client's EOF reaches the command on the target;
- a command killed by a signal ends `ssh gw db9 ...` with the same exit status as a direct ssh
  to the target (OpenSSH's 255);
- a "signal" request from the client (sent by tests/tools/ssh_signal, libssh: OpenSSH's ssh
  never sends one) reaches the target's command, which dies of it: exit-signal TERM comes back
  at once, not when the command would have ended; so does USR1 (RFC 4254 6.10 names it too),
  and a target's exit-signal USR1 comes back by name. OpenSSH's sshd signals no session of
  root's: run as root, the scenario gives that check a second sshd where an unprivileged login
  exists (a mount namespace with its own /etc/passwd);
- a recording that cannot be written (its file system full: a small tmpfs, needs root) ends the
  session with recording_failed long before the output is all through; the gateway goes on and
  ProxyJump through it still works."""

import fcntl
import json
import os
import pwd
import re
import select
import struct
import subprocess
import sys
import termios
import time

import harness
from harness import check

def ssh_signal_path():
    return harness.built_program("SSH_SIGNAL", "tests", "tools", "ssh_signal")


def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyClient:
    """A client running on the slave side of a fresh pty (its controlling terminal); the
    scenario is the terminal: it types on the master and reads what the client shows."""

    def __init__(self, env, argv, rows, cols, extra_env=None):
        self.master, slave = os.openpty()
        set_winsize(slave, rows, cols)
        self.output = b""
        self.mark = 0  # expect() looks at the output after this offset

        def controlling_tty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after setsid (start_new_session)

        self.popen = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                      env=env.client_env(extra_env), start_new_session=True,
                                      preexec_fn=controlling_tty, close_fds=True)
        env.clients.append(self.popen)  # killed on exit if still running
        os.close(slave)
        self.argv = argv

    def read_some(self, timeout):
        """One read from the master, waiting at most `timeout` s; False at EOF."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the slave side is closed
            return False
        if not data:
            return False
        self.output += data
        return True

    def expect(self, pattern, timeout=10):
        """Reads until the output after the mark matches `pattern` (bytes regex); returns the
        match and moves the mark past it."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.output[self.mark:])
            if m:
                self.mark += m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0 or not self.read_some(min(left, 0.5)):
                m = re.search(pattern, self.output[self.mark:])
                if m:
                    self.mark += m.end()
                    return m
                raise AssertionError(
                    f"{pattern!r} not seen within {timeout} s on the terminal of "
                    f"{' '.join(self.argv)}; it shows: {self.output[-1500:]!r}")

    def type(self, text):
        os.write(self.master, text.encode())

    def resize(self, rows, cols):
        set_winsize(self.master, rows, cols)  # the kernel sends SIGWINCH to ssh

    def finish(self, timeout=10):
        """Reads until the client exits; returns its exit status."""
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None and time.monotonic() < deadline:
            if not self.read_some(0.2):
                try:
                    self.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                break
        os.close(self.master)
        status = self.popen.poll()
        check(status is not None, f"{' '.join(self.argv)} did not exit within {timeout} s; "
              f"its terminal shows {self.output[-1500:]!r}")
        return status


def recording(rec):
    """(header, events) of the recording a recording_closed record names."""
    with open(rec["file"], encoding="utf-8") as f:
        lines = f.read().splitlines()
    return json.loads(lines[0]), [json.loads(l) for l in lines[1:]]


def start_target_as(env, base, name, login):
    """A second sshd sharing `base`'s host key and trusted CAs, in a mount namespace of its own
    where /etc/passwd also lists `login`: an unprivileged account (shell /bin/sh, home /) that
    exists only for that sshd. OpenSSH's sshd refuses "signal" requests on root's sessions
    (session_signal_req: "session signalling requires privilege separation"), so a scenario run
    as root needs another account on the target. Returns the Target, or None when no mount
    namespace can be made."""
    d = os.path.dirname(env.path(name, "x"))
    used = {p.pw_uid for p in pwd.getpwall()}
    uid = next(u for u in range(42000, 60000) if u not in used)
    text = harness.read_text("/etc/passwd")
    passwd = os.path.join(d, "passwd")
    with open(passwd, "w") as f:
        f.write(text + ("" if text.endswith("\n") else "\n") +
                f"{login}:x:{uid}:65534:touchgate e2e:/:/bin/sh\n")
    os.chmod(passwd, 0o644)
    base_config = harness.read_text(os.path.join(os.path.dirname(base.log), "sshd_config"))
    for attempt in range(3):
        port = harness.free_port()
        config = os.path.join(d, "sshd_config")
        with open(config, "w") as f:
            f.write(re.sub(r"(?m)^PidFile .*$", f"PidFile {d}/sshd.pid",
                           re.sub(r"(?m)^Port \d+$", f"Port {port}", base_config)))
        log = os.path.join(d, f"sshd-{attempt}.log")
        script = 'mount --bind "$1" /etc/passwd && exec "$2" -D -f "$3" -E "$4"'
        with open(log + ".stderr", "w") as err:
            popen = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh",
                                      "-c", script, "sh", passwd, harness.SSHD, config, log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err, start_new_session=True)
        target = harness.Target(f"sshd {name}", popen, log, port, name)
        env.processes.append(target)
        listening = f"Server listening on 127.0.0.1 port {port}"
        harness.wait_until(lambda: listening in target.log_text() or not target.alive(), 10,
                           f"sshd {name} to listen")
        if target.alive():
            return target
        if "Address already in use" not in target.log_text():
            print(f"NOTE: no sshd in a mount namespace: "
                  f"{harness.read_text(log + '.stderr').strip()}", file=sys.stderr)
            return None
    return None


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                   check=True, capture_output=True)


def main():
    with harness.Env("terminating_session", deadline=100) as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        # The gateway's own CA: a P-256 key in a SoftHSM2 token.
        token = env.gateway_ca_token("tg-pin-Qx7")
        target = env.start_target([ca], name="db9")
        host_pub = harness.read_text(os.path.join(os.path.dirname(target.log),
                                                  "ssh_host_ed25519_key.pub")).strip()
        # The "signal" request goes to db3: the same sshd when we are not root, else a second
        # one where an unprivileged login exists (OpenSSH does not signal root's sessions).
        sig_target, sig_login = target, env.login
        if os.getuid() == 0:
            sig_target = start_target_as(env, target, "db3", "tgsignal")
            sig_login = "tgsignal"
            if sig_target is None:
                sig_target, sig_login = target, env.login
        # db9: the default (output only); db4, the same sshd: typed input recorded too.
        rules = f'''[[rule]]
id = "ops"
principals = ["alice"]
targets = ["db9"]
actions = ["jump", "shell", "exec"]
remote_user = "{env.login}"

[[rule]]
id = "typed"
principals = ["alice"]
targets = ["db4"]
actions = ["shell", "exec"]
remote_user = "{env.login}"
record_input = true

[[rule]]
id = "signals"
principals = ["alice"]
targets = ["db3"]
actions = ["exec"]
remote_user = "{sig_login}"
'''
        extra = token.config + f'''
[[target]]
name = "db9"
address = "{target.address}"
host_key = "{host_pub}"

[[target]]
name = "db4"
address = "{target.address}"
host_key = "{host_pub}"

[[target]]
name = "db3"
address = "{sig_target.address}"
host_key = "{host_pub}"
'''
        gw = env.start_gateway([ca], rules=rules, extra=extra)
        agent = env.touch_agent_for(gw, "alice")
        config = env.client_config(gw, key, cert, target=target, name="ssh_config")
        agent_env = {"SSH_AUTH_SOCK": agent.sock}
        r = env.trust_gateway_ca(gw, target)
        check(r.returncode == 0 and r.stdout.startswith("ecdsa-sha2-nistp256 "),
              "touchgate ca pubkey", r)

        def tty_argv(dest):
            argv = env.ssh_argv(config, "gw", dest, jump=None)
            return argv[:1] + ["-tt"] + argv[1:]

        # -- 1. a shell under a real pty: the first size, then a resize ---------------------
        term = PtyClient(env, tty_argv("db9"), rows=30, cols=100,
                         extra_env={**agent_env, "TERM": "xterm"})
        term.type("echo size=$(stty size)=\r")
        m = term.expect(rb"size=(\d+) (\d+)=")
        check(m.group(1, 2) == (b"30", b"100"),
              f"the target's pty does not have the terminal's size 30x100: {m.group(0)!r}")
        term.resize(50, 132)
        time.sleep(0.3)  # ssh sees SIGWINCH and sends window-change before the next keys
        term.type("echo size=$(stty size)=\r")
        m = term.expect(rb"size=(\d+) (\d+)=")
        check(m.group(1, 2) == (b"50", b"132"),
              f"the resize did not reach the target's pty (want 50 132): {m.group(0)!r}; "
              f"terminal: {term.output[-800:]!r}")
        term.type("exit 0\r")
        status = term.finish()
        check(status == 0, f"ssh -tt gw db9 exited with {status}: {term.output[-800:]!r}")
        rec = gw.wait_for_audit("recording_closed", target="db9")  # the first on db9
        header, events = recording(rec)
        check(header["width"] == 100 and header["height"] == 30,
              f"the recording header does not hold the first size 100x30: {header}")
        resizes = [e[2] for e in events if e[1] == "r"]
        check(resizes == ["132x50"], f"the recording's resize events: {resizes} (want 132x50)")
        output = "".join(e[2] for e in events if e[1] == "o")
        check("size=50 132=" in output, "the recording lacks the output after the resize")
        # 2 (default rule): what was typed is not recorded.
        typed = [e for e in events if e[1] == "i"]
        check(not typed and rec["input"] is False,
              f"db9's rule does not record input, yet: {typed[:3]} input={rec['input']}")

        # -- 2. record_input = true: what the user types is in "i" events ----------------------
        r = env.run(tty_argv("db4"), input=b"echo typed-$((2+3))\nexit 0\n", extra_env=agent_env)
        check(r.returncode == 0 and "typed-5" in r.stdout, "the shell on db4 did not run", r)
        rec = gw.wait_for_audit("recording_closed", target="db4")
        _, events = recording(rec)
        typed = "".join(e[2] for e in events if e[1] == "i")
        check("echo typed-$((2+3))" in typed and rec["input"] is True,
              f"db4's rule records input: input events {typed!r}, record {rec}")

        # -- 3. the client's EOF reaches the target's command --------------------------------
        r = env.ssh(config, "gw", "db9 cat; echo after-eof", jump=None, extra_env=agent_env,
                    input=b"line one\nno-newline", timeout=15)
        check(r.returncode == 0 and r.stdout == "line one\nno-newlineafter-eof\n",
              "stdin and its EOF must reach cat on the target", r)

        # -- 4. a command killed by a signal: the same exit status as a direct ssh -------------
        direct = env.ssh(config, "target", "kill -TERM $$", jump=None)
        check(direct.returncode == 255, "direct ssh: a command killed by a signal", direct)
        r = env.ssh(config, "gw", "db9 kill -TERM $$", jump=None, extra_env=agent_env)
        check(r.returncode == direct.returncode,
              f"through the gateway the exit status is {r.returncode}, direct ssh gives "
              f"{direct.returncode}", r, direct)

        # -- 5. a "signal" request from the client reaches the target's command ---------------
        delivered = sig_login != "root"
        command = f"db3 echo started as $(id -un); sleep {30 if delivered else 3}"
        r = env.run([ssh_signal_path(), "127.0.0.1", gw.port, "alice", key.key, cert.path,
                     "1500", "TERM", command], extra_env=agent_env, timeout=25)
        check(r.returncode == 0 and r.stdout.startswith(f"started as {sig_login}\n"),
              "ssh_signal through the gateway", r)
        if delivered:
            check(r.stdout.endswith("\nexit-signal TERM\n"),
                  "the client's signal TERM must kill the command on the target", r)
            check(r.elapsed < 10, "the signalled command ended only when sleep did", r)
        else:
            # sshd refuses to signal root's sessions, but says that the request reached it.
            check(r.stdout.endswith("\nexit-status 0\n"), "sleep 3 ends by itself", r)
            check("session_signal_req: session signalling requires privilege separation"
                  in sig_target.log_text(), "the signal request did not reach the target")
            print("NOTE: the target's login is root: signal relayed, not delivered",
                  file=sys.stderr)
        closed = gw.wait_for_audit("channel_closed", target="db3")
        check(closed["action"] == "exec" and
              closed["reason"] == "target_closed" and closed["duration_ms"] < 10000,
              f"channel_closed: {closed}")

        # The exit signal's name comes back as the target gave it.
        r = env.run([ssh_signal_path(), "127.0.0.1", gw.port, "alice", key.key, cert.path, "0",
                     "-", "db3 kill -USR1 $$"], extra_env=agent_env, timeout=25)
        check(r.returncode == 0 and r.stdout == "exit-signal USR1\n",
              "a command killed by SIGUSR1: exit-signal USR1 must come back", r)

        # -- 8. file tools that cannot pass a target: rsync logs in as PRINCIPAL+TARGET and runs
        # its server as an exec (the agent forwarded by the config's gw block) ----------------
        payload = os.urandom(2 * 1024 * 1024 + 17)
        src = env.path("rsync-src.bin")
        with open(src, "wb") as f:
            f.write(payload)
        rsh = f"ssh -F {config}"
        r = env.run(["rsync", "-e", rsh, src, f"alice+db9@gw:{env.path('rsync-there.bin')}"],
                    extra_env=agent_env, timeout=30)
        check(r.returncode == 0, "rsync to alice+db9@gw", r)
        with open(env.path("rsync-there.bin"), "rb") as f:
            check(f.read() == payload, "the file rsync wrote on the target differs")
        r = env.run(["rsync", "-e", rsh, f"alice+db9@gw:{env.path('rsync-there.bin')}",
                     env.path("rsync-back.bin")], extra_env=agent_env, timeout=30)
        check(r.returncode == 0, "rsync from alice+db9@gw", r)
        with open(env.path("rsync-back.bin"), "rb") as f:
            check(f.read() == payload, "the file rsync fetched from the target differs")
        opened = [o for o in gw.audit_records("channel_open")
                  if o.get("command", "").startswith("rsync --server")]
        check(len(opened) == 2 and all(o["action"] == "exec" and o["target"] == "db9"
                                       for o in opened),
              f"rsync's two sessions in the audit log: {opened}")

        # -- 9. a quiet session's output reaches the recording file within seconds, not at the
        # end of the session (a gateway that dies loses at most the last second) -------------
        p = subprocess.Popen(env.ssh_argv(config, "gw", "db9 echo early-$((40+2)); sleep 6",
                                          jump=None),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env.client_env(agent_env),
                             start_new_session=True)
        env.clients.append(p)
        opened = gw.wait_for_audit("channel_open", command="echo early-$((40+2)); sleep 6")

        def early_on_disk():
            with open(opened["recording"], encoding="utf-8") as f:
                return "early-42" in f.read()  # the output (the header holds the command)
        harness.wait_until(early_on_disk, 4, "the output in the recording file during the session")
        check(p.poll() is None, "the session should still be running")
        p.wait(timeout=20)

        # -- 6. a recording that cannot be written ends the session ----------------------------
        unwritable_recording(env, ca, rules, extra, key, cert, target)

        # -- 7. signal names with digits (RFC 4254 6.10 lists USR1 and USR2) are relayed too ----
        requests_before = sig_target.log_text().count("session_signal_req")
        r = env.run([ssh_signal_path(), "127.0.0.1", gw.port, "alice", key.key, cert.path,
                     "1000", "USR1", f"db3 sleep {5 if delivered else 2}"], extra_env=agent_env,
                    timeout=25)
        check(r.returncode == 0, "ssh_signal USR1 through the gateway", r)
        if delivered:
            check(r.stdout == "exit-signal USR1\n",
                  "the client's signal USR1 must kill the command on the target (the gateway "
                  "relays TERM; USR1 is as much an RFC 4254 signal name)", r)
        else:
            check(sig_target.log_text().count("session_signal_req") > requests_before,
                  "the signal request USR1 did not reach the target")


def unwritable_recording(env, ca, rules, extra, key, cert, target):
    """A gateway whose recordings go to a 1 MiB tmpfs: a session with more output than that
    ends with recording_failed; the gateway goes on."""
    if os.geteuid() != 0:
        print("SKIP (part): an unwritable recording needs root to mount a tmpfs", file=sys.stderr)
        return
    recfs = env.path("recfs")
    try:
        mount_tmpfs(recfs, "1m")
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"SKIP (part): cannot mount a tmpfs for the recordings: {e}", file=sys.stderr)
        return
    try:
        gw2 = env.start_gateway([ca], rules=rules, name="gw2",
                                extra=extra + f'\n[recording]\ndir = "{recfs}"\n')
        agent2 = env.touch_agent_for(gw2, "alice")
        config2 = env.client_config(gw2, key, cert, target=target, name="ssh_config-gw2")
        r = env.run(env.ssh_argv(config2, "gw", "db9 head -c 4000000 /dev/zero | base64",
                                 jump=None), extra_env={"SSH_AUTH_SOCK": agent2.sock},
                    binary=True, timeout=30)
        check(r.returncode != 0 and "(recording_failed)" in r.stderr and
              len(r.stdout) < 3000000,
              f"a session whose recording cannot be written must end: exit status "
              f"{r.returncode}, {len(r.stdout)} bytes of output, stderr {r.stderr[-500:]!r}")
        closed = gw2.wait_for_audit("channel_closed", reason="recording_failed")
        check(closed["target"] == "db9" and closed["bytes_down"] < 3000000,
              f"channel_closed: {closed}")
        failed = gw2.wait_for_audit("recording_failed")
        check(failed["target"] == "db9" and failed["reason"] == "recording_io" and
              failed["file"].startswith(recfs) and "write failed" in failed["message"],
              f"recording_failed: {failed}")
        check(not gw2.audit_records("recording_closed"),
              "a recording that failed must not be recorded as closed with a SHA-256")
        r = env.touchgate(gw2, "audit", "verify")
        check(r.returncode == 0 and "recording_incomplete" in r.stdout and
              "could not be written whole (recording_failed): 1" in r.stdout,
              "verify: the log is intact and says that one recording is incomplete", r)
        check(gw2.alive(), "touchgated died on a full recording file system")
        r = env.ssh(config2, "target", "echo jump-ok")
        check(r.returncode == 0 and r.stdout == "jump-ok\n",
              "ProxyJump after the recording failure", r)
    finally:
        subprocess.run(["umount", "-l", recfs], check=False)


if __name__ == "__main__":
    harness.scenario(main)
