"""The resilience order of egress calls, with a fake clock, seeded RNG and scripted endpoint answers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from sidecar.breaker.breaker import BreakerConfig
from sidecar.core.clock import FakeClock
from sidecar.core.deadline import Deadline
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.discovery.endpoint import Endpoint, snapshot
from sidecar.discovery.static_file import StaticDiscovery
from sidecar.egress.policy import EgressPolicies, RetryConfig, ServicePolicy
from sidecar.egress.router import AttemptResult, EgressRouter
from sidecar.outlier.ejector import OutlierConfig
from sidecar.retry.budget import BudgetConfig


def make(
    policy: ServicePolicy, n: int = 3, rng: random.Random | None = None
) -> tuple[EgressRouter, FakeClock]:
    clock = FakeClock(100.0)
    eps = tuple(Endpoint(app="OCR", instance_id=f"i{k}", host="h", http_port=k, grpc_port=k)
                for k in range(n))
    discovery = StaticDiscovery(snapshot({"OCR": eps}, 1))

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    router = EgressRouter(discovery, EgressPolicies(policy), clock=clock, rng=rng or random.Random(1),
                          sleep=sleep)
    return router, clock


def script(answers: dict[str, Code], log: list[str], clock: FakeClock, took: float = 0.01):
    async def attempt(endpoint: Endpoint, timeout: float) -> AttemptResult:
        log.append(endpoint.instance_id)
        clock.advance(took)
        return AttemptResult(answers.get(endpoint.instance_id, Code.OK))
    return attempt


RR = ServicePolicy(balancer="round_robin", retry=RetryConfig(max_attempts=3))


async def test_unknown_service_fails_fast_naming_it():
    router, clock = make(RR)
    with pytest.raises(SidecarError) as e:
        await router.call("nope", Deadline.after(1, clock), script({}, [], clock))
    assert e.value.code is Code.UNAVAILABLE and '"nope"' in e.value.message
    assert "NOPE" not in router.routes


async def test_unavailable_is_retried_on_another_instance():
    router, clock = make(RR)
    log: list[str] = []
    result = await router.call("ocr", Deadline.after(5, clock),
                               script({"i0": Code.UNAVAILABLE}, log, clock))
    assert result.code is Code.OK
    assert log[0] == "i0" and log[1] != "i0"


@pytest.mark.parametrize("code", [Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.INTERNAL,
                                  Code.DEADLINE_EXCEEDED])
async def test_non_retryable_outcomes_are_returned_as_they_are(code):
    router, clock = make(RR)
    log: list[str] = []
    result = await router.call("ocr", Deadline.after(5, clock), script({"i0": code}, log, clock))
    assert (result.code, log) == (code, ["i0"])


async def test_a_committed_stream_is_never_retried():
    router, clock = make(RR)
    log: list[str] = []

    async def attempt(endpoint: Endpoint, timeout: float) -> AttemptResult:
        log.append(endpoint.instance_id)
        return AttemptResult(Code.UNAVAILABLE, committed=True)

    result = await router.call("ocr", Deadline.after(5, clock), attempt)
    assert result.code is Code.UNAVAILABLE and len(log) == 1


async def test_no_retry_that_cannot_finish_within_the_deadline():
    policy = ServicePolicy(balancer="round_robin",
                           retry=RetryConfig(max_attempts=5, base_backoff=0.2, max_backoff=0.2))
    router, clock = make(policy)
    log: list[str] = []
    down = {f"i{k}": Code.UNAVAILABLE for k in range(3)}
    await router.call("ocr", Deadline.after(0.05, clock), script(down, log, clock))
    assert len(log) <= 2  # a backoff longer than what remains is not slept


class LongestBackoff(random.Random):
    """Full jitter at its top: each backoff is its cap (base x 2^(n-1)), so the test knows it exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class Tries:
    """Each try's instance and the timeout it was given; each try takes the next of `took` seconds."""

    clock: FakeClock
    took: list[float]
    answers: list[Code]
    seen: list[tuple[str, float]] = field(default_factory=list)

    async def __call__(self, endpoint: Endpoint, timeout: float) -> AttemptResult:
        n = len(self.seen)
        self.seen.append((endpoint.instance_id, timeout))
        self.clock.advance(self.took[n])
        return AttemptResult(self.answers[n], f"try {n + 1}")


# Durations and backoffs are binary fractions, so "exactly" holds in floating point too.
BACKOFF = RetryConfig(max_attempts=3, base_backoff=0.125, max_backoff=0.5)


async def test_each_try_gets_the_time_left_after_earlier_tries_and_backoff():
    router, clock = make(ServicePolicy(balancer="round_robin", retry=BACKOFF), rng=LongestBackoff())
    tries = Tries(clock, took=[0.25, 0.125, 0.0625], answers=[Code.UNAVAILABLE, Code.UNAVAILABLE, Code.OK])
    result = await router.call("ocr", Deadline.after(1.0, clock), tries)
    assert result.code is Code.OK
    # 1 s; less the first try (0.25) and the first backoff (0.125); less the second (0.125, 0.25).
    assert [t for _, t in tries.seen] == [1.0, 0.625, 0.25]
    assert len({who for who, _ in tries.seen}) == 3  # each retry on another instance
    assert clock() == 100.0 + 0.25 + 0.125 + 0.125 + 0.25 + 0.0625


async def test_a_per_try_timeout_caps_each_try_until_less_than_it_is_left():
    policy = ServicePolicy(balancer="round_robin", retry=BACKOFF, per_try_timeout=0.5)
    router, clock = make(policy, rng=LongestBackoff())
    tries = Tries(clock, took=[0.25, 0.25, 0.0625], answers=[Code.UNAVAILABLE, Code.UNAVAILABLE, Code.OK])
    await router.call("ocr", Deadline.after(1.0, clock), tries)
    # 1 - 0.25 - 0.125 = 0.625 left for the second try, capped at 0.5; then 0.625 - 0.25 - 0.25.
    assert [t for _, t in tries.seen] == [0.5, 0.5, 0.125]


@pytest.mark.parametrize(("first_took", "timeouts"), [
    (0.75, [1.0, 0.125]),  # 0.25 left covers the 0.125 backoff: the retry gets the remaining 0.125
    (0.875, [1.0]),  # 0.125 left is no more than the backoff: no retry at all
])
async def test_no_retry_when_the_time_left_cannot_cover_the_backoff(first_took, timeouts):
    router, clock = make(ServicePolicy(balancer="round_robin", retry=BACKOFF), rng=LongestBackoff())
    tries = Tries(clock, took=[first_took, 0.0625], answers=[Code.UNAVAILABLE, Code.OK])
    result = await router.call("ocr", Deadline.after(1.0, clock), tries)
    assert [t for _, t in tries.seen] == timeouts
    stats = router.stats()["OCR"]
    assert isinstance(stats, dict)
    if len(timeouts) == 1:
        # The first try's own answer, as it came; nothing slept, nothing counted as a retry.
        assert (result.code, result.message) == (Code.UNAVAILABLE, "try 1")
        assert clock() == 100.0 + first_took
        assert (stats["attempts"], stats["retries"]) == (1, 0)
    else:
        assert result.code is Code.OK
        assert (stats["attempts"], stats["retries"]) == (2, 1)


async def test_retry_budget_caps_amplification_when_everything_is_down():
    policy = ServicePolicy(
        balancer="round_robin", retry=RetryConfig(max_attempts=5, base_backoff=0, max_backoff=0),
        budget=BudgetConfig(ratio=0.2, min_per_second=0.5, window=10),
        # keep breakers and ejection out of the way: this measures the budget alone
        service_breaker=BreakerConfig(minimum_calls=10_000, window_size=10_000),
        instance_breaker=BreakerConfig(minimum_calls=10_000, window_size=10_000),
        outlier=OutlierConfig(consecutive_failures=10_000, max_ejected_percent=0))
    router, clock = make(policy)
    log: list[str] = []
    down = {f"i{k}": Code.UNAVAILABLE for k in range(3)}
    for _ in range(1000):
        await router.call("ocr", Deadline.after(5, clock), script(down, log, clock, took=0.001))
    assert len(log) / 1000 <= 1.25
    stats = router.stats()["OCR"]
    assert isinstance(stats, dict) and stats["budget_exhausted"] > 0


async def test_an_open_service_breaker_fails_fast_naming_it_and_is_not_retried():
    policy = ServicePolicy(balancer="round_robin",
                           service_breaker=BreakerConfig(window_size=4, minimum_calls=4, wait_in_open=10),
                           retry=RetryConfig(max_attempts=1))
    router, clock = make(policy)
    log: list[str] = []
    down = {f"i{k}": Code.INTERNAL for k in range(3)}
    for _ in range(4):
        await router.call("ocr", Deadline.after(5, clock), script(down, log, clock))
    with pytest.raises(SidecarError) as e:
        await router.call("ocr", Deadline.after(5, clock), script(down, log, clock))
    assert e.value.code is Code.UNAVAILABLE
    assert 'circuit breaker "service:OCR" is open' in e.value.message
    assert len(log) == 4
    clock.advance(10)  # half-open: a trial goes through
    result = await router.call("ocr", Deadline.after(5, clock), script({}, log, clock))
    assert result.code is Code.OK


async def test_consecutive_failures_eject_an_instance_from_the_pool():
    policy = ServicePolicy(balancer="round_robin", retry=RetryConfig(max_attempts=1),
                           outlier=OutlierConfig(consecutive_failures=2, base_ejection_time=30,
                                                 max_ejected_percent=50))
    router, clock = make(policy)
    log: list[str] = []
    answers = {"i0": Code.UNAVAILABLE}
    for _ in range(9):
        await router.call("ocr", Deadline.after(5, clock), script(answers, log, clock))
    stats = router.stats()["OCR"]
    assert isinstance(stats, dict) and stats["ejected"] == ["i0"]
    log.clear()
    for _ in range(20):
        await router.call("ocr", Deadline.after(5, clock), script(answers, log, clock))
    assert "i0" not in log
    clock.advance(30)
    log.clear()
    for _ in range(3):
        await router.call("ocr", Deadline.after(5, clock), script({}, log, clock))
    assert "i0" in log  # back after the ejection time


def test_a_new_policy_replaces_the_routes_it_changes_and_keeps_the_others():
    router, _ = make(RR)
    route = router.route("ocr")
    assert route is not None and route.policy.retry.max_attempts == 3
    router.set_policies(EgressPolicies(RR))  # the same policy: the route and its state stay
    assert router.route("ocr") is route
    once = ServicePolicy(balancer="round_robin", retry=RetryConfig(max_attempts=1))
    router.set_policies(EgressPolicies(once))
    fresh = router.route("ocr")
    assert fresh is not route and fresh is not None and fresh.policy.retry.max_attempts == 1
