"""A client's HTTP/2 connection to the egress proxy: each stream it opens is a call routed by name.

The service a stream names is its `x-sidecar-target` metadata, or else the host part of its
:authority (the port ignored, as Envoy does), so a channel dialled as `ocr:15001`, or with its
default authority set to `ocr`, reaches the service ocr with no extra metadata. An authority that
names an address (127.0.0.1, localhost, [::1]) names no service: such a call ends
INVALID_ARGUMENT, saying how to name one. Malformed requests are stream errors (RFC 9113 8.1.1);
each call's filters and tries are calls.py's. Knows nothing about upstream connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import Final

from sidecar.core.call import Call, grpc_peer
from sidecar.egress.h2proxy.calls import TARGET_KEY, ProxiedCall, Proxy, run
from sidecar.egress.h2proxy.wire import MAX_CONCURRENT_STREAMS, Wire
from sidecar.filters.chain import Next
from sidecar.h2 import frames as f
from sidecar.h2 import grpc_headers as gh
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.limits import KNOWN_FIELDS, MAX_DROPPED

log = logging.getLogger(__name__)

# Streams one client may have open at once (advertised in SETTINGS, enforced).
MAX_STREAMS: Final = 1000


_SERVICES: dict[str, str] = {}  # authority -> service, memoised: a client sends the same one each call
_SERVICES_MAX: Final = 1024


def service_of(authority: str) -> str:
    """The service an :authority names: its host part, the port left out; "" for an address."""
    service = _SERVICES.get(authority)
    if service is None:
        service = _service_of(authority)
        if len(_SERVICES) >= _SERVICES_MAX:
            _SERVICES.clear()
        _SERVICES[authority] = service
    return service


def _service_of(authority: str) -> str:
    host = authority
    if host.startswith("["):
        return ""  # an IPv6 literal
    host = host.rpartition(":")[0] if ":" in host else host
    host = host.rstrip(".").lower()
    if not host or host == "localhost":
        return ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return ""


class Downstream(Wire):
    """The server end of one client's connection to the egress listener."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proxy: Proxy,
        chain: Next,
        on_close: Callable[[Downstream], None],
    ) -> None:
        super().__init__(loop)
        self._proxy = proxy
        self._chain = chain
        self._on_close = on_close
        self.calls: dict[int, ProxiedCall] = {}
        self._preface = False
        self._last_sid = 0
        self._known: set[tuple[str, str]] = set()
        self._closed: dict[int, bool] = {}  # streams over, recent ones: reset by this side?
        self.peer = ""
        self.idle = asyncio.Event()
        self.idle.set()

    def name(self) -> str:
        return f"client {self.peer}"

    def last_peer_sid(self) -> int:
        return self._last_sid

    def made(self) -> None:
        assert self.transport is not None
        self.peer = grpc_peer(self.transport.get_extra_info("peername"))
        self.write(self.preamble({MAX_CONCURRENT_STREAMS: MAX_STREAMS}))

    def received(self, data: bytes) -> None:
        if not self._preface:
            self.reader.feed(data)
            first = self.reader.take(len(f.PREFACE))
            if first is None:
                return
            if first != f.PREFACE:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
            self._preface = True
            data = b""
        self.read(data)

    def lost(self) -> None:
        self.send.close_all()  # while the calls are known: what they held is credited upstream
        calls, self.calls = self.calls, {}
        for pc in calls.values():
            pc.client_cancelled()
        self.idle.set()
        self._on_close(self)

    # ---- the client's frames ----

    def idle_stream(self, sid: int) -> bool:
        return sid > self._last_sid

    def _ended(self, sid: int, reset_here: bool) -> None:
        """Remember `sid` as closed (RFC 9113 5.1); `reset_here`: this side reset it, so frames
        the client sent before it heard of that are ignored, not an error."""
        self._closed[sid] = reset_here
        if len(self._closed) > MAX_DROPPED:
            del self._closed[next(iter(self._closed))]

    def _refuse_stream(self, sid: int, code: int) -> None:
        self.write(f.rst_stream(sid, code))
        self._ended(sid, True)

    def _stream_closed(self, sid: int) -> None:
        """A frame on a stream the client ended: a stream error STREAM_CLOSED (RFC 9113 5.1)."""
        self.reset(sid, f.STREAM_CLOSED)  # before the call goes: its queued DATA is credited upstream
        pc = self.calls.pop(sid, None)
        self._ended(sid, True)
        if pc is not None:
            pc.client_cancelled()
            self._check_idle()

    def on_headers(self, sid: int, headers: Headers, end_stream: bool) -> None:
        pc = self.calls.get(sid)
        if pc is not None:  # trailers from the client end its request (gRPC sends none)
            if pc.request_ended:
                self._stream_closed(sid)
            elif not end_stream or any(k[:1] == ":" for k, _ in headers):
                # RFC 9113 8.1: trailers end the stream and carry no pseudo-header field.
                self.reset(sid, f.PROTOCOL_ERROR)
                self.calls.pop(sid, None)
                self._ended(sid, True)
                pc.client_cancelled()
                self._check_idle()
            else:
                pc.request_data(b"", True)
            return
        if sid <= self._last_sid:
            reset_here = self._closed.get(sid)
            if reset_here is None:
                raise f.ConnectionError_(
                    f.PROTOCOL_ERROR, f"stream {sid} opened after stream {self._last_sid}"
                )
            if not reset_here:
                raise f.ConnectionError_(f.STREAM_CLOSED, f"HEADERS on closed stream {sid}")
            return
        if sid % 2 == 0:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"client opened even stream {sid}")
        self._last_sid = sid
        if self.going_away or len(self.calls) >= MAX_STREAMS:
            self._refuse_stream(sid, f.REFUSED_STREAM)
            return
        try:
            path, deadline, metadata = gh.request(headers, self._known, KNOWN_FIELDS)
        except gh.Malformed as e:
            log.debug("egress: malformed request from %s on stream %d: %s", self.peer, sid, e)
            self._refuse_stream(sid, f.PROTOCOL_ERROR)
            return
        target = ""
        authority = ""
        for k, v in headers:
            if k == ":authority":
                authority = v
            elif k == TARGET_KEY:
                target = v
        if target:
            metadata = [(k, v) for k, v in metadata if k != TARGET_KEY]
        service = target or service_of(authority)
        pc = ProxiedCall(self._proxy, self, sid, headers, service)
        if not service:
            pc.problem = (
                f"egress {path}: :authority {authority!r} names an address, not a service: dial the "
                f"service by name (e.g. grpc.default_authority, WithAuthority, overrideAuthority) or "
                f"set metadata {TARGET_KEY!r}"
            )
        self.calls[sid] = pc
        self.send.open(sid)
        self.recv.open(sid)
        self.idle.clear()
        if end_stream:
            pc.request_ended = True
        call = Call(method=path, metadata=metadata, deadline=deadline, protocol="grpc", peer=self.peer,
                    exchange=pc)  # fmt: skip
        run(self._chain, call, pc)

    def on_data(self, sid: int, payload: bytes, end_stream: bool) -> None:
        pc = self.calls.get(sid)
        if pc is None or pc.request_ended:
            self.consumed(sid, len(payload))
            if sid > self._last_sid:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, f"DATA on idle stream {sid}")
            if pc is not None or not self._closed.get(sid, False):
                self._stream_closed(sid)
            return
        pc.request_data(payload, end_stream)

    def on_reset(self, sid: int, code: int) -> None:
        pc = self.calls.pop(sid, None)
        self._ended(sid, False)
        if pc is not None:
            pc.client_cancelled()
            self._check_idle()

    def on_goaway(self, last_sid: int, code: int, debug: bytes) -> None:
        if not self.calls:
            self.close()

    def sent(self, sid: int, length: int) -> None:
        pc = self.calls.get(sid)
        if pc is not None:
            pc.response_sent(length)

    # ---- calls.Client: what a call writes ----

    def respond(self, sid: int, block: bytes, end_stream: bool) -> None:
        self.write(f.header_block_frames(sid, self.block(block), end_stream, self.send.max_frame))

    def respond_data(self, sid: int, payload: bytes) -> None:
        self.send.data(sid, payload, False)

    def finish(self, sid: int, trailers: Callable[[], bytes], still_sending: bool) -> None:
        """The call's response ends with `trailers` after its DATA; a client still sending is told
        to stop (RST_STREAM NO_ERROR after a complete response, RFC 9113 8.1)."""
        after = f.rst_stream(sid, f.NO_ERROR) if still_sending else b""
        if sid in self.calls:
            # Encoded as it goes out, so blocks reach the client in the order they were made.
            self.send.trailers(sid, lambda: self.block(trailers()), after)  # finished() forgets it

    def finished(self, sid: int) -> None:
        self._forget(sid)

    def _forget(self, sid: int) -> None:
        pc = self.calls.pop(sid, None)
        self.recv.close(sid)
        # Still sending, the client was told to stop (RST_STREAM NO_ERROR): its DATA may still come.
        self._ended(sid, pc is not None and not pc.request_ended)
        self._check_idle()

    def _check_idle(self) -> None:
        if not self.calls:
            self.idle.set()
            if self.going_away:
                self.close()

    # ---- lifecycle ----

    async def shutdown(self, grace: float) -> None:
        """GOAWAY, let the calls in flight end up to `grace`, then close."""
        if not self.going_away:
            self.going_away = True
            self.write(f.goaway(self._last_sid, f.NO_ERROR))
            self.flush()
        try:
            await asyncio.wait_for(self.idle.wait(), grace)
        except TimeoutError:
            log.info("egress: %d calls cut at the drain deadline", len(self.calls))
        self.close()
