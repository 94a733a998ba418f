"""The composition root: builds every part from the config, owns start/stop order and the drain.

Start order: model link → readiness + prober → listeners. Stop order is the
reverse, and a SIGTERM drains first: report not-ready, keep serving for
`drain_delay`, stop accepting, let in-flight calls finish up to
`drain_timeout`, then close the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from sidecar import __version__
from sidecar.config import SidecarConfig
from sidecar.filters.chain import Filter
from sidecar.filters.readiness import ReadinessGate
from sidecar.health.prober import Prober
from sidecar.health.readiness import Readiness
from sidecar.ingress.grpc_server import GrpcioDataplane
from sidecar.ingress.http_server import HttpIngress
from sidecar.model.grpc_link import GrpcModelLink

log = logging.getLogger("sidecar")


class Sidecar:
    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.link = GrpcModelLink(config.model_address, config.max_message_bytes)
        self.readiness = Readiness(config.probe_failure_threshold, config.probe_success_threshold)
        self.prober = Prober(
            self.link,
            self.readiness,
            models=config.models,
            interval=config.probe_interval,
            timeout=config.probe_timeout,
        )
        filters: list[Filter] = [ReadinessGate(self.readiness)]
        self.grpc = GrpcioDataplane(
            host=config.listen_host,
            port=config.grpc_port,
            link=self.link,
            filters=filters,
            readiness=self.readiness,
            max_message_bytes=config.max_message_bytes,
        )
        self.http = HttpIngress(
            host=config.listen_host,
            port=config.http_port,
            link=self.link,
            filters=filters,
            readiness=self.readiness,
            max_message_bytes=config.max_message_bytes,
            timeout=config.rest_timeout,
            shutdown_timeout=config.drain_timeout,
        )
        self._prober_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._prober_task = asyncio.create_task(self.prober.run(), name="model-prober")
        await self.grpc.start()
        await self.http.start()
        log.info(
            "ai-sidecar %s serving app %s: gRPC on %s:%d, HTTP on %s:%d, model at %s",
            __version__,
            self.config.app_name,
            self.config.listen_host,
            self.grpc.port,
            self.config.listen_host,
            self.http.port,
            self.config.model_address,
        )

    async def drain_and_stop(self) -> None:
        self.readiness.drain()
        if self.config.drain_delay > 0:
            log.info("draining: reporting not ready, serving for %gs more", self.config.drain_delay)
            await asyncio.sleep(self.config.drain_delay)
        log.info(
            "draining: closing listeners, waiting up to %gs for in-flight calls",
            self.config.drain_timeout,
        )
        await asyncio.gather(self.grpc.stop(self.config.drain_timeout), self.http.stop())
        await self._close_link()

    async def stop(self) -> None:
        """Stop at once, without draining (start-up failed)."""
        await asyncio.gather(self.grpc.stop(0), self.http.stop())
        await self._close_link()

    async def _close_link(self) -> None:
        if self._prober_task is not None:
            self._prober_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober_task
        await self.link.close()


async def serve(config: SidecarConfig) -> int:
    """Run until SIGTERM or SIGINT, then drain. Returns the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sidecar = Sidecar(config)
    try:
        await sidecar.start()
    except OSError as e:
        log.error("cannot start: %s", e)
        await sidecar.stop()
        return 1
    await stop.wait()
    log.info("stop signal received")
    await sidecar.drain_and_stop()
    log.info("stopped")
    return 0
