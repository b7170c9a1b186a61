#!/usr/bin/env python3
"""A certificate signed by a CA the gateway does not trust is refused with cert_untrusted_ca,
even though the target itself would accept it; certificates of both trusted CAs get through."""

import harness
from harness import assert_refused


def main():
    with harness.Env("cert_untrusted_ca") as env:
        ca = env.make_ca("sso")
        second = env.make_ca("sso2")
        rogue = env.make_ca("rogue")
        key = env.make_user_key("alice")
        # The target trusts the rogue CA too: only the gateway can stop this certificate.
        target = env.start_target([ca, second, rogue])
        gw = env.start_gateway([ca, second], targets=[target], named_cas=True)

        bad = env.sign(key, rogue)
        r = env.ssh(env.client_config(gw, key, bad, target=target), "target", "echo no")
        assert_refused(r, "cert_untrusted_ca", gw)

        for trusted in (ca, second):
            cert = env.sign(key, trusted)
            r = env.ssh(env.client_config(gw, key, cert, target=target), "target",
                        f"echo signed-by-{trusted.name}")
            harness.assert_ok(r, f"signed-by-{trusted.name}\n")


if __name__ == "__main__":
    harness.scenario(main)
