"""The resilience order of egress calls, with a fake clock, seeded RNG and scripted endpoint answers."""

from __future__ import annotations

import random

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


def make(policy: ServicePolicy, n: int = 3) -> tuple[EgressRouter, FakeClock]:
    clock = FakeClock(100.0)
    eps = tuple(Endpoint(app="OCR", instance_id=f"i{k}", host="h", http_port=k, grpc_port=k)
                for k in range(n))
    discovery = StaticDiscovery(snapshot({"OCR": eps}, 1))

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    router = EgressRouter(discovery, EgressPolicies(policy), clock=clock, rng=random.Random(1), sleep=sleep)
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
