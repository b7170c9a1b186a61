#!/usr/bin/env python3
"""A HOST certificate (ssh-keygen -h) from the trusted CA, offered as a user identity, is refused
with cert_not_user_certificate.

The ssh client itself ignores a host certificate given as CertificateFile ("not a user
certificate"), but offers one held by an agent: that is how it reaches the gateway here.
"""

import harness
from harness import assert_refused


def main():
    with harness.Env("host_certificate") as env:
        w = env.world()
        host_cert = env.sign(w.key, w.ca, host=True)
        agent = env.start_agent()
        agent.add(w.key, host_cert)
        config = env.client_config(w.gw, None, None, target=w.target, target_key=w.key,
                                   target_cert=w.cert, agent=agent)
        r = env.ssh(config, "target", "echo no")
        assert_refused(r, "cert_not_user_certificate", w.gw)
        env.login_works(w)


if __name__ == "__main__":
    harness.scenario(main)
