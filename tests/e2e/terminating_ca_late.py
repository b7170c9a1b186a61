#!/usr/bin/env python3
"""The gateway's CA token is not there when touchgated starts (its SoftHSM2 token directory is
moved away): the gateway starts anyway, ProxyJump works, a terminating-mode login is refused with
a plain reason naming the missing token; once the token is back, the next login after the retry
interval (5 s) works, without a restart, and the log says the key was opened on retry."""

import os
import time

import harness
from harness import assert_ok, check


def main():
    with harness.Env("terminating_ca_late", deadline=80) as env:
        ca = env.make_ca("sso")
        key = env.make_user_key("alice")
        cert = env.sign(key, ca)
        token = env.gateway_ca_token("tg-pin-Lt4")
        target = env.start_target([ca])
        away = token.tokens + ".away"
        os.rename(token.tokens, away)
        os.makedirs(token.tokens)
        rules = f'''[[rule]]
id = "ops"
principals = ["alice"]
targets = ["db1"]
actions = ["jump", "exec"]
remote_user = "{env.login}"
'''
        extra = token.config + target.pinned_toml("db1")
        gw = env.start_gateway([ca], rules=rules, extra=extra)
        gw.wait_for_log(r"event=ca_unavailable code=pkcs11_token_\S+ .*tried again")
        agent = env.touch_agent_for(gw, "alice")
        config = env.client_config(gw, key, cert, target=target, name="ssh_config")
        agent_env = {"SSH_AUTH_SOCK": agent.sock}

        # ProxyJump does not need the CA.
        assert_ok(env.ssh(config, "db1", "echo via-jump"), "via-jump\n")
        # Terminating mode: refused with the reason, the gateway stays up.
        r = env.ssh(config, "gw", "db1 echo must-not-run", jump=None, extra_env=agent_env)
        check(r.returncode != 0 and "must-not-run" not in r.stdout
              and "pkcs11_token_" in r.stderr and "gwca" in r.stderr,
              "expected the login to db1 refused, naming the missing token", r)

        # `ssh gw` lists no exec while the key is not open, and says why.
        r = env.ssh(config, "gw", None, jump=None, extra_env=agent_env)
        check("its CA key is not open now" in r.stdout, "the listing must say why exec is missing",
              r)

        # The token comes back; the gateway opens it at the next login after the interval.
        os.rmdir(token.tokens)
        os.rename(away, token.tokens)
        r = env.trust_gateway_ca(gw, target)
        check(r.returncode == 0, "touchgate ca pubkey", r)
        deadline = time.monotonic() + 20
        while True:
            r = env.ssh(config, "gw", "db1 echo via-gateway", jump=None, extra_env=agent_env)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert_ok(r, "via-gateway\n")
        gw.wait_for_log(r"event=ca_ready key=\S+.*note=\"opened on retry\"")
        r = env.ssh(config, "gw", None, jump=None, extra_env=agent_env)
        check("not open now" not in r.stdout and "exec" in r.stdout,
              "with the key open, the listing offers exec", r)


if __name__ == "__main__":
    harness.scenario(main)
