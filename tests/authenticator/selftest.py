"""What the self-tests in this directory share (python3 stdlib only): tool paths, a clean
environment, subprocesses with timeouts, ssh-agents of their own, and a driver that runs checks
under a deadline and always stops what it started."""

import os
import shutil
import signal
import subprocess
import tempfile
import time

SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
SSH_AGENT = shutil.which("ssh-agent") or "/usr/bin/ssh-agent"
SSH_ADD = shutil.which("ssh-add") or "/usr/bin/ssh-add"
STEP_TIMEOUT = 30  # seconds, for every subprocess
DEADLINE = 100  # seconds, for a whole self-test (meson gives 120)


class CheckFailed(Exception):
    pass


def expect(condition, what):
    if not condition:
        raise CheckFailed(what)


def clean_env(**extra):
    """The environment without agent or provider settings, plus `extra` (None values dropped)."""
    drop = ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "SSH_SK_PROVIDER", "TG_TEST_SK_CONTROL",
            "SSH_ASKPASS", "DISPLAY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def run(cmd, env, stdin=b"", timeout=STEP_TIMEOUT):
    return subprocess.run(cmd, env=env, input=stdin, capture_output=True, timeout=timeout)


class Lab:
    """A temp dir and the processes started in it."""

    def __init__(self, prefix):
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.procs = []

    def path(self, name):
        return os.path.join(self.work, name)

    def setup(self):
        pass

    def start_agent(self, name, args=(), env=None):
        """A foreground ssh-agent on NAME.sock, logging to NAME.log; returns the socket path."""
        sock = self.path(f"{name}.sock")
        with open(self.path(f"{name}.log"), "wb") as log:
            proc = subprocess.Popen([SSH_AGENT, "-D", "-a", sock, *args],
                                    env=env or clean_env(), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log)
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            expect(proc.poll() is None, f"ssh-agent {name} exited with {proc.returncode}")
            expect(time.monotonic() < deadline, f"ssh-agent {name} did not listen")
            time.sleep(0.02)
        return sock

    def stop_all(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.procs = []

    def print_logs(self):
        for name in sorted(os.listdir(self.work)):
            if name.endswith(".log"):
                with open(self.path(name), errors="replace") as f:
                    print(f"--- {name}\n{f.read()}")


def run_checks(lab, checks, what):
    """Runs lab.setup() then each check(lab) under DEADLINE; 0 when all passed, else 1 (with the
    lab's logs printed). Processes and the temp dir go in every case."""

    def on_alarm(_signum, _frame):
        raise CheckFailed(f"deadline of {DEADLINE} s exceeded")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(DEADLINE)
    try:
        lab.setup()
        for check in checks:
            check(lab)
            print(f"ok   {check.__name__}", flush=True)
    except (CheckFailed, subprocess.TimeoutExpired, OSError) as e:
        print(f"FAIL {e}")
        lab.print_logs()
        return 1
    finally:
        signal.alarm(0)
        lab.stop_all()
        shutil.rmtree(lab.work, ignore_errors=True)
    print(f"all {what} checks passed")
    return 0
