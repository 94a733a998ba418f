"""The composition root: builds every part from the config, owns start/stop order and the drain.

The parts are listed once, in start order, each with its stop beside its start
(`Sidecar._parts`): model link, probe link, telemetry, egress channels, the Eureka
client, loop-lag monitor, prober, discovery, admin, the call listeners, registrar
(which registers once the model is ready). They stop in reverse. On SIGTERM or POST /admin/drain the
drain comes first, as aiohttp's runner stops its sites before its cleanup:
report not-ready (readiness, grpc health, Eureka OUT_OF_SERVICE), keep serving
while callers still come (sidecar/drain/quiet_period.py), stop accepting and let in-flight calls
finish up to `drain_timeout`; then every part stops in reverse (deregister
first), and the process exits 0. A drain a preStop hook asked for
(POST /admin/drain?wait=true) ends in waiting for SIGTERM instead of exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import pathlib
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import aiohttp

from sidecar import __version__
from sidecar.admin.drain_wait import DrainWaitListener
from sidecar.admin.http_admin import AdminListener
from sidecar.config import SidecarConfig
from sidecar.config_rules import grpc_dataplane
from sidecar.core.clock import monotonic
from sidecar.core.lifecycle import Lifecycle, Part
from sidecar.core.tasks import supervised
from sidecar.discovery.endpoint import Discovery, Snapshot
from sidecar.discovery.eureka_discovery import EurekaDiscovery
from sidecar.discovery.static_file import StaticDiscovery
from sidecar.drain.quiet_period import QuietPeriod
from sidecar.drain.settings import drain_policy
from sidecar.egress.channels import ChannelPool
from sidecar.egress.grpc_listener import GrpcEgress
from sidecar.egress.h2proxy.listener import ProxyEgress
from sidecar.egress.http_listener import HttpEgress
from sidecar.egress.policy import load_policies
from sidecar.egress.router import EgressRouter
from sidecar.filters.arrivals import ArrivalCounter
from sidecar.filters.chain import Filter
from sidecar.filters.readiness import ReadinessGate
from sidecar.governance.off import NoGovernance
from sidecar.h2.limits import Limits
from sidecar.health.loop_lag import WORST_WINDOW, LagRecord, LoopLagMonitor
from sidecar.health.probe_window import LIMIT_FACTOR
from sidecar.health.prober import Prober
from sidecar.health.readiness import Readiness
from sidecar.ingress.dataplane import GrpcDataplane
from sidecar.ingress.http_listener import HttpIngress
from sidecar.ingress.relay.listener import RelayDataplane
from sidecar.model.grpc_link import GrpcModelLink
from sidecar.model.http_link import HttpModelLink
from sidecar.model.link import ModelLink
from sidecar.observability import Telemetry
from sidecar.payloads import Payloads
from sidecar.registry.eureka_http import EurekaHttp
from sidecar.registry.instance import InstanceSpec, instance_id
from sidecar.registry.model_info import model_metadata
from sidecar.registry.registrar import NoRegistrar, Registrar

if TYPE_CHECKING:
    from sidecar.governance.assembly import Governance

log = logging.getLogger("sidecar")


class Sidecar:
    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.stopping = asyncio.Event()
        # Set once listeners are closed and in-flight calls are done: the model may stop then.
        self.drained = asyncio.Event()
        # A preStop hook asked for the drain: once drained, wait for SIGTERM rather than exit.
        self.hold_after_drain = False
        self.link = _model_link(config)
        self.readiness = Readiness(config.probe_failure_threshold, config.probe_success_threshold)
        # The prober has a connection of its own, so no data-plane call queues ahead of a probe, and
        # judges a timeout against the loop's measured lag (docs/operations.md, "Readiness under load").
        self.probe_link = _model_link(config)
        self.loop_lag = LagRecord(horizon=2 * max(WORST_WINDOW, LIMIT_FACTOR * config.probe_timeout))
        self.lag_monitor = LoopLagMonitor(self.loop_lag, monotonic)
        self.prober = Prober(
            self.probe_link,
            self.readiness,
            models=config.models,
            interval=config.probe_interval,
            timeout=config.probe_timeout,
            lag=self.loop_lag,
        )
        # Observability parts that are off add no filter; telemetry's outer filters see rejected calls too.
        self.telemetry = Telemetry(config)
        self.telemetry.watch(self.readiness)
        self.telemetry.watch_health(
            lambda: self.loop_lag.worst(monotonic()),
            lambda: self.loop_lag.stalled_total,
            lambda: self.prober.verdicts,
        )
        # Capture and batching from the inference policy file; each off puts no filter in the chain.
        self.payloads = Payloads(config, self.telemetry)
        # Outermost: every call that reaches ingress counts as a caller still picking this instance.
        self.arrivals = ArrivalCounter()
        egress_policies = load_policies(
            pathlib.Path(config.egress_policy_file) if config.egress_policy_file else None
        )
        # Auth, RBAC, limits and admission from the policy document; no filter without one.
        self.governance: Governance | NoGovernance = NoGovernance()
        if config.policy_file or config.policy_config_server:
            # Imported only here: a sidecar without a policy loads none of JWT, Redis or the sources.
            from sidecar.governance.assembly import Governance

            self.governance = Governance(
                config,
                self.readiness,
                egress=lambda policies: self.router.set_policies(policies),
                egress_default=egress_policies,
            )
            self.telemetry.watch_governance(self.governance)

        def ingress_filters(*, queueing: bool) -> list[Filter]:
            return [
                self.arrivals,
                *self.telemetry.outer_filters(
                    "ingress",
                    local=lambda protocol: (
                        config.listen_host, self.grpc.port if protocol == "grpc" else self.http.port
                    ),
                ),
                ReadinessGate(self.readiness),
                *self.governance.filters(queueing=queueing),
                *self.payloads.filters(),
                *self.telemetry.inner_filters("ingress", upstream=config.model_address),
            ]

        filters = ingress_filters(queueing=True)
        self.grpc: GrpcDataplane
        self.dataplane = grpc_dataplane(config.dataplane, config.model_protocol)
        if self.dataplane == "relay":
            own = None
            if self.payloads.batching is not None and isinstance(self.link, GrpcModelLink):
                # Imported only when it runs: the relay's batches go over the link's grpc channel.
                from sidecar.ingress import own_calls

                own = own_calls.over(self.link)
            self.grpc = RelayDataplane(
                host=config.listen_host,
                port=config.grpc_port,
                model_address=config.model_address,
                filters=ingress_filters(queueing=False),
                readiness=self.readiness,
                read_model=self.governance.needs_model,
                limits=relay_limits(config),
                own=own,
            )
            self.telemetry.watch_relay_limits(self.grpc.limit_hits.snapshot)
        else:
            # Imported only when it runs: its grpc.health.v1 servicer and transcoder serve no relay.
            from sidecar.ingress.grpc_listener import GrpcioDataplane

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
        # Replaced by the Eureka registrar when the listeners are up (it advertises their ports).
        self.registrar: Registrar | NoRegistrar = NoRegistrar()
        self._new_registrar: Callable[[], Registrar | NoRegistrar] = NoRegistrar
        self._eureka_client = Part("eureka client")
        # What the admin listener shows of registration.
        self._registration: Callable[[], dict[str, object]] = lambda: {"registry": "none"}
        self.discovery: Discovery
        if config.eureka_url:
            session = aiohttp.ClientSession()
            eureka = EurekaHttp(config.eureka_url, session)
            self._eureka_client = Part("eureka client", stop=session.close)
            self.discovery = EurekaDiscovery(eureka, config.registry_fetch_interval)
            self._new_registrar = lambda: Registrar(
                eureka,
                self._instance_spec(),
                self.readiness,
                lambda: model_metadata(self.link, self.config.models, self.config.probe_timeout),
            )
            self.telemetry.watch_registration(lambda: self.registrar.registered)
            self._registration = lambda: {
                "registry": "eureka",
                "urls": list(config.eureka_url),
                "registered": self.registrar.registered,
            }
        elif config.registry_file:
            self.discovery = StaticDiscovery.from_file(pathlib.Path(config.registry_file))
        else:
            self.discovery = StaticDiscovery(Snapshot())
        active_egress = self.governance.egress_policies()
        self.router = EgressRouter(self.discovery, active_egress or egress_policies, zone=config.zone)
        self.telemetry.watch_egress(self.router.stats)
        self.channels = ChannelPool(config.max_message_bytes)
        self.discovery.watch(self.channels.retain)
        # Per call: metrics, the model's trace context, the access log; per try: the CLIENT span.
        egress_filters = self.telemetry.outer_filters("egress")
        attempt_filters = self.telemetry.inner_filters("egress")
        self.grpc_egress: GrpcEgress | ProxyEgress
        if config.egress_dataplane == "proxy":
            self.grpc_egress = ProxyEgress(
                host=config.admin_host,
                port=config.egress_grpc_port,
                router=self.router,
                filters=egress_filters,
                attempt_filters=attempt_filters,
                max_message_bytes=config.max_message_bytes,
            )
            self.discovery.watch(self.grpc_egress.retain)
        else:
            self.grpc_egress = GrpcEgress(
                host=config.admin_host,
                port=config.egress_grpc_port,
                router=self.router,
                channels=self.channels,
                filters=egress_filters,
                attempt_filters=attempt_filters,
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
            registration=lambda: self._registration(),
            egress=self.router.stats,
            drain=self._request_drain,
            drained=self.drained,
            policy=self.governance.describe,
        )
        # The model container's preStop hook waits here (pod IP) for the drain to be done.
        self._drain_wait = Part("drain-wait listener")
        if config.drain_wait_port:
            drain_wait = DrainWaitListener(
                host=config.listen_host,
                port=config.drain_wait_port,
                draining=self.stopping,
                drained=self.drained,
            )
            self._drain_wait = Part("drain-wait listener", start=drain_wait.start, stop=drain_wait.stop)
        self._listeners_stopped = False
        self._lifecycle = Lifecycle(self._parts())

    def _parts(self) -> list[Part]:
        """Every part in start order, its stop beside its start; they stop in reverse."""
        return [
            Part("model link", stop=self.link.close),
            Part("probe link", stop=self.probe_link.close),
            Part("telemetry", start=self._start_telemetry, stop=self.telemetry.stop),
            # Before the listeners and stopped after them: the last calls' events are queued first.
            Part("capture sinks", start=self.payloads.start, stop=self.payloads.stop),
            Part("egress channels", stop=self.channels.close),
            # Before the listeners: the policy, its key set and Redis are there for the first call.
            Part("governance", start=self.governance.start, stop=self.governance.stop),
            self._eureka_client,
            _task(self.lag_monitor.run, "loop-lag-monitor"),
            _task(self.prober.run, "model-prober"),
            _task(self.discovery.run, "discovery"),
            Part("admin listener", start=self.admin.start, stop=self.admin.stop),
            self._drain_wait,
            # Started in order, stopped together: the drain's grace is one deadline for all four.
            Part("call listeners", start=self._start_listeners, stop=lambda: self._stop_listeners(0)),
            Part("registrar", start=self._start_registrar, stop=lambda: self.registrar.stop()),
        ]

    async def start(self) -> None:
        await self._lifecycle.start()
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

    async def _start_telemetry(self) -> None:
        self.telemetry.start()

    async def _start_listeners(self) -> None:
        await self.grpc.start()
        await self.http.start()
        await self.grpc_egress.start()
        await self.http_egress.start()

    async def _stop_listeners(self, grace: float) -> None:
        """Stop accepting, and let in-flight calls finish for up to `grace` seconds; once."""
        if self._listeners_stopped:
            return
        self._listeners_stopped = True
        await asyncio.gather(
            self.grpc.stop(grace),
            self.http.stop(),
            # The model may still call out while its last requests finish.
            self.grpc_egress.stop(grace),
            self.http_egress.stop(),
        )

    async def _start_registrar(self) -> None:
        self.registrar = self._new_registrar()
        self.registrar.start()

    def _instance_spec(self) -> InstanceSpec:
        c = self.config
        host = c.advertise_host or socket.gethostname()
        # The template was checked at load (sidecar/config_rules.py).
        iid = instance_id(
            c.instance_id, host=host, app=c.app_name, grpc_port=self.grpc.port, http_port=self.http.port
        )
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

    def _request_drain(self, hold: bool) -> None:
        self.hold_after_drain = self.hold_after_drain or hold
        self.stopping.set()

    async def drain_and_stop(self) -> None:
        self.readiness.drain()
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
        await self._stop_listeners(self.config.drain_timeout)
        self.drained.set()
        await self._lifecycle.stop()

    async def stop(self) -> None:
        """Stop at once, without draining (start-up failed): what started, in reverse."""
        await self._lifecycle.stop()


def _task(run: Callable[[], Coroutine[Any, Any, None]], name: str) -> Part:
    """A supervised background task as a part: created at start, cancelled and awaited at stop."""
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        tasks.append(supervised(run(), name))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return Part(name, start=start, stop=stop)


def _model_link(config: SidecarConfig) -> ModelLink:
    """A link to the model with a connection of its own."""
    if config.model_protocol == "http":
        return HttpModelLink(config.model_address, config.max_message_bytes)
    return GrpcModelLink(config.model_address, config.max_message_bytes)


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
    signalled = asyncio.Event()

    def on_signal() -> None:
        signalled.set()
        sidecar.stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await sidecar.start()
    except OSError as e:
        log.error("cannot start: %s", e)
        await sidecar.stop()
        return 1
    await sidecar.stopping.wait()
    log.info("drain requested")
    await sidecar.drain_and_stop()
    if sidecar.hold_after_drain and not signalled.is_set():
        log.info("drained; waiting for SIGTERM, as the preStop hook that asked for the drain expects")
        await signalled.wait()
    log.info("stopped")
    return 0


def relay_limits(config: SidecarConfig) -> Limits:
    """The relay's bounds: issue 12's from their settings, the rest their constants (sidecar/h2/limits.py)."""
    return Limits(
        max_block=config.h2_max_header_block,
        health_max_streams=config.h2_health_max_streams,
        max_concurrent_streams=config.h2_max_concurrent_streams,
        max_header_list_size=config.h2_max_header_list_size,
        max_continuations=config.h2_max_continuations,
        reset_budget=config.h2_reset_budget,
        reset_window=config.h2_reset_window,
        ping_budget=config.h2_ping_budget,
        settings_budget=config.h2_settings_budget,
        empty_frame_budget=config.h2_empty_frame_budget,
        malformed_stream_budget=config.h2_malformed_stream_budget,
        control_window=config.h2_control_window,
        # connlimits
        max_connections=config.relay_max_connections,
        preface_timeout=config.relay_preface_timeout,
        idle_timeout=config.relay_idle_timeout,
        read_budget=config.relay_read_budget,
        client_write_high=config.relay_client_write_high,
        client_sndbuf=config.relay_client_sndbuf,
        client_rcvbuf=config.relay_client_rcvbuf,
        write_max=config.relay_write_max,
        write_stall=config.relay_write_stall,
    )
