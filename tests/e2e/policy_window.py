#!/usr/bin/env python3
"""A session allowed by a rule with a time window ends when the window closes: the rule's hours
end at the next whole minute (UTC); a session running then is closed with policy_window_closed
and the client is told which rule and window; a new connection after that is denied."""

import datetime
import time

import harness
from harness import assert_ok, assert_refused, check


def hhmm(minutes):
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def main():
    with harness.Env("policy_window", deadline=150) as env:
        now = datetime.datetime.now(datetime.timezone.utc)
        if now.second > 45:  # leave the session time to start before the window closes
            time.sleep(61 - now.second)
            now = datetime.datetime.now(datetime.timezone.utc)
        minute = now.hour * 60 + now.minute
        end = hhmm(minute + 1)
        window = f"{hhmm(minute - 10)}-{'24:00' if end == '00:00' else end}"
        rules = f"""
[[rule]]
id = "office-hours"
principals = ["alice"]
targets = ["db1"]
hours = ["{window}"]
timezone = "UTC"
"""
        w = env.world(rules=rules)
        assert_ok(env.ssh(w.config, "target", "echo in-window"), "in-window\n")
        r = env.ssh(w.config, "target", "echo started; sleep 120; echo must-not-print",
                    timeout=100)
        check(r.returncode != 0 and "started" in r.stdout and "must-not-print" not in r.stdout,
              "expected the session to end when the window closed", r)
        check("policy_window_closed" in r.stderr and f"only during every day {window} UTC"
              in r.stderr, "expected the client to be told which window closed", r)
        w.gw.wait_for_log(r"event=channel_failed .*code=policy_window_closed")
        r = env.ssh(w.config, "target", "echo must-not-run")
        assert_refused(r, "policy_no_match", w.gw)


if __name__ == "__main__":
    harness.scenario(main)
