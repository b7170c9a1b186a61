#!/usr/bin/env python3
"""A misbehaving forwarded agent (a fault-injecting proxy in front of a real ssh-agent): a
malformed answer (mfa_agent_malformed), a refusal to sign (mfa_agent_refused), an empty key
list (mfa_no_enrolled_key) and a corrupted signature (touch_sig_invalid) are each refused with
their own reason, never reaching the target, and the gateway keeps serving; junk key blobs
before the enrolled key are skipped."""

import os
import re
import subprocess

import harness
from harness import assert_ok, assert_refused, check

PROXY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent_proxy.py")


def start_proxy(env, upstream, mode):
    sock = env.path(f"proxy-{mode}", "agent.sock")
    log = env.path(f"proxy-{mode}", "proxy.log")
    with open(log, "w") as err:
        popen = subprocess.Popen(["python3", PROXY, "--listen", sock, "--upstream", upstream,
                                  "--mode", mode], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    proc = harness.Process(f"agent proxy {mode}", popen, log)
    env.processes.append(proc)
    line = popen.stdout.readline().decode()
    check("ready" in line, f"agent proxy {mode} did not start: {harness.read_text(log)}")
    return sock


def main():
    with harness.Env("mfa_agent_faults") as env:
        w = env.world()
        upstream = w.touch.sock
        cases = [("garbage", "mfa_agent_malformed"), ("refuse-sign", "mfa_agent_refused"),
                 ("no-identities", "mfa_no_enrolled_key"), ("corrupt-sign", "touch_sig_invalid")]
        for mode, code in cases:
            sock = start_proxy(env, upstream, mode)
            config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=sock,
                                       name=f"ssh_config-{mode}")
            r = env.ssh(config, "target", "echo must-not-run")
            assert_refused(r, code, w.gw)
        check(not re.search(r"event=channel_open\b", w.gw.log_text()),
              "the gateway connected to the target without a verified touch")

        sock = start_proxy(env, upstream, "extra-identities")
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=sock,
                                   name="ssh_config-extra")
        assert_ok(env.ssh(config, "target", "echo skipped-junk"), "skipped-junk\n")


if __name__ == "__main__":
    harness.scenario(main)
