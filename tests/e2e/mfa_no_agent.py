#!/usr/bin/env python3
"""Without ForwardAgent the gateway cannot ask for a touch: `ssh -J` is refused with a message
that says exactly what to add to ~/.ssh/config, and no connection to the target is made."""

import re

import harness
from harness import assert_refused, check


def main():
    with harness.Env("mfa_no_agent") as env:
        w = env.world()
        config = env.client_config(w.gw, w.key, w.cert, target=w.target, forward_agent=None,
                                   name="ssh_config-noagent")
        r = env.ssh(config, "target", "echo must-not-run")
        assert_refused(r, "mfa_no_agent", w.gw)
        check("ForwardAgent yes" in r.stderr and "ssh -J does not pass -A" in r.stderr,
              "expected the ssh_config advice in the refusal", r)
        text = w.gw.log_text()
        check(not re.search(r"event=channel_open\b", text),
              "the gateway connected to the target before the second factor passed")
        # With the agent forwarded, the same user gets through.
        r = env.ssh(w.config, "target", "echo with-agent")
        harness.assert_ok(r, "with-agent\n")


if __name__ == "__main__":
    harness.scenario(main)
