"""grpc.health.v1 answered by the relay itself, from the sidecar's readiness: no model round trip.

Check gets one reply; Watch gets the status now and then one message per change, on a stream
that stays open. Pure: one request message in, the response frames out. Knows nothing about
sockets or HPACK state (its header blocks use no dynamic table, see grpc_headers).
"""

from __future__ import annotations

from typing import Final

from sidecar.core.call import Outcome
from sidecar.core.status import Code
from sidecar.ingress.relay import frames as f
from sidecar.ingress.relay import grpc_headers as gh

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
            f.header_block_frames(sid, gh.response_headers(), False, max_frame)
            + f.frame(f.DATA, 0, sid, message)
            + f.header_block_frames(sid, gh.status_trailers(Code.OK), True, max_frame)
        )
        return reply, len(message)
    return f.header_block_frames(sid, gh.trailers_only(result), True, max_frame), 0


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
        return f.header_block_frames(sid, gh.trailers_only(result), True, max_frame), 0, None
    status = watched_status(service, ready, services)
    message = _message(status)
    headers = f.header_block_frames(sid, gh.response_headers(), False, max_frame)
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
