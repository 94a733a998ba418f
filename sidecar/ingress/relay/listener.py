"""The relay data plane: accepts gRPC connections and relays each over its own connection to the model.

Implements the GrpcDataplane seam with loop.create_server; answers grpc.health.v1 Check
itself from Readiness (the sidecar's health, not the model's), so probes need no model.
Holds at most `Limits.max_connections` client connections: one more is closed as it is accepted
and counted ("connections"), as Envoy's listener max_connections does. Knows nothing about how
a connection relays frames.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence

from sidecar.filters.chain import Filter, Next, build_chain
from sidecar.h2 import build
from sidecar.h2.limits import LISTEN_BACKLOG, LimitHits, Limits
from sidecar.health.readiness import Readiness, ReadinessSnapshot
from sidecar.ingress.relay import batched
from sidecar.ingress.relay.calls import forward
from sidecar.ingress.relay.connection import DEFAULT_LIMITS, RelayConnection
from sidecar.ingress.relay.sockets import ClientSocket, Dial
from sidecar.oip import contract

log = logging.getLogger(__name__)

_HEALTHY_SERVICES = frozenset({"", contract.SERVICE})


def split_host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class RelayDataplane:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        model_address: str,
        filters: Sequence[Filter],
        readiness: Readiness,
        read_model: Callable[[], bool] = lambda: False,
        limits: Limits = DEFAULT_LIMITS,
        dial: Dial | None = None,
        own: Next | None = None,
    ) -> None:
        """`read_model()`: the filters need the model a contract call names now (a policy's RBAC
        rules or rate limits name models); asked per call, since the policy changes at run time.
        `limits`: every connection's bounds; `dial`: how they open the model socket (tests).
        `own`: a batching filter is among `filters`, and the calls the sidecar makes itself (its
        batches) go to the model this way (relay/batched.py)."""
        self._limits = limits
        self._dial = dial
        self._read_model = read_model
        self._batching = own is not None
        self._host = host
        self._requested_port = port
        self._port = 0
        self._model_address = split_host_port(model_address)
        self._chain = build_chain(filters, forward if own is None else batched.terminal(forward, own))
        self._readiness = readiness
        self._server: asyncio.Server | None = None
        self._connections: set[RelayConnection] = set()
        self._refusing = False
        # The limits its connections enforced, by kind (exported as ai_sidecar_relay_limits_total).
        self.limit_hits = LimitHits()

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientSocket(self._connection),
            self._host,
            self._requested_port,
            reuse_address=True,
            backlog=LISTEN_BACKLOG,
        )
        for sock in self._server.sockets:
            # Set before accepting, so accepted sockets have them from their handshake on (a
            # receive window once advertised is never shrunk): a client that reads nothing is
            # paused sooner, and its writes stall soon after the relay stops reading it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._limits.client_sndbuf)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._limits.client_rcvbuf)
        self._port = self._server.sockets[0].getsockname()[1]
        self._readiness.watch(self._on_readiness)
        # A build that is there but cannot run (stale, or not importing) is worth a warning: the
        # relay runs, correctly, at the pure modules' speed.
        level = logging.WARNING if build.choice().loud else logging.INFO
        log.log(
            level, "relay: listening on %s:%d; wire machinery: %s", self._host, self._port, build.describe()
        )

    async def stop(self, grace: float) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(c.shutdown(grace) for c in list(self._connections)))

    def _connection(self) -> RelayConnection | None:
        if len(self._connections) >= self._limits.max_connections:
            self.limit_hits.hit("connections")
            if not self._refusing:  # once per spell of refusals: a flood must not flood the log too
                self._refusing = True
                log.warning("relay: refusing connections: %d open, the most allowed", len(self._connections))
            return None
        self._refusing = False
        conn = RelayConnection(
            model_address=self._model_address,
            chain=self._chain,
            readiness=self._readiness,
            healthy_services=_HEALTHY_SERVICES,
            on_close=self._connections.discard,
            read_model=self._read_model,
            hits=self.limit_hits,
            limits=self._limits,
            dial=self._dial,
            batching=self._batching,
        )
        self._connections.add(conn)
        return conn

    def _on_readiness(self, state: ReadinessSnapshot) -> None:
        for conn in list(self._connections):
            conn.readiness_changed(state.ready)
            if state.ready:
                conn.model_ready()
