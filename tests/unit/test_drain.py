"""The quiet-period drain on a fake clock: serve while calls come, within the minimum and maximum."""

import pytest

from sidecar.core.clock import FakeClock
from sidecar.drain.quiet_period import DrainPolicy, QuietPeriod

POLICY = DrainPolicy(quiet=5.0, minimum=10.0, maximum=100.0, poll=0.25)


def run(drain: QuietPeriod, clock: FakeClock, arrivals: list[float]) -> float:
    """Step the drain as its owner does, with calls arriving at the given times; when it ends."""
    calls, pending = 0, sorted(arrivals)
    while (wait := drain.wait(calls)) > 0:
        clock.advance(wait)
        while pending and pending[0] <= clock.now:
            pending.pop(0)
            calls += 1
    return clock.now - drain.began


def test_an_idle_instance_stops_at_the_minimum():
    clock = FakeClock(1000.0)
    assert run(QuietPeriod(POLICY, clock, calls=42), clock, []) == pytest.approx(10.0)


def test_serves_until_calls_have_stopped_for_the_quiet_period():
    clock = FakeClock(1000.0)
    drain = QuietPeriod(POLICY, clock, calls=0)
    # A caller whose caches keep this instance for 40 s calls every 100 ms until then.
    arrivals = [1000.0 + 0.1 * k for k in range(1, 400)]
    took = run(drain, clock, arrivals)
    # The last call came at 39.9 s; it is seen at the next poll, and 5 s of quiet follow.
    assert 39.9 + 5.0 <= took <= 39.9 + 0.25 + 5.0 + 1e-9
    assert drain.arrived == 399 and not drain.cut_short
    assert "399 calls arrived" in drain.summary()


def test_a_late_call_restarts_the_quiet_period():
    clock = FakeClock()
    drain = QuietPeriod(POLICY, clock, calls=0)
    # Quiet from 1 s to 14 s is already past the minimum; but a call came at 9 s.
    took = run(drain, clock, [1.0, 9.0])
    assert took == pytest.approx(14.0, abs=0.26)


def test_the_maximum_ends_the_drain_while_calls_still_come_and_says_so():
    clock = FakeClock()
    drain = QuietPeriod(POLICY, clock, calls=0)
    took = run(drain, clock, [0.5 * k for k in range(1, 400)])  # calls for 200 s
    assert took == pytest.approx(100.0)
    assert drain.cut_short
    assert "still pick this instance after the maximum" in drain.summary()


def test_a_fixed_delay_ignores_calls():
    clock = FakeClock()
    policy = DrainPolicy.fixed(7.0)
    assert run(QuietPeriod(policy, clock, calls=0), clock, [1.0, 6.9, 20.0]) == pytest.approx(7.0)
    assert policy.describe() == "for 7s"
    assert run(QuietPeriod(DrainPolicy.fixed(0.0), clock, calls=0), clock, [0.1]) == 0.0


def test_never_waits_longer_than_one_poll_between_looks():
    clock = FakeClock()
    drain = QuietPeriod(POLICY, clock, calls=0)
    assert drain.wait(0) == 0.25
    clock.advance(9.9)
    assert drain.wait(0) == pytest.approx(0.1)


def test_settings_that_cannot_be_met_are_refused():
    with pytest.raises(ValueError, match="minimum 20s is above the maximum 10s"):
        DrainPolicy(quiet=5.0, minimum=20.0, maximum=10.0)
    with pytest.raises(ValueError, match="must not be negative"):
        DrainPolicy(quiet=-1.0, minimum=0.0, maximum=1.0)


def test_the_policy_the_settings_make():
    from sidecar.config import load_config
    from sidecar.drain.settings import drain_policy

    def policy(*argv: str) -> DrainPolicy:
        return drain_policy(load_config(["--app-name", "a", "--model-address", "h:1", *argv], {}))

    # auto without a registry: Kubernetes removes a not-ready pod from Service endpoints in seconds.
    assert policy() == DrainPolicy(quiet=5.0, minimum=5.0, maximum=100.0)
    # auto with Eureka: at least one of our callers' registry refreshes, plus a margin.
    eureka = ("--eureka-url", "http://e:8761/eureka/")
    assert policy(*eureka) == DrainPolicy(quiet=5.0, minimum=35.0, maximum=100.0)
    assert policy(*eureka, "--registry-fetch-interval", "2m").minimum == 100.0  # never above the maximum
    assert policy("--drain-min-delay", "1s", "--drain-max-delay", "1m", "--drain-quiet-period", "2s") == (
        DrainPolicy(quiet=2.0, minimum=1.0, maximum=60.0)
    )
    assert policy("--drain-delay", "7s") == DrainPolicy.fixed(7.0)
