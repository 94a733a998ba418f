"""The link to a model that speaks the OIP v2 REST binding (e.g. PHP): OIP calls become REST requests.

Translates HTTP statuses and connection errors into SidecarError at this
boundary. Has no health service of its own: the prober falls back to OIP
ServerReady and ModelReady, whose REST status alone decides (200 = true).
Whether the model speaks Triton's binary tensor extension is learnt from its
server metadata when the prober finds it ready, never on a request's path;
until then, and if it does not, tensors travel as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import aiohttp
from google.protobuf.message import Message

from inference import grpc_service_pb2 as pb
from sidecar.core.call import Metadata
from sidecar.core.deadline import grpc_timeout_value
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.oip import binary_tensors, contract, fast_json, rest_model_codec
from sidecar.oip.binary_tensors import HEADER, RestBody

M = TypeVar("M", bound=Message)

_CODE_OF_STATUS = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    409: Code.ABORTED,
    413: Code.RESOURCE_EXHAUSTED,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    501: Code.UNIMPLEMENTED,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


def code_of_status(status: int) -> Code:
    return _CODE_OF_STATUS.get(status, Code.INTERNAL if status >= 500 else Code.UNKNOWN)


def _model_path(name: str, version: str) -> str:
    base = f"/v2/models/{name}"
    return f"{base}/versions/{version}" if version else base


class HttpModelLink:
    def __init__(self, address: str, max_message_bytes: int) -> None:
        self.address = address
        self._base = f"http://{address}"
        self._max = max_message_bytes
        self._session: aiohttp.ClientSession | None = None
        self._binary: bool | None = None  # the model's binary_tensor_data; None: not yet known
        self._calls: dict[str, Callable[[Message, float | None, Metadata], Awaitable[Message]]] = {
            contract.SERVER_LIVE: self._server_live,
            contract.SERVER_READY: self._server_ready,
            contract.MODEL_READY: self._model_ready,
            contract.SERVER_METADATA: self._server_metadata,
            contract.MODEL_METADATA: self._model_metadata,
            contract.MODEL_INFER: self._model_infer,
        }

    @property
    def speaks_binary(self) -> bool:
        """Whether the model listed binary_tensor_data in its server metadata, as last seen."""
        return bool(self._binary)

    @property
    def methods(self) -> frozenset[str]:
        """The gRPC methods this link can transcode."""
        return frozenset(self._calls)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created on first use, inside the running loop; keep-alive connections are reused.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True)
            )
        return self._session

    async def call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        timeout: float | None,
        metadata: Metadata | None = None,
    ) -> tuple[M, Metadata, Metadata]:
        handler = self._calls.get(method)
        if handler is None:
            raise SidecarError(
                Code.UNIMPLEMENTED, f"{method}: the model speaks OIP REST, which has no such call"
            )
        response = await handler(request, timeout, metadata or [])
        return cast(M, response), [], []

    async def health(self, timeout: float) -> tuple[bool, str, Code]:
        return False, "a REST model has no grpc.health.v1", Code.UNIMPLEMENTED

    async def close(self, grace: float | None = None) -> None:
        if self._session is not None:
            await self._session.close()

    async def _exchange(
        self, verb: str, path: str, timeout: float | None, metadata: Metadata, body: RestBody | None
    ) -> tuple[int, RestBody]:
        """One HTTP exchange with the model: (status, body). Connection errors become SidecarError."""
        headers = {k: v for k, v in metadata if isinstance(v, str) and not k.endswith("-bin")}
        if body is not None:
            headers["Content-Type"] = body.content_type
            if body.header_length is not None:
                headers[HEADER] = str(body.header_length)
        if timeout is not None:  # the model's time left, in the header a REST server may read
            headers["grpc-timeout"] = grpc_timeout_value(timeout)
        try:
            async with self._client().request(
                verb,
                self._base + path,
                data=None if body is None else body.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                raw = await resp.read()
                length = resp.headers.get(HEADER)
        except TimeoutError:
            raise SidecarError(
                Code.DEADLINE_EXCEEDED, f"{verb} {path}: the model did not answer in time"
            ) from None
        except aiohttp.ClientError as e:
            raise SidecarError(Code.UNAVAILABLE, f"{verb} {path}: cannot reach the model: {e}") from None
        try:
            return resp.status, RestBody(raw, binary_tensors.header_length(length))
        except SidecarError as e:
            raise SidecarError(Code.INTERNAL, f"{verb} {path}: the model's answer: {e.message}") from None

    async def _request(
        self, verb: str, path: str, timeout: float | None, metadata: Metadata, body: Any = None
    ) -> tuple[int, Any]:
        data = None if body is None else RestBody(fast_json.dumps(body))
        status, answer = await self._exchange(verb, path, timeout, metadata, data)
        return status, _parsed(answer.body)

    async def post_raw(
        self, path: str, body: RestBody, metadata: Metadata, timeout: float | None
    ) -> tuple[int, RestBody]:
        """POST a REST body as it came and return the model's status and body untouched (passthrough)."""
        return await self._exchange("POST", path, timeout, metadata, body)

    async def _boolean(self, path: str, timeout: float | None, metadata: Metadata) -> bool:
        status, _ = await self._request("GET", path, timeout, metadata)
        return status == 200

    async def _json(
        self, verb: str, path: str, timeout: float | None, metadata: Metadata, body: Any = None
    ) -> Any:
        status, parsed = await self._request(verb, path, timeout, metadata, body)
        if status != 200:
            raise _status_error(verb, path, status, parsed)
        return parsed

    async def _server_live(self, req: Message, timeout: float | None, md: Metadata) -> Message:
        return pb.ServerLiveResponse(live=await self._boolean("/v2/health/live", timeout, md))

    async def _server_ready(self, req: Message, timeout: float | None, md: Metadata) -> Message:
        ready = await self._boolean("/v2/health/ready", timeout, md)
        if ready and self._binary is None:
            # The prober asks this, so the request path never waits on learning it.
            try:
                meta = await self._server_metadata(pb.ServerMetadataRequest(), timeout, md)
            except SidecarError:
                pass
            else:
                assert isinstance(meta, pb.ServerMetadataResponse)
                self._binary = binary_tensors.EXTENSION in meta.extensions
        return pb.ServerReadyResponse(ready=ready)

    async def _model_ready(self, req: Message, timeout: float | None, md: Metadata) -> Message:
        assert isinstance(req, pb.ModelReadyRequest)
        path = _model_path(req.name, req.version) + "/ready"
        return pb.ModelReadyResponse(ready=await self._boolean(path, timeout, md))

    async def _server_metadata(self, req: Message, timeout: float | None, md: Metadata) -> Message:
        return rest_model_codec.server_metadata_from_json(await self._json("GET", "/v2", timeout, md))

    async def _model_metadata(self, req: Message, timeout: float | None, md: Metadata) -> Message:
        assert isinstance(req, pb.ModelMetadataRequest)
        body = await self._json("GET", _model_path(req.name, req.version), timeout, md)
        return rest_model_codec.model_metadata_from_json(body)

    async def _model_infer(self, req: Message, timeout: float | None, md: Metadata) -> Message:
        assert isinstance(req, pb.ModelInferRequest)
        path = _model_path(req.model_name, req.model_version) + "/infer"
        body = rest_model_codec.infer_request_to_rest(req, binary=self.speaks_binary)
        status, answer = await self._exchange("POST", path, timeout, md, body)
        if status != 200:
            raise _status_error("POST", path, status, _parsed(answer.body))
        return rest_model_codec.infer_response_from_rest(answer)


def _parsed(raw: bytes) -> Any:
    """The model's answer as JSON, or None if it is empty or not JSON (its status then speaks)."""
    if not raw:
        return None
    try:
        return fast_json.loads(raw, lambda m: SidecarError(Code.INTERNAL, m))
    except SidecarError:
        return None


def _status_error(verb: str, path: str, status: int, parsed: Any) -> SidecarError:
    message = parsed.get("error") if isinstance(parsed, dict) else None
    return SidecarError(
        code_of_status(status), str(message or f"{verb} {path}: the model answered HTTP {status}")
    )
