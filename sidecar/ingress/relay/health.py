"""grpc.health.v1 answered by the relay itself, from the sidecar's readiness: no model round trip.

Check gets one reply; Watch gets the status now and then one message per change, on a stream
that stays open. Request messages in, response frames out; LocalHealth keeps one connection's
open health calls. Knows nothing about sockets or HPACK state (its header blocks use no dynamic
table, see grpc_headers).
"""

from __future__ import annotations

from typing import Final

from sidecar.core.call import Outcome
from sidecar.core.status import Code
from sidecar.h2 import frames as f
from sidecar.h2 import hpack_encoder as he
from sidecar.h2.limits import HEALTH_MAX_REQUEST, HEALTH_MAX_STREAMS

CHECK: Final = "/grpc.health.v1.Health/Check"
WATCH: Final = "/grpc.health.v1.Health/Watch"
PATHS: Final = frozenset({CHECK, WATCH})
# HealthCheckResponse.ServingStatus
SERVING: Final = 1
NOT_SERVING: Final = 2
SERVICE_UNKNOWN: Final = 3


def answer(
    sid: int, request: bytes, ready: bool, services: frozenset[str], max_frame: int
) -> tuple[bytes, int]:
    """The frames answering one Check call, and how many DATA bytes they hold (flow control)."""
    service = service_of(request)
    if service is None:
        result = Outcome(Code.INVALID_ARGUMENT, "malformed HealthCheckRequest")
    elif service not in services:
        result = Outcome(Code.NOT_FOUND, "unknown service")
    else:
        message = _message(SERVING if ready else NOT_SERVING)
        reply = (
            f.header_block_frames(sid, he.response_headers(), False, max_frame)
            + f.frame(f.DATA, 0, sid, message)
            + f.header_block_frames(sid, he.status_trailers(Code.OK), True, max_frame)
        )
        return reply, len(message)
    return f.header_block_frames(sid, he.trailers_only(result), True, max_frame), 0


def watch(
    sid: int, request: bytes, ready: bool, services: frozenset[str], max_frame: int
) -> tuple[bytes, int, tuple[str, int] | None]:
    """The frames opening one Watch call, their DATA bytes, and the service watched with the status
    sent (None: the call ended).

    As grpc's own servicer does, an unknown service is watched as SERVICE_UNKNOWN, not refused.
    """
    service = service_of(request)
    if service is None:
        result = Outcome(Code.INVALID_ARGUMENT, "malformed HealthCheckRequest")
        return f.header_block_frames(sid, he.trailers_only(result), True, max_frame), 0, None
    status = watched_status(service, ready, services)
    message = _message(status)
    headers = f.header_block_frames(sid, he.response_headers(), False, max_frame)
    return headers + f.frame(f.DATA, 0, sid, message), len(message), (service, status)


def watched_status(service: str, ready: bool, services: frozenset[str]) -> int:
    if service not in services:
        return SERVICE_UNKNOWN
    return SERVING if ready else NOT_SERVING


def update(sid: int, status: int) -> bytes:
    """One more message on an open Watch: the new status."""
    return f.frame(f.DATA, 0, sid, _message(status))


def _message(status: int) -> bytes:
    """One gRPC message: uncompressed, 2 bytes long, HealthCheckResponse{status (field 1, varint)}."""
    return b"\x00\x00\x00\x00\x02\x08" + bytes((status,))


def service_of(request: bytes) -> str | None:
    """The `service` of one uncompressed HealthCheckRequest message; None if malformed."""
    if len(request) < 5 or request[0] != 0 or int.from_bytes(request[1:5], "big") != len(request) - 5:
        return None
    body = request[5:]
    if not body:
        return ""
    if body[0] != 0x0A or len(body) < 2 or body[1] >= 0x80 or len(body) != 2 + body[1]:
        return None
    try:
        return body[2:].decode("utf-8")
    except UnicodeDecodeError:
        return None


class LocalHealth:
    """The health calls one connection answers itself: Checks and Watches awaiting their request,
    and open Watches with the status each was last told. Frames out, no I/O."""

    __slots__ = ("_max_request", "_max_streams", "_requests", "_services", "_watches")

    def __init__(
        self,
        services: frozenset[str],
        *,
        max_request: int = HEALTH_MAX_REQUEST,
        max_streams: int = HEALTH_MAX_STREAMS,
    ) -> None:
        self._services = services
        self._max_request = max_request
        self._max_streams = max_streams
        self._requests: dict[int, tuple[str, bytearray]] = {}  # path, request so far
        self._watches: dict[int, tuple[str, int]] = {}  # service, last status sent

    def __contains__(self, sid: int) -> bool:
        return sid in self._requests or sid in self._watches

    @property
    def watching(self) -> bool:
        return bool(self._watches)

    def open(self, sid: int, path: str) -> bool:
        """Take a new health call; False when the connection has as many as it may."""
        if len(self._requests) + len(self._watches) >= self._max_streams:
            return False
        self._requests[sid] = (path, bytearray())
        return True

    def data(self, sid: int, payload: bytes) -> None:
        request = self._requests.get(sid)
        if request is not None:
            buf = request[1]
            buf += payload
            if len(buf) > self._max_request:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "health request too large")

    def ended(self, sid: int, ready: bool, max_frame: int) -> tuple[bytes, int] | None:
        """The client finished sending on `sid`: the reply frames and their DATA bytes, if ours."""
        request = self._requests.pop(sid, None)
        if request is None:
            return None
        path, body = request
        if path == CHECK:
            return answer(sid, bytes(body), ready, self._services, max_frame)
        reply, data_bytes, watched = watch(sid, bytes(body), ready, self._services, max_frame)
        if watched is not None:
            self._watches[sid] = watched
        return reply, data_bytes

    def cancel(self, sid: int) -> None:
        """The client reset `sid`: it gets no answer."""
        self._requests.pop(sid, None)
        self._watches.pop(sid, None)

    def changed(self, ready: bool) -> list[tuple[int, bytes]]:
        """Readiness changed: (stream, DATA frame) for each Watch whose status it changed."""
        updates = []
        for sid, (service, last) in list(self._watches.items()):
            status = watched_status(service, ready, self._services)
            if status != last:
                self._watches[sid] = (service, status)
                updates.append((sid, update(sid, status)))
        return updates
