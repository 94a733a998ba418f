"""Keeps this sidecar registered in Eureka while the app runs: register once the model is ready, heartbeat,
follow model health (UP/DOWN), re-register when Eureka forgets us, OUT_OF_SERVICE on drain, then deregister.

A supervised background task; the request path never waits on it. Eureka
being unreachable never stops traffic: the task retries with capped
exponential backoff and full jitter (tenacity) and registers as soon as a
server answers. `NoRegistrar` stands in when there is no registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from sidecar.core.tasks import supervised
from sidecar.health.readiness import Readiness, ReadinessSnapshot
from sidecar.registry.eureka_http import EurekaError, EurekaHttp
from sidecar.registry.instance import InstanceSpec, instance_document

log = logging.getLogger(__name__)

UP, DOWN, OUT_OF_SERVICE = "UP", "DOWN", "OUT_OF_SERVICE"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class Registrar:
    def __init__(
        self,
        http: EurekaHttp,
        spec: InstanceSpec,
        readiness: Readiness,
        model_metadata: Callable[[], Awaitable[Mapping[str, str]]],
        *,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._http = http
        self._spec = spec
        self._readiness = readiness
        self._model_metadata = model_metadata
        self._clock_ms = clock_ms
        self._wake = asyncio.Event()
        self._first_ready = asyncio.Event()
        self._metadata: Mapping[str, str] = {}
        self._status_sent: str | None = None
        self._registered = False
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        # Reconnect faster than a lease renewal, so a returning server sees us within one interval.
        self._backoff_max = max(1.0, min(30.0, spec.lease_renewal_seconds / 2))

    @property
    def registered(self) -> bool:
        return self._registered

    def start(self) -> None:
        self._readiness.watch(self._on_readiness)
        self._task = supervised(self._run(), "eureka-registrar")

    async def drain(self) -> None:
        """Tell Eureka to stop sending traffic (status override OUT_OF_SERVICE); keep the lease."""
        self._draining = True
        if not self._registered:
            return
        try:
            await self._http.override_status(self._spec.app_id, self._spec.instance_id, OUT_OF_SERVICE)
            log.info("eureka: %s is OUT_OF_SERVICE (draining)", self._spec.instance_id)
        except EurekaError as e:
            log.warning("eureka: could not mark %s OUT_OF_SERVICE: %s", self._spec.instance_id, e)

    async def stop(self) -> None:
        """Stop heartbeats and remove the instance from Eureka."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._registered:
            try:
                await self._http.deregister(self._spec.app_id, self._spec.instance_id)
                log.info("eureka: deregistered %s", self._spec.instance_id)
            except EurekaError as e:
                log.warning("eureka: could not deregister %s: %s", self._spec.instance_id, e)
            self._registered = False

    def _on_readiness(self, state: ReadinessSnapshot) -> None:
        if state.ready:
            self._first_ready.set()
        self._wake.set()

    def _desired_status(self) -> str:
        if self._draining and self._status_sent is not None:
            return self._status_sent
        return UP if self._readiness.current.ready else DOWN

    async def _run(self) -> None:
        # Here: only a sidecar with a registry needs tenacity (NoRegistrar shares this module).
        from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

        # Never before the model is ready: a registry must not advertise a sidecar that cannot serve.
        await self._first_ready.wait()
        self._metadata = await self._model_metadata()
        while True:
            async for attempt in AsyncRetrying(
                wait=wait_exponential_jitter(initial=0.5, max=self._backoff_max, jitter=0.5),
                retry=retry_if_exception_type(EurekaError),
                before_sleep=lambda rs: log.warning(
                    "eureka: registration failed (%s); retrying", rs.outcome and rs.outcome.exception()
                ),
            ):
                with attempt:
                    await self._register()
            try:
                await self._renew_until_change()
            except EurekaError as e:
                log.warning("eureka: heartbeat failed: %s", e)

    async def _register(self) -> None:
        status = self._desired_status()
        document = instance_document(
            self._spec, status=status, model_metadata=self._metadata, last_dirty_ms=self._clock_ms()
        )
        await self._http.register(self._spec.app_id, document)
        self._registered = True
        self._status_sent = status
        log.info("eureka: registered %s as %s", self._spec.instance_id, status)
        if self._draining:
            await self.drain()

    async def _renew_until_change(self) -> None:
        """Heartbeat every renewal interval; return when the instance must be registered again."""
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._spec.lease_renewal_seconds):
                    await self._wake.wait()
            if self._desired_status() != self._status_sent:
                return
            if not await self._http.heartbeat(self._spec.app_id, self._spec.instance_id):
                log.info("eureka: %s unknown to the server; registering again", self._spec.instance_id)
                return


class NoRegistrar:
    """No registry: nothing to register, mark out of service or deregister."""

    registered: Final = False

    def start(self) -> None:
        pass

    async def drain(self) -> None:
        pass

    async def stop(self) -> None:
        pass
