"""The composition root: builds every part from the config, owns start/stop order and the drain.

Start order: model link → readiness + prober → discovery → listeners →
registrar (which registers once the model is ready). On SIGTERM or
POST /admin/drain: report not-ready (readiness, grpc health, Eureka
OUT_OF_SERVICE), keep serving while callers still come (sidecar/lifecycle/drain.py), stop
accepting, let in-flight calls finish up to `drain_timeout`, deregister,
close the rest in reverse order, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import pathlib
import signal
import socket

import aiohttp

from sidecar import __version__
from sidecar.admin.http_admin import AdminListener
from sidecar.config import SidecarConfig
from sidecar.core.clock import monotonic
from sidecar.core.errors import ConfigError
from sidecar.core.tasks import supervised
from sidecar.discovery.endpoint import Discovery, Snapshot
from sidecar.discovery.eureka_discovery import EurekaDiscovery
from sidecar.discovery.static_file import StaticDiscovery
from sidecar.egress.channels import ChannelPool
from sidecar.egress.grpc_listener import GrpcEgress
from sidecar.egress.http_listener import HttpEgress
from sidecar.egress.policy import load_policies
from sidecar.egress.router import EgressRouter
from sidecar.filters.arrivals import ArrivalCounter
from sidecar.filters.chain import Filter
from sidecar.filters.readiness import ReadinessGate
from sidecar.health.prober import Prober
from sidecar.health.readiness import Readiness
from sidecar.ingress.dataplane import GrpcDataplane
from sidecar.ingress.grpc_server import CONTRACT_UNARY, GrpcioDataplane
from sidecar.ingress.http_server import HttpIngress
from sidecar.ingress.relay.dataplane import RelayDataplane
from sidecar.lifecycle.drain import DrainPolicy, QuietPeriod
from sidecar.model.grpc_link import GrpcModelLink
from sidecar.model.http_link import HttpModelLink
from sidecar.model.link import ModelLink
from sidecar.registry.eureka_http import EurekaHttp
from sidecar.registry.instance import InstanceSpec, instance_id
from sidecar.registry.model_info import model_metadata
from sidecar.registry.registrar import Registrar
from sidecar.telemetry.assembly import Telemetry

log = logging.getLogger("sidecar")

# Kubernetes takes a few seconds to remove a not-ready pod from its Service endpoints.
_DRAIN_DELAY_WITHOUT_REGISTRY = 5.0
_DRAIN_DELAY_MARGIN = 5.0


def drain_policy(config: SidecarConfig) -> DrainPolicy:
    if config.drain_delay is not None:
        return DrainPolicy.fixed(config.drain_delay)
    minimum = config.drain_min_delay
    if minimum is None:
        # Callers that call rarely still pick from a registry copy refreshed every fetch interval.
        minimum = (
            config.registry_fetch_interval + _DRAIN_DELAY_MARGIN
            if config.eureka_url
            else _DRAIN_DELAY_WITHOUT_REGISTRY
        )
        minimum = min(minimum, config.drain_max_delay)
    return DrainPolicy(config.drain_quiet_period, minimum, config.drain_max_delay)


class Sidecar:
    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.stopping = asyncio.Event()
        self.link: ModelLink = (
            HttpModelLink(config.model_address, config.max_message_bytes)
            if config.model_protocol == "http"
            else GrpcModelLink(config.model_address, config.max_message_bytes)
        )
        self.readiness = Readiness(config.probe_failure_threshold, config.probe_success_threshold)
        self.prober = Prober(
            self.link,
            self.readiness,
            models=config.models,
            interval=config.probe_interval,
            timeout=config.probe_timeout,
        )
        # Observability parts that are off add no filter; telemetry's outer filters see rejected calls too.
        self.telemetry = Telemetry(config)
        self.telemetry.watch(self.readiness)
        # Outermost: every call that reaches ingress counts as a caller still picking this instance.
        self.arrivals = ArrivalCounter()
        filters: list[Filter] = [
            self.arrivals,
            *self.telemetry.outer_filters(
                "ingress",
                local=lambda protocol: (
                    config.listen_host, self.grpc.port if protocol == "grpc" else self.http.port
                ),
            ),
            ReadinessGate(self.readiness),
            *self.telemetry.inner_filters("ingress", upstream=config.model_address),
        ]
        self.grpc: GrpcDataplane
        dataplane = config.dataplane
        if dataplane == "auto":
            dataplane = "relay" if config.model_protocol == "grpc" else "grpcio"
        self.dataplane = dataplane
        if dataplane == "relay":
            if config.model_protocol != "grpc":
                raise ConfigError("dataplane: relay forwards HTTP/2 frames and needs model_protocol grpc")
            self.grpc = RelayDataplane(
                host=config.listen_host,
                port=config.grpc_port,
                model_address=config.model_address,
                filters=filters,
                readiness=self.readiness,
            )
        else:
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
            metrics=self.telemetry.exposition(),
        )
        self._session: aiohttp.ClientSession | None = None
        self.eureka: EurekaHttp | None = None
        self.registrar: Registrar | None = None
        self.discovery: Discovery
        if config.eureka_url:
            self._session = aiohttp.ClientSession()
            self.eureka = EurekaHttp(config.eureka_url, self._session)
            self.discovery = EurekaDiscovery(self.eureka, config.registry_fetch_interval)
        elif config.registry_file:
            self.discovery = StaticDiscovery.from_file(pathlib.Path(config.registry_file))
        else:
            self.discovery = StaticDiscovery(Snapshot())
        self.router = EgressRouter(
            self.discovery,
            load_policies(pathlib.Path(config.egress_policy_file) if config.egress_policy_file else None),
            zone=config.zone,
        )
        self.telemetry.watch_egress(self.router.stats)
        self.channels = ChannelPool(config.max_message_bytes)
        self.discovery.watch(self.channels.retain)
        # Per call: metrics, the model's trace context, the access log; per try: the CLIENT span.
        egress_filters = self.telemetry.outer_filters("egress")
        attempt_filters = self.telemetry.inner_filters("egress")
        self.grpc_egress = GrpcEgress(
            host=config.admin_host,
            port=config.egress_grpc_port,
            router=self.router,
            channels=self.channels,
            filters=egress_filters,
            attempt_filters=attempt_filters,
            unary_methods=CONTRACT_UNARY,
            max_message_bytes=config.max_message_bytes,
        )
        self.http_egress = HttpEgress(
            host=config.admin_host,
            port=config.egress_http_port,
            router=self.router,
            filters=egress_filters,
            attempt_filters=attempt_filters,
            max_message_bytes=config.max_message_bytes,
        )
        self.admin = AdminListener(
            host=config.admin_host,
            port=config.admin_port,
            discovery=self.discovery,
            registration=self._registration,
            egress=self.router.stats,
            drain=self.stopping.set,
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.telemetry.start()
        if self.config.eureka_url:
            self.telemetry.watch_registration(lambda: bool(self.registrar and self.registrar.registered))
        self._tasks.append(supervised(self.prober.run(), "model-prober"))
        self._tasks.append(supervised(self.discovery.run(), "discovery"))
        await self.grpc.start()
        await self.http.start()
        await self.admin.start()
        await self.grpc_egress.start()
        await self.http_egress.start()
        if self.eureka is not None:
            self.registrar = Registrar(
                self.eureka,
                self._instance_spec(),
                self.readiness,
                lambda: model_metadata(self.link, self.config.models, self.config.probe_timeout),
            )
            self.registrar.start()
        log.info(
            "ai-sidecar %s serving app %s: gRPC on %s:%d (%s data plane), HTTP on %s:%d, admin on %s:%d, "
            "egress gRPC %d and HTTP %d, model at %s",
            __version__,
            self.config.app_name,
            self.config.listen_host,
            self.grpc.port,
            self.dataplane,
            self.config.listen_host,
            self.http.port,
            self.config.admin_host,
            self.admin.port,
            self.grpc_egress.port,
            self.http_egress.port,
            self.config.model_address,
        )

    def _instance_spec(self) -> InstanceSpec:
        c = self.config
        host = c.advertise_host or socket.gethostname()
        try:
            iid = instance_id(
                c.instance_id, host=host, app=c.app_name, grpc_port=self.grpc.port, http_port=self.http.port
            )
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"instance_id: {c.instance_id!r} has an unknown placeholder {e}") from None
        ip = _advertised_ip(c, host)
        return InstanceSpec(
            app=c.app_name,
            instance_id=iid,
            # Spring clients connect to hostName, not ipAddr; in Kubernetes a pod name does not resolve.
            host_name=ip if c.prefer_ip_address else host,
            ip_addr=ip,
            http_port=self.http.port,
            grpc_port=self.grpc.port,
            admin_port=self.admin.port,
            zone=c.zone,
            weight=c.weight,
            lease_renewal_seconds=c.lease_renewal_interval,
            lease_duration_seconds=c.lease_duration,
        )

    def _registration(self) -> dict[str, object]:
        if self.registrar is None:
            return {"registry": "none"}
        return {
            "registry": "eureka",
            "urls": list(self.config.eureka_url),
            "registered": self.registrar.registered,
        }

    async def drain_and_stop(self) -> None:
        self.readiness.drain()
        if self.registrar is not None:
            await self.registrar.drain()
        policy = drain_policy(self.config)
        drain = QuietPeriod(policy, monotonic, self.arrivals.count)
        if policy.maximum > 0:
            log.info("draining: reporting not ready, serving %s", policy.describe())
        # Polled, not awaited as an event: the request path only bumps a counter.
        while (wait := drain.wait(self.arrivals.count)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        if policy.maximum > 0:
            (log.warning if drain.cut_short else log.info)("draining: %s", drain.summary())
        log.info(
            "draining: closing listeners, waiting up to %gs for in-flight calls", self.config.drain_timeout
        )
        await asyncio.gather(
            self.grpc.stop(self.config.drain_timeout),
            self.http.stop(),
            # The model may still call out while its last requests finish.
            self.grpc_egress.stop(self.config.drain_timeout),
            self.http_egress.stop(),
        )
        await self._close()

    async def stop(self) -> None:
        """Stop at once, without draining (start-up failed)."""
        await asyncio.gather(
            self.grpc.stop(0), self.http.stop(), self.grpc_egress.stop(0), self.http_egress.stop()
        )
        await self._close()

    async def _close(self) -> None:
        if self.registrar is not None:
            await self.registrar.stop()
        await self.admin.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        await self.channels.close()
        await self.telemetry.stop()
        await self.link.close()


def _advertised_ip(config: SidecarConfig, host: str) -> str:
    if config.advertise_ip:
        return config.advertise_ip
    with contextlib.suppress(ValueError):
        if not ipaddress.ip_address(config.listen_host).is_unspecified:
            return config.listen_host
    try:
        return socket.gethostbyname(host)
    except OSError:
        return "127.0.0.1"


async def serve(config: SidecarConfig) -> int:
    """Run until SIGTERM, SIGINT or POST /admin/drain, then drain. Returns the process exit code."""
    loop = asyncio.get_running_loop()
    sidecar = Sidecar(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, sidecar.stopping.set)
    try:
        await sidecar.start()
    except OSError as e:
        log.error("cannot start: %s", e)
        await sidecar.stop()
        return 1
    await sidecar.stopping.wait()
    log.info("drain requested")
    await sidecar.drain_and_stop()
    log.info("stopped")
    return 0
