"""The loopback HTTP egress listener: a request naming a service goes to a chosen instance's HTTP ingress.

The service is named by the path's first segment (`/{service}/{path}`, as
Spring Cloud's sidecar did), by the Host header, or by an absolute-form
target through a proxy setting (`http://ocr/v2/...`); which one, and what is
refused (CONNECT, addresses, ambiguous names), is sidecar/egress/http_target.py.
Hop-by-hop headers are dropped both ways (RFC 9110 section 7.6.1, including
those the Connection header names); the end-to-end request headers are the
call's metadata, so filters read them (the model's trace context) and what a
try sends is that metadata as the filters left it (its own trace context).
A `grpc-timeout` header (as grpc-gateway reads it) is the call's deadline, and
each try tells the instance the time it has left in the same header.
The request body is read once (bounded by max_message_bytes) so a try can go
to another instance. Only failures before any response byte went to the caller
are retried: a connection refused or lost before the answer, and a 503 (the
instance refused the call, as its sidecar does while its model is not ready;
UNAVAILABLE, which gRPC egress retries too). A 503 is held, body and all, up to
_HELD_BYTES, and goes to the caller as it came only if the router tries no
other instance; every other answer streams back as it arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from sidecar.core.call import Call, Outcome
from sidecar.core.deadline import GRPC_TIMEOUT_FORMAT, Deadline, grpc_timeout, grpc_timeout_value
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code, http_status
from sidecar.discovery.endpoint import Endpoint
from sidecar.egress.attempts import AttemptChain
from sidecar.egress.http_target import Refusal, Target, http_target
from sidecar.egress.router import AttemptResult, EgressRouter
from sidecar.filters.chain import Filter, Next, build_chain
from sidecar.transport.metadata import HOP_BY_HOP

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Headers aiohttp's client sets itself, or that describe this hop (a proxy's credentials are for it alone).
_NOT_FORWARDED = HOP_BY_HOP - {"content-type", "user-agent"} | {
    "host", "content-length", "proxy-authorization"
}
# A refusal's body is a short error; a longer 503 streams to the caller, and ends the call, as any answer.
_HELD_BYTES = 64 * 1024


def _end_to_end(headers: Mapping[str, str]) -> CIMultiDict[str]:
    # A multi-dict: repeated fields (Set-Cookie, Via) must all cross.
    pairs = [(str(k), str(v)) for k, v in headers.items()]
    named = {
        token.strip().lower()
        for k, v in pairs
        if k.lower() == "connection"
        for token in v.split(",")
    }
    return CIMultiDict((k, v) for k, v in pairs if k.lower() not in _NOT_FORWARDED and k.lower() not in named)


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A 503 an instance answered, held back from the caller while another instance may be tried."""

    status: int
    reason: str | None
    headers: CIMultiDict[str]
    body: bytes

    def response(self) -> web.Response:
        return web.Response(status=self.status, reason=self.reason, headers=self.headers, body=self.body)


async def _read_up_to(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Up to a little over `limit` bytes of a body, and whether that was all of it."""
    parts: list[bytes] = []
    size = 0
    async for chunk in content.iter_any():
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts), False
    return b"".join(parts), True


class _Exchange:
    def __init__(self, request: web.Request, target: Target, body: bytes) -> None:
        self.request = request
        self.target = target
        self.body = body
        self.response: web.StreamResponse | None = None


class HttpEgress:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        router: EgressRouter,
        filters: Sequence[Filter],
        max_message_bytes: int,
        attempt_filters: Sequence[Filter] = (),
    ) -> None:
        """`filters` run once per call, `attempt_filters` once per try (sidecar/egress/attempts.py)."""
        self._host, self._requested_port, self._port = host, port, 0
        self._router = router
        self._attempts = AttemptChain(attempt_filters)
        self._chain: Next = build_chain(filters, self._forward)
        self._session: aiohttp.ClientSession | None = None
        # A CONNECT's authority-form target matches no route: the middleware answers it before routing.
        app = web.Application(client_max_size=max_message_bytes, middlewares=[self._connect])
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        # No connection limit per host beyond aiohttp's pool; no automatic decompression.
        self._session = aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(limit=0))
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._requested_port).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    @web.middleware
    async def _connect(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "CONNECT":
            return await handler(request)
        response = await self._handle(request)
        response.force_close()  # the client may already be sending what it meant to tunnel
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        target = http_target(
            request.method, request.raw_path, tuple(request.headers.getall("Host", ())),
            listen_host=self._host, listen_port=self._port,
        )  # fmt: skip
        if isinstance(target, Refusal):
            return web.json_response({"error": target.message}, status=target.status)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as e:
            return web.json_response({"error": f"egress: request body too large: {e.text}"}, status=413)
        exchange = _Exchange(request, target, body)
        timeout = request.headers.get("grpc-timeout")
        seconds = grpc_timeout(timeout) if timeout is not None else None
        if timeout is not None and seconds is None:
            why = f"egress: grpc-timeout header {timeout[:32]!r}: want {GRPC_TIMEOUT_FORMAT}"
            return web.json_response({"error": why}, status=400)
        call = Call(
            method=f"{request.method} {target.path.partition('?')[0]}",
            metadata=[(k.lower(), v) for k, v in _end_to_end(request.headers).items()],
            deadline=Deadline.after(seconds) if seconds is not None else None,
            protocol="http",
            peer=request.remote or "",
            exchange=exchange,
        )
        outcome = await self._chain(call)
        if exchange.response is not None:
            return exchange.response
        return web.json_response({"error": outcome.message}, status=http_status(outcome.code))

    async def _forward(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, _Exchange) and self._session is not None
        session = self._session
        request = exchange.request

        # The last try's 503, if it was held back: what the caller gets when no other try follows.
        refused: list[_Refusal] = []

        async def attempt(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
            refused.clear()
            url = f"http://{endpoint.host}:{endpoint.http_port}{exchange.target.path}"
            headers = CIMultiDict((k, v) for k, v in tried.metadata if isinstance(v, str))
            headers["grpc-timeout"] = grpc_timeout_value(timeout)
            try:
                upstream = await session.request(
                    request.method, URL(url, encoded=True), data=exchange.body or None,
                    headers=headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
                )
            except aiohttp.SocketTimeoutError:
                # The instance had the try's whole time (and was told so): as a gRPC try, not retried.
                why = f"egress: {url}: deadline exceeded, no answer within {timeout:.3f} s"
                return AttemptResult(Code.DEADLINE_EXCEEDED, why)
            except (aiohttp.ClientConnectionError, TimeoutError) as e:
                # Nothing reached the caller yet: the router may try another instance.
                return AttemptResult(Code.UNAVAILABLE, f"egress: {url}: {type(e).__name__}: {e}")
            async with upstream:
                start = b""
                if upstream.status == 503:
                    start, whole = await _read_up_to(upstream.content, _HELD_BYTES)
                    if whole:
                        headers = _end_to_end(upstream.headers)
                        refused.append(_Refusal(upstream.status, upstream.reason, headers, start))
                        return AttemptResult(Code.UNAVAILABLE, "HTTP 503")
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                              headers=_end_to_end(upstream.headers))
                await response.prepare(request)
                exchange.response = response
                if start:
                    await response.write(start)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            code = Code.UNAVAILABLE if upstream.status == 503 else Code.OK
            if upstream.status >= 500 and upstream.status != 503:
                code = Code.INTERNAL
            return AttemptResult(code, f"HTTP {upstream.status}", committed=True)

        service = exchange.target.service
        deadline = self._router.deadline_for(service, call.deadline)
        try:
            result = await self._router.call(service, deadline, self._attempts.attempt(call, attempt, _port))
        except SidecarError as e:
            if exchange.target.form == "host" and self._router.route(service) is None:
                # The likeliest mistake: a host name for the egress itself, read as the service's.
                return Outcome(e.code, f"{e.message} (named by the Host header; to name the service in"
                                       " the path, /{service}/..., call the egress by its address)")
            return Outcome(e.code, e.message)
        if refused and exchange.response is None:
            exchange.response = refused[-1].response()
        return Outcome(result.code, result.message)


def _port(endpoint: Endpoint) -> int:
    return endpoint.http_port
