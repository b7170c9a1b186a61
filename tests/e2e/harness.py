"""End-to-end harness: real ssh-keygen, ssh and sshd around touchgated (python3 stdlib only).

One scenario per file; each does

    with harness.Env("name") as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca, principals=["alice", env.login])
        target = env.start_target([ca])
        gw = env.start_gateway([ca], targets=[target])
        r = env.ssh(env.client_config(gw, key, cert, target=target), "target", "echo hi")

Everything lives in a fresh temp dir, every port is picked at run time, every wait has a timeout,
and every process started here is stopped on exit (SIGTERM, then SIGKILL), also on failure; on
failure the daemon's and sshd's logs are printed. The whole scenario runs under a deadline
(SIGALRM) so that it cannot hang. Scenarios take 2-30 s on an idle machine; the default deadline
of 90 s leaves room for a loaded CI box and still reports (with logs) before meson's 120 s.
"""

import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import types

SSH = shutil.which("ssh") or "/usr/bin/ssh"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
SSHD = "/usr/sbin/sshd"  # sshd insists on an absolute path (it re-executes itself)

DISCONNECT_RE = r"Received disconnect from 127\.0\.0\.1 port \d+:11: touchgate: .+ \({code}\)"


class ScenarioTimeout(Exception):
    pass


class HarnessError(Exception):
    pass


def built_program(env_var, *build_path, executable=True):
    """A program under test: $ENV_VAR (meson sets it), else its place in the build tree."""
    path = os.environ.get(env_var)
    if not path:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.path.join(root, "build", *build_path)
    ok = os.access(path, os.X_OK) if executable else os.path.exists(path)
    if not ok:
        raise HarnessError(f"{build_path[-1]} not found{' or not executable' if executable else ''}:"
                           f" {path}")
    return os.path.abspath(path)


def touchgated_path():
    """The daemon under test: $TOUCHGATED, else build/gateway/touchgated."""
    return built_program("TOUCHGATED", "gateway", "touchgated")


def touchgate_path():
    """The admin CLI: $TOUCHGATE, else build/cli/touchgate."""
    return built_program("TOUCHGATE", "cli", "touchgate")


def test_sk_path():
    """Our test authenticator (an OpenSSH SecurityKeyProvider): $TOUCHGATE_TEST_SK, else the
    build tree's copy; its real path (ssh-agent -P wants it)."""
    return os.path.realpath(built_program("TOUCHGATE_TEST_SK", "tests", "authenticator",
                                          "tg-test-sk.so", executable=False))


def write_sk_control(path, **values):
    """Writes the test authenticator's control file (key=value lines, see test_sk.cc)."""
    with open(path, "w") as f:
        for k, v in values.items():
            f.write(f"{k}={v}\n")


SK_DUMMY = "/usr/lib/openssh/regress/misc/sk-dummy/sk-dummy.so"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_available():
    try:
        free_port("::1")
        return True
    except OSError:
        return False


def wait_until(predicate, timeout, what, interval=0.02):
    """Polls predicate() until it returns a true value (returned) or raises HarnessError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def read_until_closed(sock, timeout):
    """Reads sock until the peer closes it. Returns (how, received): how is "eof", "reset" or
    "timeout" (still open after `timeout` s)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return "eof", received
            received += data
    except ConnectionResetError:
        return "reset", received
    except socket.timeout:
        return "timeout", received


def read_text(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def toml_str(value):
    return json.dumps(str(value))  # a JSON string of printable text is a valid TOML basic string


class Result:
    """What the user sees from one client command."""

    def __init__(self, argv, returncode, stdout, stderr, elapsed):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    def __str__(self):
        return (f"$ {shlex.join(self.argv)}\n  exit status: {self.returncode} "
                f"({self.elapsed:.2f} s)\n  stdout: {self.stdout[-2000:]!r}\n"
                f"  stderr: {self.stderr[-2000:]!r}")


class Ca:
    def __init__(self, name, key):
        self.name = name
        self.key = key  # private key path
        self.pub = key + ".pub"


class UserKey:
    def __init__(self, name, key):
        self.name = name
        self.key = key
        self.pub = key + ".pub"


class Cert:
    def __init__(self, path, key):
        self.path = path
        self.key = key  # the UserKey it certifies


SANITIZER_RE = re.compile(r"(ERROR: AddressSanitizer[^\n]*|ERROR: LeakSanitizer[^\n]*|"
                          r"runtime error:[^\n]*)")


class Process:
    """A long-running child with its log file; stopped by Env on exit."""

    def __init__(self, name, popen, log):
        self.name = name
        self.popen = popen
        self.log = log

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log_text(self):
        return read_text(self.log)

    def stop(self, grace=5.0):
        """SIGTERM, wait up to `grace` seconds, then SIGKILL its process group.

        Signals go only to a child not yet reaped: until then its pid (also its process group
        id) cannot belong to anyone else.
        """
        if self.popen.returncode is None:
            pid = self.popen.pid
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while (os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
                       and time.monotonic() < deadline):
                    time.sleep(0.02)
                os.killpg(pid, signal.SIGKILL)  # the leader or a straggler may still run
            except (ProcessLookupError, PermissionError, ChildProcessError):
                pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class Target(Process):
    """A real OpenSSH sshd on 127.0.0.1 that trusts the given CAs."""

    def __init__(self, name, popen, log, port, target_name):
        super().__init__(name, popen, log)
        self.target_name = target_name  # its [[target]] name in the gateway config
        self.port = port
        self.host = "127.0.0.1"
        self.address = f"127.0.0.1:{port}"

    def host_key(self):
        """The sshd's Ed25519 host key as an OpenSSH public key line (what `host_key` pins)."""
        return read_text(os.path.join(os.path.dirname(self.log),
                                      "ssh_host_ed25519_key.pub")).strip()

    def pinned_toml(self, *names, host_key=None):
        """[[target]] blocks, one per name, at this sshd's address with its host key pinned
        (or host_key)."""
        key = host_key or self.host_key()
        return "".join(f'\n[[target]]\nname = "{n}"\naddress = "{self.address}"\n'
                       f'host_key = "{key}"\n' for n in names)


class Agent(Process):
    """A private ssh-agent (ssh-agent -D -a SOCK)."""

    def __init__(self, name, popen, log, sock, env, provider=None, agent_env=None):
        super().__init__(name, popen, log)
        self.sock = sock
        self.env = env
        self.provider = provider
        self.agent_env = agent_env or {}

    def add_sk(self, key):
        """ssh-add -S PROVIDER an sk key (made with this agent's provider)."""
        r = self.env.run(["ssh-add", "-S", self.provider, key.key],
                         extra_env={"SSH_AUTH_SOCK": self.sock, **self.agent_env})
        if r.returncode != 0:
            raise HarnessError(f"ssh-add -S failed:\n{r}")

    def add(self, key, cert=None):
        """ssh-add the key, with `cert` beside it when given (ssh-add loads KEY-cert.pub)."""
        d = tempfile.mkdtemp(dir=self.env.dir, prefix="add-")
        k = os.path.join(d, "id")
        shutil.copyfile(key.key, k)
        os.chmod(k, 0o600)
        shutil.copyfile(key.pub, k + ".pub")
        if cert is not None:
            shutil.copyfile(cert.path, k + "-cert.pub")
        r = self.env.run(["ssh-add", k], extra_env={"SSH_AUTH_SOCK": self.sock})
        shutil.rmtree(d, ignore_errors=True)
        if r.returncode != 0:
            raise HarnessError(f"ssh-add failed:\n{r}")


class Gateway(Process):
    """A running touchgated; port6 is set when it also listens on [::1]."""

    def __init__(self, name, popen, log, config, port, port6):
        super().__init__(name, popen, log)
        self.config = config
        self.port = port
        self.port6 = port6
        self.host = "127.0.0.1"

    def events(self, event=None):
        """The daemon's key=value log lines as dicts (optionally only one event kind)."""
        out = []
        for line in self.log_text().splitlines():
            fields = dict(m.group(1, 2) for m in
                          re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line))
            if event is None or fields.get("event") == event:
                out.append(fields)
        return out

    def audit_dir(self):
        """[audit] dir of the gateway's configuration (default: state/audit beside it)."""
        with open(self.config, "rb") as f:
            configured = tomllib.load(f).get("audit", {}).get("dir")
        base = os.path.dirname(self.config)
        return os.path.join(base, configured) if configured else os.path.join(base, "state",
                                                                               "audit")

    def audit_records(self, event=None, conn=None):
        """The records of the gateway's audit log, in order, as dicts (docs/audit-format.md)."""
        out = []
        d = self.audit_dir()
        for name in sorted(os.listdir(d)):
            if not (name.startswith("audit-") and name.endswith(".jsonl")):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        continue
                    r = json.loads(line)
                    if (event is None or r["event"] == event) and \
                            (conn is None or r.get("conn") == conn):
                        out.append(r)
        return out

    def wait_for_audit(self, event, timeout=10.0, **fields):
        """Waits for an audit record of `event` whose fields include `fields`; returns it."""
        def found():
            for r in self.audit_records(event):
                if all(r.get(k) == v for k, v in fields.items()):
                    return r
            return None
        return wait_until(found, timeout, f"audit record {event} {fields} of {self.name}")

    def rss(self):
        """The daemon's resident memory in bytes (VmRSS in /proc/PID/status)."""
        for line in read_text(f"/proc/{self.pid}/status").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise HarnessError(f"no VmRSS for {self.name} (pid {self.pid})")

    def wait_for_log(self, pattern, timeout=5.0):
        """Waits until the daemon's log matches the regex; returns the match."""
        return wait_until(lambda: re.search(pattern, self.log_text()), timeout,
                          f"{pattern!r} in the log of {self.name}")


class Env:
    """One scenario's world. Use as a context manager."""

    def __init__(self, name, deadline=90):
        self.name = name
        self.deadline = deadline
        self.processes = []
        self.clients = []  # Popen objects of background clients
        self.results = []
        self.login = pwd.getpwuid(os.getuid()).pw_name  # the account on the target
        self.dir = None
        self._certs = 0
        # The second factor by default: client_config forwards, for each gateway and user, an
        # agent holding a key enrolled for that user (made on first use); world(touch_agent=
        # False) turns this off for scenarios that bring their own keys.
        self.auto_touch = True
        self._touch_agents = {}

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix=f"touchgate-e2e-{self.name}-")
        self._old_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(self.deadline)
        self.started = time.monotonic()
        return self

    def _on_alarm(self, signum, frame):
        raise ScenarioTimeout(f"scenario {self.name} exceeded its {self.deadline} s deadline")

    def __exit__(self, exc_type, exc, tb):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self._old_alarm)
        for p in self.clients:
            self._kill_group(p)
        for proc in reversed(self.processes):
            proc.stop()
        failed = exc_type is not None
        if not failed:
            # Every gateway must have stopped cleanly on SIGTERM, and no sanitizer may have
            # reported anything (the ASan+UBSan build runs these scenarios too).
            for proc in self.processes:
                if not isinstance(proc, Gateway):
                    continue
                text = proc.log_text()
                reports = [m for m in SANITIZER_RE.findall(text)]
                status = proc.popen.returncode
                if reports or status not in (0, None):
                    failed = True
                    print(f"FAIL: {proc.name} exited with status {status}"
                          f"{'; sanitizer: ' + reports[0] if reports else ''}", file=sys.stderr)
                    exc = AssertionError(f"{proc.name} did not stop cleanly")
        if failed:
            self.dump()
        keep = os.environ.get("TOUCHGATE_E2E_KEEP") == "1"
        if keep:
            print(f"[{self.name}] kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if not failed:
            print(f"[{self.name}] PASS ({time.monotonic() - self.started:.1f} s)")
        elif exc_type is None:
            raise exc
        return False

    def dump(self):
        """Prints what helps to understand a failure: last client results and all logs."""
        err = sys.stderr
        print(f"\n===== {self.name}: FAILED; diagnostics =====", file=err)
        for r in self.results[-6:]:
            print(f"--- client\n{r}", file=err)
        for proc in self.processes:
            status = proc.popen.poll()
            print(f"--- {proc.name} (pid {proc.pid}, exit status {status}) log {proc.log}:",
                  file=err)
            text = proc.log_text()
            print(text[-12000:] if text else "(empty)", file=err)
        err.flush()

    @staticmethod
    def _kill_group(popen):
        """SIGKILLs a client's process group (ssh and its ProxyJump child) unless reaped."""
        if popen.returncode is None:
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def path(self, *parts):
        p = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    # -- running commands ------------------------------------------------------------------

    @staticmethod
    def client_env(extra_env=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
        env["LC_ALL"] = "C"
        env.update(extra_env or {})
        return env

    def run(self, argv, timeout=30, input=None, check=False, binary=False, cwd=None,
            extra_env=None):
        """Runs argv to completion (own process group, killed on timeout); returns a Result."""
        argv = [str(a) for a in argv]
        start = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None
                             else subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.client_env(extra_env), cwd=cwd,
                             start_new_session=True)
        try:
            out, err = p.communicate(input=input, timeout=timeout)
        except BaseException:
            self._kill_group(p)
            raise
        finally:
            if p.poll() is None:
                self._kill_group(p)
        if not binary:
            out = out.decode(errors="replace")
        r = Result(argv, p.returncode, out, err.decode(errors="replace"),
                   time.monotonic() - start)
        self.results.append(r)
        if check and r.returncode != 0:
            raise HarnessError(f"command failed:\n{r}")
        return r

    def spawn(self, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, extra_env=None):
        """Starts a client in the background (killed on exit); the caller talks to its pipes."""
        p = subprocess.Popen([str(a) for a in argv], stdin=stdin, stdout=stdout,
                             stderr=subprocess.PIPE, env=self.client_env(extra_env),
                             start_new_session=True)
        self.clients.append(p)
        return p

    # -- keys and certificates (real ssh-keygen) -------------------------------------------

    def make_ca(self, name, key_type="ed25519"):
        key = self.path("keys", f"ca-{name}")
        self.run([SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", f"{name} CA", "-f", key],
                 check=True)
        return Ca(name, key)

    def make_user_key(self, name, key_type="ed25519"):
        key = self.path("keys", f"user-{name}")
        self.run([SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", name, "-f", key],
                 check=True)
        return UserKey(name, key)

    def sign(self, key, ca, principals=None, validity="-5m:+1h", options=(), serial=None,
             key_id=None, host=False, name=None):
        """Signs key with ca (ssh-keygen -s) into certs/<name>-cert.pub.

        The certificate is NOT put beside the private key (ssh would load it on its own);
        principals default to the key's name plus the target login.
        """
        if principals is None:
            principals = [key.name, self.login]
        self._certs += 1
        name = name or f"{key.name}-{ca.name}-{self._certs}"
        certs = self.path("certs", "x")
        base = os.path.join(os.path.dirname(certs), name)
        shutil.copyfile(key.pub, base + ".pub")
        argv = [SSH_KEYGEN, "-q", "-s", ca.key, "-I", key_id or f"{key.name}@sso"]
        if principals:
            argv += ["-n", ",".join(principals)]
        if validity:
            argv += ["-V", validity]
        if serial is not None:
            argv += ["-z", str(serial)]
        for opt in options:
            argv += ["-O", opt]
        if host:
            argv.append("-h")
        argv.append(base + ".pub")
        self.run(argv, check=True)
        os.unlink(base + ".pub")
        return Cert(base + "-cert.pub", key)

    def make_krl(self, name, ca=None, serials=(), key_ids=(), keys=()):
        """A binary KRL (ssh-keygen -k): serials and key ids of certificates by `ca`, and
        whole public keys (e.g. a CA key) in `keys`."""
        krl = self.path(f"{name}.krl")
        spec = self.path(f"{name}.spec")
        with open(spec, "w") as f:
            for s in serials:
                f.write(f"serial: {s}\n")
            for i in key_ids:
                f.write(f"id: {i}\n")
            for k in keys:
                f.write(f"key: {read_text(k).strip()}\n")
        argv = [SSH_KEYGEN, "-k", "-f", krl]
        if ca is not None:
            argv += ["-s", ca.pub]
        argv.append(spec)
        self.run(argv, check=True)
        return krl

    def start_agent(self, name="agent", provider=None, agent_env=None):
        """A private ssh-agent; with `provider` (a real path) it may load that PKCS#11 module
        or SecurityKeyProvider (-P), and runs with agent_env (e.g. SOFTHSM2_CONF)."""
        sock = self.path(name, "agent.sock")
        log = self.path(name, "agent.log")
        argv = ["ssh-agent", "-D", "-a", sock]
        if provider:
            argv += ["-P", provider]
        with open(log, "w") as err:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err,
                                     env=self.client_env(agent_env), start_new_session=True)
        agent = Agent(name, popen, log, sock, self, provider, agent_env)
        self.processes.append(agent)
        wait_until(lambda: os.path.exists(sock) or not agent.alive(), 5, "ssh-agent")
        if not agent.alive():
            raise HarnessError(f"ssh-agent exited:\n{agent.log_text()}")
        return agent

    def start_agent_proxy(self, upstream, mode, name=None):
        """tests/e2e/agent_proxy.py in `mode` (a fault it injects, see its docstring) in front
        of the agent `upstream` (an Agent or a socket path); returns the proxy's socket path,
        for ForwardAgent."""
        upstream = upstream.sock if isinstance(upstream, Agent) else upstream
        name = name or f"proxy-{mode}"
        sock = self.path(name, "agent.sock")
        log = self.path(name, "proxy.log")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent_proxy.py")
        with open(log, "w") as err:
            popen = subprocess.Popen([sys.executable, script, "--listen", sock, "--upstream",
                                      upstream, "--mode", mode], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        proc = Process(f"agent proxy {name}", popen, log)
        self.processes.append(proc)
        line = popen.stdout.readline().decode()
        if "ready" not in line:
            raise HarnessError(f"agent proxy {name} did not start:\n{read_text(log)}")
        return sock

    # -- second factor: keys, agents, enrollment ------------------------------------------

    def make_sk_key(self, name, key_type="ecdsa-sk", provider=SK_DUMMY, options=(),
                    provider_env=None):
        """A FIDO2 key (ssh-keygen -t ecdsa-sk|ed25519-sk -w PROVIDER)."""
        key = self.path("keys", f"sk-{name}")
        argv = [SSH_KEYGEN, "-q", "-t", key_type, "-w", provider, "-N", "", "-C", name,
                "-f", key]
        for opt in options:
            argv += ["-O", opt]
        self.run(argv, check=True, extra_env=provider_env)
        return UserKey(name, key)

    def start_sk_agent(self, name, key, provider=SK_DUMMY, control=None):
        """An ssh-agent holding the sk key `key` through `provider`; with `control`, the test
        authenticator's control file (its environment reaches ssh-sk-helper)."""
        agent_env = {"TG_TEST_SK_CONTROL": control} if control else None
        agent = self.start_agent(name, provider=os.path.realpath(provider), agent_env=agent_env)
        agent.add_sk(key)
        return agent

    def test_sk_setup(self, world, name, key_type="ecdsa-sk", user="alice", pin_required=False,
                      **control):
        """A FIDO2 key on our test authenticator in its own agent, enrolled for `user` at the
        world's gateway, and an ssh_config forwarding that agent. Returns (control file path,
        ssh_config path); rewrite the control file with write_sk_control to change what the
        authenticator does next."""
        provider = test_sk_path()
        ctl = self.path(name, "control")
        write_sk_control(ctl, **(control or {"flags": 1, "counter": "increment"}))
        sk = self.make_sk_key(f"{user}-{name}", key_type, provider=provider,
                              provider_env={"TG_TEST_SK_CONTROL": ctl})
        agent = self.start_sk_agent(f"agent-{name}", sk, provider=provider, control=ctl)
        self.enroll(world.gw, user, sk, "fido2", label=name, pin_required=pin_required)
        config = self.client_config(world.gw, world.key, world.cert, target=world.target,
                                    forward_agent=agent, name=f"ssh_config-{name}")
        return ctl, config

    def softhsm_token(self, d, label, pin, key_label, key_type="EC:prime256v1"):
        """A SoftHSM2 token in directory d (its own softhsm2.conf and tokens/), initialised with
        `label` and `pin`, holding one key pair made on it (`key_label`, id 01). Returns
        SimpleNamespace(dir, conf, tokens, env) where env = {"SOFTHSM2_CONF": conf}."""
        tokens = os.path.join(d, "tokens")
        os.makedirs(tokens, exist_ok=True)
        conf = os.path.join(d, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
        hsm_env = {"SOFTHSM2_CONF": conf}
        self.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin",
                  "87654321", "--pin", pin], check=True, extra_env=hsm_env)
        self.run(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--login", "--pin", pin,
                  "--keypairgen", "--key-type", key_type, "--id", "01", "--label", key_label],
                 check=True, extra_env=hsm_env)
        return types.SimpleNamespace(dir=d, conf=conf, tokens=tokens, env=hsm_env)

    def gateway_ca_token(self, pin):
        """The gateway's CA for terminating mode: a P-256 key "ca" in a SoftHSM2 token "gwca"
        under <tmp>/softhsm, its PIN in a 0600 file. SOFTHSM2_CONF is set in this process's
        environment, so that the gateways started afterwards find the token. Returns
        SimpleNamespace(dir, tokens, module, pin_file, config) where config is the [ca] section."""
        hsm = self.softhsm_token(self.path("softhsm"), "gwca", pin, "ca")
        os.environ["SOFTHSM2_CONF"] = hsm.conf
        pin_file = os.path.join(hsm.dir, "pin")
        with open(os.open(pin_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(pin + "\n")
        config = (f'[ca]\npkcs11_uri = "pkcs11:token=gwca;object=ca;type=private"\n'
                  f'pkcs11_module = "{SOFTHSM_MODULE}"\npin_file = "{pin_file}"\n')
        return types.SimpleNamespace(dir=hsm.dir, tokens=hsm.tokens, module=SOFTHSM_MODULE,
                                     pin_file=pin_file, config=config)

    def trust_gateway_ca(self, gateway, target):
        """Adds the line `touchgate ca pubkey` prints to the target sshd's TrustedUserCAKeys
        file (read at each login); returns the command's Result (checked by the caller)."""
        r = self.touchgate(gateway, "ca", "pubkey")
        if r.returncode == 0:
            with open(os.path.join(os.path.dirname(target.log), "trusted_user_ca_keys.pub"),
                      "a") as f:
                f.write(r.stdout)
        return r

    def start_piv_agent(self, name="piv", key_type="EC:prime256v1", pin="123456"):
        """A SoftHSM2 token as the PIV card: one key pair generated on it, the token loaded into
        a private ssh-agent with ssh-add -s (the PIN fed through SSH_ASKPASS). Returns
        (agent, pub_path)."""
        d = os.path.dirname(self.path(name, "softhsm", "x"))
        hsm_env = self.softhsm_token(d, name, pin, "piv-auth", key_type).env
        module = os.path.realpath(SOFTHSM_MODULE)
        agent = self.start_agent(name, provider=module, agent_env=hsm_env)
        askpass = os.path.join(d, "askpass.sh")
        with open(askpass, "w") as f:
            f.write(f"#!/bin/sh\necho {pin}\n")
        os.chmod(askpass, 0o700)
        r = self.run(["ssh-add", "-s", module],
                     extra_env={"SSH_AUTH_SOCK": agent.sock, "SSH_ASKPASS": askpass,
                                "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0", **hsm_env})
        if r.returncode != 0:
            raise HarnessError(f"ssh-add -s failed:\n{r}")
        r = self.run(["ssh-add", "-L"], extra_env={"SSH_AUTH_SOCK": agent.sock}, check=True)
        pub = os.path.join(d, "piv.pub")
        with open(pub, "w") as f:
            f.write(r.stdout.splitlines()[0] + "\n")
        return agent, pub

    def touchgate(self, gateway, *args, timeout=30, input=None):
        """Runs the admin CLI `touchgate -f <gateway's config> ARGS`; returns a Result."""
        config = gateway.config if isinstance(gateway, Gateway) else gateway
        return self.run([touchgate_path(), "-f", config, *args], timeout=timeout, input=input)

    def enroll(self, gateway, user, pub, kind, label=None, pin_required=False):
        """touchgate keys add; raises unless it succeeds."""
        pub = pub.pub if isinstance(pub, UserKey) else pub
        args = ["keys", "add", "--user", user, "--kind", kind]
        if label:
            args += ["--label", label]
        if pin_required:
            args.append("--pin-required")
        args.append(pub)
        r = self.touchgate(gateway, *args)
        if r.returncode != 0:
            raise HarnessError(f"touchgate keys add failed:\n{r}")
        return r

    def keys_json(self, gateway, user=None):
        args = ["keys", "list", "--json"] + (["--user", user] if user else [])
        r = self.touchgate(gateway, *args)
        if r.returncode != 0:
            raise HarnessError(f"touchgate keys list failed:\n{r}")
        return json.loads(r.stdout)

    def touch_agent(self, gateway, user="alice", name="touch"):
        """The default second factor of a scenario: a plain ed25519 key in a private ssh-agent,
        enrolled for `user` as a PIV-kind key (no counter, no provider)."""
        key = self.make_user_key(f"{name}-{user}")
        agent = self.start_agent(name)
        agent.add(key)
        self.enroll(gateway, user, key, "piv", label=name)
        return agent

    def touch_agent_for(self, gateway, user):
        """The default touch agent of `user` at `gateway` (see auto_touch)."""
        key = (gateway.config, user)
        if key not in self._touch_agents:
            gw_name = os.path.basename(os.path.dirname(gateway.config))
            self._touch_agents[key] = self.touch_agent(gateway, user,
                                                       name=f"touch-{gw_name}-{user}")
        return self._touch_agents[key]

    # -- the target: a real sshd -----------------------------------------------------------

    def start_target(self, cas, name="db1", attempts=3, sshd_extra=""):
        """Starts /usr/sbin/sshd on 127.0.0.1 trusting `cas`; waits until it listens.
        sshd_extra: more sshd_config lines (e.g. "AcceptEnv LC_*\n")."""
        d = self.path(name, "x")
        d = os.path.dirname(d)
        hostkey = os.path.join(d, "ssh_host_ed25519_key")
        self.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", hostkey], check=True)
        trusted = os.path.join(d, "trusted_user_ca_keys.pub")
        with open(trusted, "w") as f:
            for ca in cas:
                f.write(read_text(ca.pub))
        try:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        except PermissionError:
            pass
        for attempt in range(attempts):
            port = free_port()
            config = os.path.join(d, "sshd_config")
            with open(config, "w") as f:
                f.write(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {hostkey}
PidFile {d}/sshd.pid
UsePAM no
StrictModes no
TrustedUserCAKeys {trusted}
AuthorizedKeysFile none
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel VERBOSE
{sshd_extra}""")
            log = os.path.join(d, f"sshd-{attempt}.log")
            with open(log + ".stderr", "w") as err:
                popen = subprocess.Popen([SSHD, "-D", "-f", config, "-E", log],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, start_new_session=True)
            target = Target(f"sshd {name}", popen, log, port, name)
            self.processes.append(target)
            listening = f"Server listening on 127.0.0.1 port {port}"
            wait_until(lambda: listening in target.log_text() or not target.alive(), 10,
                       f"sshd {name} to listen")
            if target.alive():
                return target
            text = target.log_text() + read_text(log + ".stderr")
            if "Address already in use" not in text:
                raise HarnessError(f"sshd {name} exited at start:\n{text}")
        raise HarnessError(f"sshd {name}: no free port after {attempts} attempts")

    # -- the gateway -----------------------------------------------------------------------

    def write_gateway_config(self, cas, targets=(), revoked=None, max_cert_lifetime=None,
                             login_grace_time="30s", connect_timeout="10s",
                             drain_timeout="30s", clock_skew="60s", listen=(), extra="",
                             name="gw", named_cas=False, mfa_extra="", rules=None,
                             server_extra=""):
        """Writes <name>/touchgate.toml; targets are Target objects or (name, address) pairs.

        rules: the policy as TOML text ([[group]]s and [[rule]]s); None gives everyone every
        configured target with any touch (the scenarios that are not about the policy).
        server_extra: more [server] lines ("max_startups = 2").
        """
        config = self.path(name, "touchgate.toml")
        lines = ["[server]",
                 f"name = {toml_str(name)}",
                 "listen = [" + ", ".join(toml_str(a) for a in listen) + "]",
                 'host_keys = ["hostkey"]',
                 'state_dir = "state"',
                 f"login_grace_time = {toml_str(login_grace_time)}",
                 f"connect_timeout = {toml_str(connect_timeout)}",
                 f"drain_timeout = {toml_str(drain_timeout)}",
                 *([server_extra] if server_extra else []),
                 "",
                 "[trust]"]
        if named_cas:
            lines.append("user_ca_keys = [" + ", ".join(
                f"{{ name = {toml_str(ca.name)}, path = {toml_str(ca.pub)} }}"
                for ca in cas) + "]")
        else:
            lines.append("user_ca_keys = [" + ", ".join(toml_str(ca.pub) for ca in cas) + "]")
        if revoked:
            lines.append(f"revoked_keys = {toml_str(revoked)}")
        if max_cert_lifetime:
            lines.append(f"max_cert_lifetime = {toml_str(max_cert_lifetime)}")
        lines.append(f"clock_skew = {toml_str(clock_skew)}")
        for t in targets:
            tname, address = (t.target_name, t.address) if isinstance(t, Target) else t
            lines += ["", "[[target]]", f"name = {toml_str(tname)}",
                      f"address = {toml_str(address)}", 'tags = ["e2e"]']
        if mfa_extra:
            lines += ["", "[mfa]", mfa_extra]
        if rules is None:
            rules = ('[[rule]]\nid = "e2e-everyone"\nprincipals = ["*"]\ntargets = ["*"]\n')
        if rules:
            lines += ["", rules]
        if extra:
            lines += ["", extra]
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        return config

    def start_gateway(self, cas, targets=(), ipv6=False, name="gw", attempts=3,
                      ready_timeout=15, **config_args):
        """Writes a config, starts `touchgated -f CONFIG`, waits for event=ready in stderr.

        Listens on a fresh 127.0.0.1 port (and [::1] when ipv6); a start that fails because a
        port was taken meanwhile is retried with other ports.
        """
        binary = touchgated_path()
        for attempt in range(attempts):
            port = free_port()
            port6 = free_port("::1") if ipv6 else None
            listen = [f"127.0.0.1:{port}"] + ([f"[::1]:{port6}"] if ipv6 else [])
            config = self.write_gateway_config(cas, targets, listen=listen, name=name,
                                               **config_args)
            log = self.path(name, f"touchgated-{attempt}.log")
            with open(log + ".stdout", "w") as out, open(log, "w") as err:
                popen = subprocess.Popen([binary, "-f", config], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, cwd=os.path.dirname(config),
                                         start_new_session=True)
            gw = Gateway(f"touchgated {name}", popen, log, config, port, port6)
            self.processes.append(gw)
            wait_until(lambda: re.search(r"\bevent=ready\b", gw.log_text()) or not gw.alive(),
                       ready_timeout, f"event=ready from touchgated {name}")
            if gw.alive():
                return gw
            text = gw.log_text()
            if not re.search(r"in use|EADDRINUSE|\bbind\b", text, re.I):
                raise HarnessError(f"touchgated exited at start with status "
                                   f"{gw.popen.returncode}:\n{text}")
        raise HarnessError(f"touchgated: no free port after {attempts} attempts")

    def world(self, cas=(), ipv6=False, touch_agent=True, **gateway_args):
        """The usual world: CA "sso" (plus `cas`, also trusted), user key "alice" with a valid
        certificate (principals alice and the target login), sshd "db1" trusting all of them,
        touchgated trusting all of them with db1 as its only target, and a client config."""
        ca = self.make_ca("sso")
        key = self.make_user_key("alice")
        cert = self.sign(key, ca)
        all_cas = [ca] + list(cas)
        target = self.start_target(all_cas)
        gw = self.start_gateway(all_cas, targets=[target], ipv6=ipv6, **gateway_args)
        self.auto_touch = touch_agent
        touch = self.touch_agent_for(gw, "alice") if touch_agent else None
        config = self.client_config(gw, key, cert, target=target, name="ssh_config")
        return types.SimpleNamespace(ca=ca, key=key, cert=cert, target=target, gw=gw,
                                     config=config, touch=touch)

    def login_works(self, world, cert=None, dest="target"):
        """A real `ssh -J gw target` with `cert` (default: the world's valid one) runs a
        command on the target; returns the Result after asserting its output."""
        config = world.config
        if cert is not None:
            config = self.client_config(world.gw, cert.key, cert, target=world.target)
        r = self.ssh(config, dest, "echo hello-from-target; id -un")
        assert_ok(r, f"hello-from-target\n{self.login}\n")
        return r

    # -- the client ------------------------------------------------------------------------

    def client_config(self, gateway, key, cert=None, user="alice", target=None,
                      target_key=None, target_cert=None, name=None, gw_extra="", agent=None,
                      forward_agent="default", target_extra=""):
        """Writes an ssh_config with `Host gw` (and `gw6` when the gateway listens on [::1]),
        `Host target` (the sshd's exact 127.0.0.1:port), `Host db1` (no HostName: the gateway
        resolves the name) and returns its path.

        The target login uses target_key/target_cert, by default the same key and certificate
        (end-to-end authentication through the jump; the certificate names the login). With
        `agent`, the gateway login uses only that agent's identities (key may then be None).
        forward_agent: an Agent (or socket path) the gateway's Host block forwards
        (ForwardAgent <socket>) for the touch; None for no forwarding; "default" for the
        user's default touch agent at this gateway (unless auto_touch is off).
        """
        if forward_agent == "default":
            forward_agent = self.touch_agent_for(gateway, user) if self.auto_touch else None
        if isinstance(forward_agent, Agent):
            forward_agent = forward_agent.sock
        name = name or f"ssh_config-{len(os.listdir(self.dir))}"
        path = self.path(name)
        target_key = target_key or key
        target_cert = target_cert if target_cert is not None else cert

        def identity(k, c):
            if k is None:
                return f"  IdentityAgent {agent.sock}\n  IdentityFile none\n  IdentitiesOnly no\n"
            s = f"  IdentityFile {k.key}\n"
            if c is not None:
                s += f"  CertificateFile {c.path}\n"
            return s

        text = f"Host gw\n  HostName {gateway.host}\n  Port {gateway.port}\n  User {user}\n"
        gw_identity = identity(None, None) if agent is not None else identity(key, cert)
        if forward_agent:
            gw_identity += f"  ForwardAgent {forward_agent}\n"
        text += gw_identity + gw_extra
        if getattr(gateway, "port6", None):
            text += f"\nHost gw6\n  HostName ::1\n  Port {gateway.port6}\n  User {user}\n"
            text += gw_identity + gw_extra
        if target is not None:
            text += (f"\nHost target\n  HostName {target.host}\n  Port {target.port}\n"
                     f"  User {self.login}\n" + identity(target_key, target_cert) + target_extra)
        text += f"\nHost db1 db2 nosuch\n  User {self.login}\n" + identity(target_key, target_cert)
        # LogLevel ERROR hides "Permanently added ... to the list of known hosts" (INFO) but
        # still shows "Received disconnect from ...: 11: <reason>" (logged at ERROR).
        text += """
Host *
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  UpdateHostKeys no
  LogLevel ERROR
  ConnectTimeout 10
  ControlMaster no
  ControlPath none
  ForwardAgent no
"""
        with open(path, "w") as f:
            f.write(text)
        return path

    def ssh_argv(self, config, dest, command, jump="gw"):
        argv = [SSH, "-F", config]
        if jump:
            argv += ["-J", jump]
        argv.append(dest)
        if command is not None:
            argv.append(command)
        return argv

    def ssh(self, config, dest, command, jump="gw", timeout=30, input=None, binary=False,
            extra_env=None):
        """`ssh -F config -J jump dest command`; returns a Result."""
        return self.run(self.ssh_argv(config, dest, command, jump), timeout=timeout,
                        input=input, binary=binary, extra_env=extra_env)


# -- assertions on what the user sees --------------------------------------------------------

def check(condition, message, *results):
    if not condition:
        detail = "\n".join(str(r) for r in results)
        raise AssertionError(f"{message}\n{detail}" if detail else message)


def assert_ok(result, stdout=None):
    check(result.returncode == 0, "expected exit status 0", result)
    if stdout is not None:
        check(result.stdout == stdout, f"expected stdout {stdout!r}", result)


def assert_refused(result, code, gateway=None):
    """The client got a disconnect from the gateway naming `code`; the gateway is still up and
    logged the code."""
    check(result.returncode == 255, f"expected exit status 255 for {code}", result)
    check(re.search(DISCONNECT_RE.format(code=re.escape(code)), result.stderr),
          f"expected 'Received disconnect ... touchgate: ... ({code})' in the client's stderr",
          result)
    check(result.stdout == "", "expected no output from the target", result)
    if gateway is not None:
        check(gateway.alive(), f"touchgated died after refusing with {code}")
        gateway.wait_for_log(rf"\bcode={re.escape(code)}\b")


def assert_permission_denied(result, gateway=None):
    check(result.returncode == 255, "expected exit status 255", result)
    check("Permission denied (publickey)" in result.stderr,
          "expected 'Permission denied (publickey)' in the client's stderr", result)
    check(result.stdout == "", "expected no output from the target", result)
    if gateway is not None:
        check(gateway.alive(), "touchgated died after refusing a login")


def check_audit_chain(records_dir):
    """Recomputes every audit record's hash, link and seq (docs/audit-format.md, section 2);
    returns how many records there are."""
    prev = "0" * 64
    seq = 0
    for name in sorted(os.listdir(records_dir)):
        if not (name.startswith("audit-") and name.endswith(".jsonl")):
            continue
        with open(os.path.join(records_dir, name), "rb") as f:
            for raw in f:
                check(raw.endswith(b"\n"), f"{name}: a record without its newline")
                line = raw.rstrip(b"\n")
                cut = line.rindex(b',"hash":"')
                r = json.loads(line)
                check(r["hash"] == hashlib.sha256(line[:cut]).hexdigest(),
                      f"record {r['seq']}: hash does not match its bytes")
                check(r["prev"] == prev, f"record {r['seq']}: prev does not link")
                check(r["seq"] == seq + 1, f"record {r['seq']}: seq does not follow {seq}")
                prev, seq = r["hash"], r["seq"]
    return seq


def scenario(main):
    """Runs main() as the scenario; exit status 0 on success, 1 on failure (meson test)."""
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the report is the point
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
