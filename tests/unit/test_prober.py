"""The prober's verdicts on a simulated loop (fake clock, scripted stalls): lag excuses only timeouts.

`SimLoop` stands for the event loop as the prober sees it: its wait returns when
the call's answer reaches the sidecar or the timeout passes; a scripted stall
delays both, and the loop-lag record learns of it as the monitor would. An answer
that arrives during a stall is seen only on the loop's next turn, after a timer
that fell due meanwhile (the worst order, and the one the real loop takes).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from google.protobuf.message import Message

from inference import grpc_service_pb2 as pb
from sidecar.core.clock import FakeClock
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.health.loop_lag import LagRecord
from sidecar.health.probe_window import LIMIT_FACTOR, Verdict
from sidecar.health.prober import Prober
from sidecar.health.readiness import Readiness
from sidecar.oip import contract

TIMEOUT = 1.0
SERVING = (True, "Check says SERVING", Code.OK)


class SimLoop:
    def __init__(self) -> None:
        self.clock = FakeClock(0.0)
        self.lag = LagRecord()
        self._stalls: list[tuple[float, float]] = []
        self._arrivals: list[tuple[float, asyncio.Future[None]]] = []

    def stall(self, start: float, seconds: float) -> None:
        self._stalls.append((start, start + seconds))
        self._stalls.sort()

    def arrival(self, after: float) -> asyncio.Future[None]:
        """A future done when something sent now reaches the sidecar, `after` seconds from now."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arrivals.append((self.clock() + after, future))
        return future

    async def wait(self, future: asyncio.Future[Any], timeout: float) -> None:
        self._deliver(self.clock())  # read during the last stall: seen on this turn
        await _turns()
        if future.done():
            return
        now, target = self.clock(), self.clock() + timeout
        while True:
            stall = next((s for s in self._stalls if now <= s[0] < target), None)
            arrival = max(min((at for at, _ in self._arrivals), default=math.inf), now)
            if stall is None or arrival < stall[0]:
                self.clock.now = min(arrival, target)
                self._deliver(self.clock())
                await _turns()
                return
            self._stalls.remove(stall)
            start, end = stall
            self.lag.tick(due=start, ran=end)
            now = end
            if end >= target:  # the timer ran late; an answer read meanwhile waits for the next turn
                self.clock.now = end
                return

    def _deliver(self, now: float) -> None:
        for at, future in [a for a in self._arrivals if a[0] <= now]:
            self._arrivals.remove((at, future))
            future.set_result(None)


async def _turns() -> None:
    for _ in range(5):  # the call's task, the link's coroutine, the future's callbacks
        await asyncio.sleep(0)


Behaviour = Callable[[float], Awaitable[Any]]


class SimLink:
    """A model link whose every call follows the next scripted behaviour."""

    address = "model:8001"

    def __init__(self, loop: SimLoop) -> None:
        self.loop = loop
        self.health_script: list[Behaviour] = []
        self.call_script: list[Behaviour] = []
        self.deadlines: list[float] = []
        self.methods: list[str] = []

    async def health(self, timeout: float) -> tuple[bool, str, Code]:
        self.deadlines.append(timeout)
        result: tuple[bool, str, Code] = await self.health_script.pop(0)(timeout)
        return result

    async def call(
        self, method: str, request: Message, response_type: type[Any], *, timeout: float | None,
        metadata: Any = None,
    ) -> tuple[Any, list[Any], list[Any]]:  # fmt: skip
        assert timeout is not None
        self.deadlines.append(timeout)
        self.methods.append(method)
        return await self.call_script.pop(0)(timeout), [], []

    async def close(self, grace: float | None = None) -> None:
        pass

    # Behaviours
    def answers(self, result: Any, after: float = 0.01) -> Behaviour:
        async def run(deadline: float) -> Any:
            await self.loop.arrival(after)
            if isinstance(result, SidecarError):
                raise result
            return result

        return run

    def hangs(self) -> Behaviour:
        async def run(deadline: float) -> Any:
            await asyncio.get_running_loop().create_future()

        return run

    def times_out(self) -> Behaviour:
        """The link's own deadline passes with no answer (grpc's DEADLINE_EXCEEDED)."""

        async def run(deadline: float) -> Any:
            await self.loop.arrival(deadline)
            return False, "Check failed: DEADLINE_EXCEEDED: Deadline Exceeded", Code.DEADLINE_EXCEEDED

        return run


def setup(models: tuple[str, ...] = ()) -> tuple[Prober, SimLink, SimLoop, Readiness]:
    loop = SimLoop()
    link = SimLink(loop)
    readiness = Readiness(failure_threshold=2, success_threshold=1)
    prober = Prober(
        link, readiness, models=models, interval=2.0, timeout=TIMEOUT,
        lag=loop.lag, clock=loop.clock, wait=loop.wait,
    )  # fmt: skip
    return prober, link, loop, readiness


async def probe(prober: Prober) -> Verdict:
    result = await prober.probe_once()
    prober.record(result)
    return result.verdict


async def test_an_answer_on_a_free_loop_passes_and_the_link_gets_the_windows_limit() -> None:
    prober, link, _loop, readiness = setup()
    link.health_script.append(link.answers(SERVING))
    assert await probe(prober) is Verdict.PASS
    assert readiness.current.ready
    assert link.deadlines == [TIMEOUT * LIMIT_FACTOR]


async def test_an_answer_held_up_behind_a_stall_over_the_deadline_passes() -> None:
    prober, link, loop, _readiness = setup()
    link.health_script.append(link.answers(SERVING))
    # The model answers in 10 ms, but the loop is busy from 5 ms to 3 s: it reads the answer only
    # then, on the same turn as the timeout's timer, which runs first.
    loop.stall(0.005, 2.995)
    assert await probe(prober) is Verdict.PASS
    assert loop.clock() == pytest.approx(3.0, abs=0.01)


async def test_a_hung_model_on_a_free_loop_fails_at_the_timeout_and_goes_not_ready() -> None:
    prober, link, loop, readiness = setup()
    link.health_script += [link.answers(SERVING), link.hangs(), link.hangs()]
    await probe(prober)
    start = loop.clock()
    result = await prober.probe_once()
    assert result.verdict is Verdict.FAIL
    assert result.detail == f"probe timed out after {TIMEOUT:g}s"
    assert loop.clock() - start == pytest.approx(TIMEOUT)
    prober.record(result)
    assert readiness.current.ready  # one failure of two
    assert await probe(prober) is Verdict.FAIL
    assert not readiness.current.ready
    assert readiness.current.reason == f"model not ready: probe timed out after {TIMEOUT:g}s"


async def test_a_hung_model_gets_its_timeout_of_free_time_when_the_loop_stalls_mid_wait() -> None:
    prober, link, loop, _ = setup()
    link.health_script.append(link.hangs())
    loop.stall(0.2, 0.5)
    assert await probe(prober) is Verdict.FAIL
    assert loop.clock() == pytest.approx(TIMEOUT + 0.5)


async def test_a_timeout_on_a_loop_stalled_throughout_is_inconclusive_and_readiness_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    prober, link, loop, readiness = setup()
    link.health_script += [link.answers(SERVING), link.hangs(), link.hangs()]
    await probe(prober)
    with caplog.at_level(logging.INFO, logger="sidecar.health.prober"):
        for _ in range(2):
            # Busy for all but a few milliseconds of each probe's limit.
            now = loop.clock()
            for k in range(int(LIMIT_FACTOR * TIMEOUT / 0.5) + 1):
                loop.stall(now + 0.001 + k * 0.5, 0.499)
            assert await probe(prober) is Verdict.INCONCLUSIVE
        assert readiness.current.ready
        link.health_script.append(link.answers(SERVING))
        assert await probe(prober) is Verdict.PASS
    assert prober.verdicts == {"pass": 2, "fail": 0, "inconclusive": 2}
    lines = [r.getMessage() for r in caplog.records]
    assert sum("probe inconclusive, readiness unchanged" in line for line in lines) == 1, lines
    assert "of it with the event loop stalled" in lines[0]
    assert "probe conclusive again after 2 inconclusive" in lines


@pytest.mark.parametrize(
    "answer",
    [
        (False, "Check failed: UNAVAILABLE: failed to connect to all addresses", Code.UNAVAILABLE),
        (False, "Check says NOT_SERVING", Code.OK),
    ],
    ids=["refused", "not-serving"],
)
async def test_a_refusal_or_not_serving_fails_however_long_the_loop_stalled(answer: Any) -> None:
    prober, link, loop, readiness = setup()
    link.health_script += [link.answers(SERVING), link.answers(answer), link.answers(answer)]
    await probe(prober)
    for _ in range(2):
        loop.stall(loop.clock() + 0.001, 30.0)  # an answer read after a 30 s stall, past every limit
        assert await probe(prober) is Verdict.FAIL
    assert not readiness.current.ready
    assert readiness.current.reason == f"model not ready: {answer[1]}"


async def test_the_links_deadline_passing_on_a_stalled_loop_is_inconclusive() -> None:
    prober, link, loop, _readiness = setup()
    link.health_script += [link.times_out()]
    loop.stall(0.001, LIMIT_FACTOR * TIMEOUT)
    assert await probe(prober) is Verdict.INCONCLUSIVE


async def test_the_links_deadline_passing_on_a_free_loop_fails() -> None:
    prober, link, loop, _readiness = setup()
    link.health_script += [link.times_out()]
    # The prober's own timer comes first on a free loop: it fails the call at the timeout.
    assert await probe(prober) is Verdict.FAIL
    assert loop.clock() == pytest.approx(TIMEOUT)


async def test_oip_probes_are_judged_the_same_way() -> None:
    prober, link, loop, _readiness = setup(models=("digits",))
    unimplemented = (False, "no health service", Code.UNIMPLEMENTED)
    link.health_script.append(link.answers(unimplemented))
    ready = pb.ServerReadyResponse(ready=True)
    link.call_script += [link.answers(ready), link.answers(pb.ModelReadyResponse(ready=True))]
    assert await probe(prober) is Verdict.PASS
    # ServerReady held up behind a stall: still a pass.
    loop.stall(loop.clock() + 0.005, 4.0)
    link.call_script += [link.answers(ready), link.answers(pb.ModelReadyResponse(ready=True))]
    assert await probe(prober) is Verdict.PASS
    # Refused after a stall: a failure.
    loop.stall(loop.clock() + 0.001, 10.0)
    link.call_script.append(link.answers(SidecarError(Code.UNAVAILABLE, "cannot reach the model")))
    result = await prober.probe_once()
    assert result.verdict is Verdict.FAIL
    assert result.detail == "OIP readiness call failed: UNAVAILABLE: cannot reach the model"
    # The link's own deadline passing while the loop was stalled: inconclusive.
    loop.stall(loop.clock() + 0.001, LIMIT_FACTOR * TIMEOUT)
    timeout = SidecarError(Code.DEADLINE_EXCEEDED, "GET /v2/health/ready: the model did not answer in time")
    link.call_script.append(link.answers(timeout, after=LIMIT_FACTOR * TIMEOUT))
    assert (await prober.probe_once()).verdict is Verdict.INCONCLUSIVE
    # A model not ready fails.
    link.call_script += [link.answers(ready), link.answers(pb.ModelReadyResponse(ready=False))]
    result = await prober.probe_once()
    assert result == type(result)(Verdict.FAIL, 'ModelReady says model "digits" is not ready')
    # Asked for grpc.health.v1 once; after UNIMPLEMENTED, only OIP calls.
    assert link.methods[:2] == [contract.SERVER_READY, contract.MODEL_READY]
    assert len(link.deadlines) - len(link.methods) == 1
