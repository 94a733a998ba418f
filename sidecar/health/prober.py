"""The background probe of the model: runs checks on an interval and feeds Readiness.

Uses grpc.health.v1 Check where the model serves it, else OIP ServerReady plus
ModelReady for each configured model. Knows nothing about ingress or Eureka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from inference import grpc_service_pb2 as pb
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.health.readiness import Readiness
from sidecar.model.link import ModelLink
from sidecar.oip import contract

log = logging.getLogger(__name__)



class Prober:
    def __init__(
        self,
        link: ModelLink,
        readiness: Readiness,
        *,
        models: Sequence[str],
        interval: float,
        timeout: float,
    ) -> None:
        self._link = link
        self._readiness = readiness
        self._models = tuple(models)
        self._interval = interval
        self._timeout = timeout
        # Decided by the model's answer: None until a health Check was tried.
        self._use_health_service: bool | None = None
        self._last_detail = ""

    async def run(self) -> None:
        while True:
            ok, detail = await self.probe_once()
            if detail != self._last_detail:
                log.log(logging.INFO if ok else logging.WARNING, "probe: %s", detail)
                self._last_detail = detail
            self._readiness.record(ok, detail)
            await asyncio.sleep(self._interval)

    async def probe_once(self) -> tuple[bool, str]:
        try:
            async with asyncio.timeout(self._timeout * (2 + len(self._models))):
                return await self._check()
        except TimeoutError:
            return False, f"probe timed out after {self._timeout:g}s"

    async def _check(self) -> tuple[bool, str]:
        if self._use_health_service is not False:
            serving, detail, code = await self._link.health(self._timeout)
            if code is Code.UNIMPLEMENTED:
                log.info("model does not serve grpc.health.v1; probing with OIP ServerReady")
                self._use_health_service = False
            else:
                if code is Code.OK:
                    self._use_health_service = True
                return serving, detail
        return await self._check_oip()

    async def _check_oip(self) -> tuple[bool, str]:
        try:
            server, _, _ = await self._link.call(
                contract.SERVER_READY, pb.ServerReadyRequest(), pb.ServerReadyResponse, timeout=self._timeout
            )
            if not server.ready:
                return False, "ServerReady says not ready"
            for name in self._models:
                model, _, _ = await self._link.call(
                    contract.MODEL_READY,
                    pb.ModelReadyRequest(name=name),
                    pb.ModelReadyResponse,
                    timeout=self._timeout,
                )
                if not model.ready:
                    return False, f'ModelReady says model "{name}" is not ready'
        except SidecarError as e:
            return False, f"OIP readiness call failed: {e.code.name}: {e.message}"
        return True, "ServerReady and ModelReady say ready"
