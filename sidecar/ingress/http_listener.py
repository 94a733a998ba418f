"""The HTTP ingress listener: the OIP v2 REST binding transcoded to the model's calls, plus /livez, /readyz.

Every error answers `{"error": "<message>"}` with the HTTP status mapped from
the gRPC code (sidecar.core.status.http_status). Knows nothing about the
gRPC data plane.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from aiohttp import web
from google.protobuf.message import Message

from inference import grpc_service_pb2 as pb
from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.deadline import GRPC_TIMEOUT_FORMAT, Deadline, grpc_timeout
from sidecar.core.errors import SidecarError
from sidecar.core.messages import JSON, OnMessage, unobserved
from sidecar.core.status import Code, http_status
from sidecar.filters.chain import Filter, Next, build_chain
from sidecar.health.readiness import Readiness
from sidecar.ingress import openapi
from sidecar.model.http_link import HttpModelLink, code_of_status
from sidecar.model.link import ModelLink
from sidecar.oip import binary_tensors, contract, json_codec
from sidecar.oip.binary_tensors import HEADER, OutputChoice, RestBody
from sidecar.transport.metadata import HOP_BY_HOP

log = logging.getLogger(__name__)

# HTTP headers that describe this HTTP exchange, not the call: never metadata.
_NOT_METADATA = HOP_BY_HOP | {
    "accept",
    "accept-encoding",
    "accept-language",
    "cookie",
    "origin",
    "referer",
    "expect",
    "inference-header-content-length",
}
_METADATA_KEY = re.compile(r"^[0-9a-z_.\-]+$")


@dataclass(slots=True)
class _Exchange:
    """A call transcoded to the model's typed calls. Observable (the body as the caller sent it,
    then the answer as it goes) and, for ModelInfer, batchable (sidecar/batching/seam.py)."""

    request: Message
    response_type: type[Message]
    response: Message | None = None
    body: RestBody | None = None  # the request as the caller sent it (ModelInfer)
    on_message: OnMessage = unobserved
    # Bytes of JSON before the binary tensors of the request and of the answer; -1: all JSON.
    json_lengths: list[int] = field(default_factory=lambda: [-1, -1])

    message_offset: ClassVar[int] = 0
    message_format: ClassVar[str] = JSON

    def observe(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        if self.body is not None:
            _deliver(self.on_message, self.json_lengths, True, self.body)

    def json_length(self, from_client: bool) -> int:
        return self.json_lengths[from_client]

    def answered(self, rest: RestBody) -> None:
        _deliver(self.on_message, self.json_lengths, False, rest)

    def infer_request(self) -> pb.ModelInferRequest:
        assert isinstance(self.request, pb.ModelInferRequest)
        return self.request

    def detached(self, request: pb.ModelInferRequest) -> _Exchange:
        return _Exchange(request, pb.ModelInferResponse)

    def infer_response(self) -> tuple[pb.ModelInferResponse, Metadata]:
        assert isinstance(self.response, pb.ModelInferResponse)
        return self.response, []

    def waits(self) -> None:
        pass

    async def respond_infer(self, response: pb.ModelInferResponse, initial: Metadata) -> None:
        self.response = response


@dataclass(slots=True)
class _RawExchange:
    """A REST call to a REST model, its body passed through. Observable; batchable through the
    typed path (its body parsed, the batch's answer written back in the form the caller asked)."""

    path: str
    body: RestBody
    model: str = ""
    version: str = ""
    status: int = 0
    on_message: OnMessage = unobserved
    json_lengths: list[int] = field(default_factory=lambda: [-1, -1])
    choice: OutputChoice = field(default_factory=OutputChoice)  # which outputs the caller wants binary

    message_offset: ClassVar[int] = 0
    message_format: ClassVar[str] = JSON

    def observe(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        _deliver(on_message, self.json_lengths, True, self.body)

    def json_length(self, from_client: bool) -> int:
        return self.json_lengths[from_client]

    def infer_request(self) -> pb.ModelInferRequest:
        request, self.choice = binary_tensors.infer_request_from_rest(self.body, self.model, self.version)
        return request

    def detached(self, request: pb.ModelInferRequest) -> _Exchange:
        return _Exchange(request, pb.ModelInferResponse)

    def infer_response(self) -> tuple[pb.ModelInferResponse, Metadata]:
        raise AssertionError("a batch's own call is never raw")

    def waits(self) -> None:
        pass

    async def respond_infer(self, response: pb.ModelInferResponse, initial: Metadata) -> None:
        self.status = 200
        self.body = binary_tensors.infer_response_to_rest(response, self.choice)


def _deliver(on_message: OnMessage, lengths: list[int], from_client: bool, rest: RestBody) -> None:
    lengths[from_client] = -1 if rest.header_length is None else rest.header_length
    on_message(from_client, rest.body)


class HttpIngress:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        link: ModelLink,
        filters: Sequence[Filter],
        readiness: Readiness,
        max_message_bytes: int,
        timeout: float,
        shutdown_timeout: float,
        metrics: Callable[[], tuple[bytes, str]] | None = None,
    ) -> None:
        """`metrics`, when given, is served at GET /metrics: it returns the body and its content type."""
        self._host = host
        self._requested_port = port
        self._port = 0
        self._link = link
        # A REST model gets inference bodies as they came, and its answers as they go.
        self._rest_model = link if isinstance(link, HttpModelLink) else None
        self._readiness = readiness
        self._timeout = timeout
        self._chain: Next = build_chain(filters, self._forward)
        # Probes of the model's own health are not gated on the sidecar's view of it.
        self._ungated: Next = self._forward
        app = web.Application(client_max_size=max_message_bytes, middlewares=[_errors_as_json])
        r = app.router
        r.add_get("/livez", self._livez)
        r.add_get("/readyz", self._readyz)
        if metrics is not None:
            r.add_get("/metrics", _exposition(metrics))
        r.add_get("/v2/health/live", self._server_live)
        r.add_get("/v2/health/ready", self._server_ready)
        r.add_get("/v2", self._server_metadata)
        for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
            r.add_get(prefix, self._model_metadata)
            r.add_get(prefix + "/ready", self._model_ready)
            r.add_post(prefix + "/infer", self._infer)
        openapi.add_routes(r)
        self._app = app
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)

    @property
    def port(self) -> int:
        return self._port

    def routes(self) -> frozenset[tuple[str, str]]:
        """(method, path template) of every route served, HEAD aside."""
        return frozenset(
            (r.method, r.resource.canonical)
            for r in self._app.router.routes()
            if r.method != "HEAD" and r.resource is not None
        )

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port, reuse_port=False)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    # -- probes of the sidecar itself

    async def _livez(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        state = self._readiness.current
        if state.ready:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "error": state.reason}, status=503)

    # -- the OIP v2 REST binding

    async def _server_live(self, request: web.Request) -> web.Response:
        resp = await self._call(
            request, "ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse, gated=False
        )
        assert isinstance(resp, pb.ServerLiveResponse)
        return _boolean({"live": resp.live}, "server is not live")

    async def _server_ready(self, request: web.Request) -> web.Response:
        resp = await self._call(
            request, "ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse, gated=False
        )
        assert isinstance(resp, pb.ServerReadyResponse)
        return _boolean({"ready": resp.ready}, "server is not ready")

    async def _model_ready(self, request: web.Request) -> web.Response:
        model, version = _model(request)
        resp = await self._call(
            request,
            "ModelReady",
            pb.ModelReadyRequest(name=model, version=version),
            pb.ModelReadyResponse,
            gated=False,
        )
        assert isinstance(resp, pb.ModelReadyResponse)
        return _boolean({"name": model, "ready": resp.ready}, f'model "{model}" is not ready')

    async def _server_metadata(self, request: web.Request) -> web.Response:
        resp = await self._call(
            request, "ServerMetadata", pb.ServerMetadataRequest(), pb.ServerMetadataResponse
        )
        assert isinstance(resp, pb.ServerMetadataResponse)
        if binary_tensors.EXTENSION not in resp.extensions:
            resp.extensions.append(binary_tensors.EXTENSION)  # this REST binding speaks it
        return web.json_response(json_codec.server_metadata_to_json(resp))

    async def _model_metadata(self, request: web.Request) -> web.Response:
        model, version = _model(request)
        resp = await self._call(
            request,
            "ModelMetadata",
            pb.ModelMetadataRequest(name=model, version=version),
            pb.ModelMetadataResponse,
        )
        assert isinstance(resp, pb.ModelMetadataResponse)
        return web.json_response(json_codec.model_metadata_to_json(resp))

    async def _infer(self, request: web.Request) -> web.Response:
        model, version = _model(request)
        rest = RestBody(await request.read(), binary_tensors.header_length(request.headers.get(HEADER)))
        # A REST model gets the body as it came, unless it uses an extension the model lacks.
        if self._rest_model is not None and (
            self._rest_model.speaks_binary or not binary_tensors.mentions_extension(rest)
        ):
            return await self._pass_infer(request, rest)
        infer, choice = binary_tensors.infer_request_from_rest(rest, model, version)
        exchange = _Exchange(infer, pb.ModelInferResponse, body=rest)
        resp = await self._call(request, "ModelInfer", infer, pb.ModelInferResponse, exchange=exchange)
        assert isinstance(resp, pb.ModelInferResponse)
        answer = binary_tensors.infer_response_to_rest(resp, choice)
        exchange.answered(answer)
        return _rest_response(200, answer)

    async def _call(
        self,
        request: web.Request,
        name: str,
        message: Message,
        response_type: type[Message],
        *,
        gated: bool = True,
        exchange: _Exchange | None = None,
    ) -> Message:
        exchange = exchange or _Exchange(message, response_type)
        call = Call(
            method=contract.PATHS[name],
            metadata=_metadata(request),
            deadline=self._deadline(request),
            protocol="http",
            peer=request.remote or "",
            model=request.match_info.get("model", ""),
            exchange=exchange,
            request_bytes=request.content_length,
        )
        outcome = await (self._chain if gated else self._ungated)(call)
        if not outcome.ok:
            raise _Refused(outcome)
        assert exchange.response is not None
        return exchange.response

    async def _pass_infer(self, request: web.Request, body: RestBody) -> web.Response:
        model, version = _model(request)
        exchange = _RawExchange(request.path, body, model, version)
        call = Call(
            method=contract.MODEL_INFER,
            metadata=_metadata(request),
            deadline=self._deadline(request),
            protocol="http",
            peer=request.remote or "",
            model=request.match_info.get("model", ""),
            exchange=exchange,
            request_bytes=len(body.body),
        )
        outcome = await self._chain(call)
        if exchange.status == 0:
            raise _Refused(outcome)
        call.response_bytes = len(exchange.body.body)
        if exchange.status == 200:
            _deliver(exchange.on_message, exchange.json_lengths, False, exchange.body)
        return _rest_response(exchange.status, exchange.body)

    def _deadline(self, request: web.Request) -> Deadline:
        """The configured timeout, or sooner the caller's `grpc-timeout` header (as grpc-gateway reads it)."""
        deadline = Deadline.after(self._timeout)
        value = request.headers.get("grpc-timeout")
        if value is None:
            return deadline
        seconds = grpc_timeout(value)
        if seconds is None:
            raise SidecarError(
                Code.INVALID_ARGUMENT, f"grpc-timeout header {value[:32]!r}: want {GRPC_TIMEOUT_FORMAT}"
            )
        return Deadline.after(seconds).sooner(deadline)

    async def _forward(self, call: Call) -> Outcome:
        exchange = call.exchange
        if isinstance(exchange, _RawExchange):
            return await self._forward_raw(call, exchange)
        assert isinstance(exchange, _Exchange)
        timeout = call.deadline.remaining() if call.deadline else None
        try:
            exchange.response, _, trailing = await self._link.call(
                call.method,
                exchange.request,
                exchange.response_type,
                timeout=timeout,
                metadata=call.metadata,
            )
        except SidecarError as e:
            return Outcome(e.code, e.message)
        return Outcome(Code.OK, "", trailing)

    async def _forward_raw(self, call: Call, exchange: _RawExchange) -> Outcome:
        assert self._rest_model is not None
        timeout = call.deadline.remaining() if call.deadline else None
        try:
            exchange.status, exchange.body = await self._rest_model.post_raw(
                exchange.path, exchange.body, call.metadata, timeout
            )
        except SidecarError as e:
            return Outcome(e.code, e.message)
        return Outcome(Code.OK if exchange.status == 200 else code_of_status(exchange.status))


class _Refused(SidecarError):
    """A call the chain ended without an answer; a rate limit's pushback becomes Retry-After (RFC 9110)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.code, outcome.message)
        self.headers: dict[str, str] = {}
        for key, value in outcome.trailing_metadata:
            if key == "grpc-retry-pushback-ms" and isinstance(value, str) and value.isdigit():
                self.headers["Retry-After"] = str(max(1, math.ceil(int(value) / 1000)))


def _model(request: web.Request) -> tuple[str, str]:
    return request.match_info["model"], request.match_info.get("version", "")


def _metadata(request: web.Request) -> Metadata:
    md: Metadata = []
    for key, value in request.headers.items():
        k = key.lower()
        if k in _NOT_METADATA or not _METADATA_KEY.match(k) or k.endswith("-bin"):
            continue
        if value.isascii() and value.isprintable():
            md.append((k, value))
    return md


def _exposition(render: Callable[[], tuple[bytes, str]]) -> Handler:
    async def metrics(request: web.Request) -> web.Response:
        body, content_type = render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    return metrics


def _boolean(body: dict[str, object], why_not: str) -> web.Response:
    # OIP REST: the status code is the answer (4xx means false); the body is the KServe
    # OpenAPI's ({"live": true}, {"ready": true}, {"name": ..., "ready": true}).
    if all(v is not False for v in body.values()):
        return web.json_response(body)
    return web.json_response({**body, "error": why_not}, status=400)


def _rest_response(status: int, rest: RestBody) -> web.Response:
    headers = {} if rest.header_length is None else {HEADER: str(rest.header_length)}
    return web.Response(status=status, body=rest.body, content_type=rest.content_type, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SidecarError as e:
        headers = e.headers if isinstance(e, _Refused) else None
        return web.json_response({"error": e.message}, status=http_status(e.code), headers=headers)
    except web.HTTPRequestEntityTooLarge as e:
        return web.json_response(
            {"error": f"request body too large: {e.text} (max_message_bytes)"}, status=413
        )
    except web.HTTPException as e:
        if e.status < 400:
            raise
        reason = e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason
        return web.json_response({"error": f"{request.method} {request.path}: {reason}"}, status=e.status)
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return web.json_response(
            {"error": f"internal error serving {request.method} {request.path}; see the sidecar log"},
            status=500,
        )
