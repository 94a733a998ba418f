"""The background probe of the model: runs checks on an interval and feeds Readiness.

Uses grpc.health.v1 Check where the model serves it, else OIP ServerReady plus
ModelReady for each configured model. Each call gets probe_timeout of the event
loop's free time (probe_window.py): a loop stalled by a flood makes a probe
inconclusive, never failed, and Readiness is then not fed at all. The link should
be the prober's own (its own connection to the model), so that no data-plane call
queues ahead of a probe. Knows nothing about ingress or Eureka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from inference import grpc_service_pb2 as pb
from sidecar.core.clock import Clock, monotonic
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.health.loop_lag import LagRecord
from sidecar.health.probe_window import ProbeResult, ProbeWindow, Verdict
from sidecar.health.readiness import Readiness
from sidecar.model.link import ModelLink
from sidecar.oip import contract

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=Message)

# Waits until the future is done or the seconds have passed, whichever is first.
Wait = Callable[["asyncio.Future[Any]", float], Awaitable[None]]


async def _wait(future: asyncio.Future[Any], timeout: float) -> None:
    await asyncio.wait((future,), timeout=timeout)


class Prober:
    def __init__(
        self,
        link: ModelLink,
        readiness: Readiness,
        *,
        models: Sequence[str],
        interval: float,
        timeout: float,
        lag: LagRecord,
        clock: Clock = monotonic,
        wait: Wait = _wait,
    ) -> None:
        self._link = link
        self._readiness = readiness
        self._models = tuple(models)
        self._interval = interval
        self._timeout = timeout
        self._lag = lag
        self._clock = clock
        self._wait = wait
        # Decided by the model's answer: None until a health Check was tried.
        self._use_health_service: bool | None = None
        self._last_detail = ""
        # Inconclusive probes in a row, ended by the next conclusive one.
        self._inconclusive = 0
        # Probes by verdict since start; the metrics read it when scraped.
        self.verdicts = dict.fromkeys((v.value for v in Verdict), 0)

    async def run(self) -> None:
        while True:
            self.record(await self.probe_once())
            await asyncio.sleep(self._interval)

    def record(self, result: ProbeResult) -> None:
        """Count one probe and feed Readiness with it, unless it was inconclusive."""
        self.verdicts[result.verdict.value] += 1
        if result.verdict is Verdict.INCONCLUSIVE:
            # Logged once per streak: a flood makes one per probe interval for as long as it lasts.
            if not self._inconclusive:
                log.warning("probe inconclusive, readiness unchanged: %s", result.detail)
            self._inconclusive += 1
            return
        if self._inconclusive:
            log.info("probe conclusive again after %d inconclusive", self._inconclusive)
            self._inconclusive = 0
        ok = result.verdict is Verdict.PASS
        if result.detail != self._last_detail:
            log.log(logging.INFO if ok else logging.WARNING, "probe: %s", result.detail)
            self._last_detail = result.detail
        self._readiness.record(ok, result.detail)

    async def probe_once(self) -> ProbeResult:
        if self._use_health_service is not False:
            answer = await self._within_window(self._link.health)
            if isinstance(answer, ProbeResult):
                return answer
            health, window = answer
            if isinstance(health, SidecarError):  # a link's health() answers, it does not raise
                return ProbeResult(Verdict.FAIL, f"health check failed: {health.code.name}: {health.message}")
            serving, detail, code = health
            if code is Code.UNIMPLEMENTED:
                log.info("model does not serve grpc.health.v1; probing with OIP ServerReady")
                self._use_health_service = False
            elif code is Code.DEADLINE_EXCEEDED:
                return _timed_out(window.gave_up(), detail, window)
            else:
                if code is Code.OK:
                    self._use_health_service = True
                return ProbeResult(Verdict.PASS if serving else Verdict.FAIL, detail)
        return await self._check_oip()

    async def _check_oip(self) -> ProbeResult:
        server = await self._ask(contract.SERVER_READY, pb.ServerReadyRequest(), pb.ServerReadyResponse)
        if isinstance(server, ProbeResult):
            return server
        if not server.ready:
            return ProbeResult(Verdict.FAIL, "ServerReady says not ready")
        for name in self._models:
            request = pb.ModelReadyRequest(name=name)
            model = await self._ask(contract.MODEL_READY, request, pb.ModelReadyResponse)
            if isinstance(model, ProbeResult):
                return model
            if not model.ready:
                return ProbeResult(Verdict.FAIL, f'ModelReady says model "{name}" is not ready')
        return ProbeResult(Verdict.PASS, "ServerReady and ModelReady say ready")

    async def _ask(self, method: str, request: Message, response_type: type[M]) -> M | ProbeResult:
        """One OIP readiness call: its answer, or the probe's result when it failed or timed out."""

        async def call(deadline: float) -> M:
            response, _, _ = await self._link.call(method, request, response_type, timeout=deadline)
            return response

        answer = await self._within_window(call)
        if isinstance(answer, ProbeResult):
            return answer
        response, window = answer
        if isinstance(response, SidecarError):
            detail = f"OIP readiness call failed: {response.code.name}: {response.message}"
            if response.code is Code.DEADLINE_EXCEEDED:
                return _timed_out(window.gave_up(), detail, window)
            return ProbeResult(Verdict.FAIL, detail)
        return response

    async def _within_window(
        self, call: Callable[[float], Awaitable[T]]
    ) -> tuple[T | SidecarError, ProbeWindow] | ProbeResult:
        """Run `call(deadline)` for as long as its window allows: (its answer or error, the window),
        or the probe's result when the window ran out first."""
        window = ProbeWindow(self._lag, self._clock, self._timeout)
        task = asyncio.ensure_future(call(window.limit))
        try:
            while True:
                await self._wait(task, window.remaining())
                if task.done():
                    try:
                        return task.result(), window
                    except SidecarError as e:
                        return e, window
                verdict = window.expired()
                if verdict is not None:
                    return _timed_out(verdict, f"probe timed out after {self._timeout:g}s", window)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _timed_out(verdict: Verdict, detail: str, window: ProbeWindow) -> ProbeResult:
    """A timeout's result. Its detail is the readiness reason too, so a failure's stays the same from
    probe to probe; an inconclusive one says how much of the wait the loop lost."""
    if verdict is Verdict.INCONCLUSIVE:
        detail = f"{detail}, but {window.describe()}"
    return ProbeResult(verdict, detail)
