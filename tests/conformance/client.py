"""One OIP v2 client with the same methods over gRPC and over the REST binding, so each check is written once.

Failed calls raise CallFailed with the status in one vocabulary (gRPC code names; HTTP statuses
mapped as the OIP REST binding and the sidecar map them). A response that breaks the contract's
shape (a missing field, bytes that are not whole elements) raises ContractViolation, which
pytest reports as a failed check. Knows nothing about which checks exist.
"""

from __future__ import annotations

import enum
import http.client
import json
import queue
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.conformance.contract import (
    CONTENTS_FIELD,
    InferRequest,
    InferResult,
    ModelMeta,
    OutputTensor,
    ServerMeta,
    TensorSpec,
    pack,
    raw_count,
)

Transport = Literal["grpc", "rest"]
# How a request carries its tensors: gRPC has typed `contents` and `raw_input_contents`;
# the REST binding has JSON `data`, and Triton's binary tensor extension (`binary`: raw bytes
# after the JSON, outputs asked for the same way) where the server lists binary_tensor_data.
Encoding = Literal["contents", "raw", "json", "binary"]
ENCODINGS: dict[Transport, tuple[Encoding, ...]] = {
    "grpc": ("contents", "raw"),
    "rest": ("json", "binary"),
}
BINARY_EXTENSION = "binary_tensor_data"
HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Status(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    OTHER = "OTHER"


# HTTP status → gRPC code, as the OIP REST binding and the sidecar's README pair them.
_HTTP_STATUS = {
    400: Status.INVALID_ARGUMENT,
    404: Status.NOT_FOUND,
    501: Status.UNIMPLEMENTED,
    504: Status.DEADLINE_EXCEEDED,
}


class CallFailed(Exception):
    """A call the endpoint refused. `code` is what the wire said: a gRPC code name or "HTTP 400"."""

    def __init__(self, call: str, status: Status, code: str, message: str, body: str = "") -> None:
        shown = f"{code}: {message!r}" + (f" (body {body!r})" if body and not message else "")
        super().__init__(f"{call} ended {shown}")
        self.status = status
        self.code = code
        self.message = message


class ContractViolation(AssertionError):
    """The endpoint answered, but not in the form the contract requires."""


class Client(Protocol):
    url: str
    transport: Transport

    def server_live(self) -> bool: ...
    def server_ready(self) -> bool: ...
    def model_ready(self, model: str, version: str = "") -> bool: ...
    def server_metadata(self) -> ServerMeta: ...
    def model_metadata(self, model: str, version: str = "") -> ModelMeta: ...
    def infer(
        self, request: InferRequest, encoding: Encoding, timeout: float | None = None
    ) -> InferResult: ...
    def close(self) -> None: ...


# One answer on a ModelStreamInfer stream: a result, or the error_message the server sent for it.
StreamAnswer = InferResult | str


def transport_of(url: str) -> Transport:
    """grpc://HOST:PORT is gRPC, http://HOST:PORT[/prefix] is REST; raises ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"target {url!r} needs a host and a port, e.g. grpc://127.0.0.1:8001")
    if parts.scheme == "grpc":
        if parts.path not in ("", "/"):
            raise ValueError(f"target {url!r}: a gRPC target has no path")
        return "grpc"
    if parts.scheme == "http":
        return "rest"
    raise ValueError(f"target {url!r}: the scheme must be grpc:// or http:// (TLS is not supported yet)")


def connect(url: str, timeout: float) -> Client:
    """A client of `url`; `timeout` is the deadline of each call that sets none."""
    if transport_of(url) == "grpc":
        return GrpcClient(url, timeout)
    return RestClient(url, timeout)


# ---- gRPC --------------------------------------------------------------------------------------


def _failed(call: str, error: grpc.RpcError) -> CallFailed:
    code: grpc.StatusCode = error.code()
    status = Status.__members__.get(code.name, Status.OTHER)
    return CallFailed(call, status, code.name, error.details() or "")


class GrpcClient:
    transport: Transport = "grpc"

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._timeout = timeout
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self._channel = grpc.insecure_channel(urllib.parse.urlsplit(url).netloc, options=options)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise _failed(method, error) from None

    def server_live(self) -> bool:
        return bool(self._call("ServerLive", pb.ServerLiveRequest()).live)

    def server_ready(self) -> bool:
        return bool(self._call("ServerReady", pb.ServerReadyRequest()).ready)

    def model_ready(self, model: str, version: str = "") -> bool:
        return bool(self._call("ModelReady", pb.ModelReadyRequest(name=model, version=version)).ready)

    def server_metadata(self) -> ServerMeta:
        resp = self._call("ServerMetadata", pb.ServerMetadataRequest())
        return ServerMeta(resp.name, resp.version, tuple(resp.extensions))

    def model_metadata(self, model: str, version: str = "") -> ModelMeta:
        resp = self._call("ModelMetadata", pb.ModelMetadataRequest(name=model, version=version))

        def specs(tensors: Sequence[Any]) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(t.name, t.datatype, tuple(t.shape)) for t in tensors)

        return ModelMeta(
            resp.name, tuple(resp.versions), resp.platform, specs(resp.inputs), specs(resp.outputs)
        )

    def health_check(self, service: str = "") -> str:
        """grpc.health.v1 Check: the serving status's name, e.g. "SERVING"."""
        try:
            resp = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self._timeout)
        except grpc.RpcError as error:
            raise _failed("grpc.health.v1.Health/Check", error) from None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))

    def infer(self, request: InferRequest, encoding: Encoding, timeout: float | None = None) -> InferResult:
        resp = self._call("ModelInfer", _grpc_request(request, encoding), timeout)
        return _grpc_result(resp)

    def stream_infer(
        self, requests: Sequence[InferRequest], encoding: Encoding, timeout: float | None = None
    ) -> list[StreamAnswer]:
        """ModelStreamInfer, bidirectionally: each request is sent only once the answer to the one
        before it has arrived, so the server cannot pass by reading the whole stream first."""
        sent: queue.Queue[Any] = queue.Queue()
        done = object()

        def outgoing() -> Iterator[Any]:
            while (item := sent.get()) is not done:
                yield item

        answers: list[StreamAnswer] = []
        sent.put(_grpc_request(requests[0], encoding))
        deadline = self._timeout if timeout is None else timeout
        stream = self._stub.ModelStreamInfer(outgoing(), timeout=deadline)
        try:
            for answer in stream:
                if answer.error_message:
                    answers.append(answer.error_message)
                else:
                    answers.append(_grpc_result(answer.infer_response))
                if len(answers) < len(requests):
                    sent.put(_grpc_request(requests[len(answers)], encoding))
                else:
                    sent.put(done)
        except grpc.RpcError as error:
            raise _failed("ModelStreamInfer", error) from None
        finally:
            sent.put(done)
        return answers

    def close(self) -> None:
        self._channel.close()


def _grpc_request(request: InferRequest, encoding: Encoding) -> Any:
    msg = pb.ModelInferRequest(model_name=request.model, model_version=request.version, id=request.id)
    for tensor in request.inputs:
        entry = msg.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if encoding == "raw":
            msg.raw_input_contents.append(pack(tensor))
        elif encoding == "contents":
            getattr(entry.contents, CONTENTS_FIELD[tensor.datatype]).extend(tensor.values)
        else:
            raise ValueError(f"gRPC has no {encoding!r} encoding")
    for name in request.outputs:
        msg.outputs.add(name=name)
    return msg


def _grpc_result(resp: Any) -> InferResult:
    return InferResult(resp.model_name, resp.id, _grpc_outputs(resp), resp.model_version)


def _grpc_outputs(resp: Any) -> tuple[OutputTensor, ...]:
    raw = list(resp.raw_output_contents)
    if raw and len(raw) != len(resp.outputs):
        raise ContractViolation(
            f"response has {len(raw)} raw_output_contents for {len(resp.outputs)} outputs"
        )
    outputs: list[OutputTensor] = []
    for i, out in enumerate(resp.outputs):
        where = f'output "{out.name}"'
        if raw:
            if out.contents.ListFields():
                raise ContractViolation(f"{where} has both typed contents and raw_output_contents")
            try:
                count = raw_count(out.datatype, raw[i], where)
            except ValueError as error:
                raise ContractViolation(str(error)) from None
        else:
            field = CONTENTS_FIELD.get(out.datatype)
            if field is None:
                raise ContractViolation(
                    f"{where} is {out.datatype}, which travels only in raw_output_contents, "
                    "but the response has none"
                )
            count = len(getattr(out.contents, field))
        outputs.append(OutputTensor(out.name, out.datatype, tuple(out.shape), count))
    return tuple(outputs)


# ---- REST --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    call: str
    status: int
    body: bytes
    header_length: int | None = None  # binary tensor extension: the JSON's length, then tensors

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body if self.header_length is None else self.body[: self.header_length])
        except ValueError:
            raise ContractViolation(f"{what}: the body is not JSON: {self.body[:200]!r}") from None


class RestClient:
    transport: Transport = "rest"

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._timeout = timeout
        parts = urllib.parse.urlsplit(url)
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")

    def _request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> _Reply:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            headers = dict(headers or {})
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, self._prefix + path, data, headers)
            resp = conn.getresponse()
            length = resp.getheader(HEADER_LENGTH)
            return _Reply(f"{method} {path}", resp.status, resp.read(), int(length) if length else None)
        finally:
            conn.close()

    def _ok(self, reply: _Reply, what: str) -> Any:
        if reply.status != 200:
            raise _http_failed(reply)
        return reply.json(what)

    def _boolean(self, path: str) -> bool:
        # OIP REST: a health endpoint answers with its status code: 200 true, 4xx false.
        reply = self._request("GET", path)
        if reply.status == 200:
            return True
        if 400 <= reply.status < 500 and reply.status != 404:
            return False
        raise _http_failed(reply)

    def server_live(self) -> bool:
        return self._boolean("/v2/health/live")

    def server_ready(self) -> bool:
        return self._boolean("/v2/health/ready")

    def model_ready(self, model: str, version: str = "") -> bool:
        return self._boolean(_model_path(model, version) + "/ready")

    def server_metadata(self) -> ServerMeta:
        body = self._ok(self._request("GET", "/v2"), "GET /v2")
        what = "server metadata"
        return ServerMeta(
            _field(body, "name", str, what),
            _field(body, "version", str, what),
            tuple(body.get("extensions", ())),
        )

    def model_metadata(self, model: str, version: str = "") -> ModelMeta:
        path = _model_path(model, version)
        body = self._ok(self._request("GET", path), f"GET {path}")
        what = "model metadata"
        return ModelMeta(
            _field(body, "name", str, what),
            tuple(body.get("versions", ())),
            str(body.get("platform", "")),
            _specs(_field(body, "inputs", list, what), f"{what} inputs"),
            _specs(_field(body, "outputs", list, what), f"{what} outputs"),
        )

    def infer(self, request: InferRequest, encoding: Encoding, timeout: float | None = None) -> InferResult:
        if encoding not in ("json", "binary"):
            raise ValueError(f"REST has no {encoding!r} encoding")
        binary = encoding == "binary"
        inputs: list[dict[str, object]] = []
        tail: list[bytes] = []
        for t in request.inputs:
            entry: dict[str, object] = {"name": t.name, "shape": list(t.shape), "datatype": t.datatype}
            if binary:
                tail.append(pack(t))
                entry["parameters"] = {"binary_data_size": len(tail[-1])}
            else:
                entry["data"] = [v.decode() if isinstance(v, bytes) else v for v in t.values]
            inputs.append(entry)
        body: dict[str, object] = {"inputs": inputs}
        if request.id:
            body["id"] = request.id
        if request.outputs:
            body["outputs"] = [{"name": name} for name in request.outputs]
        if binary:
            body["parameters"] = {"binary_data_output": True}
        # The deadline goes in grpc-timeout, which grpc-gateway and ai-sidecar read; the socket
        # keeps the kit's own timeout, so a server that ignores the header is seen to ignore it.
        headers = {} if timeout is None else {"grpc-timeout": f"{max(1, round(timeout * 1000))}m"}
        path = _model_path(request.model, request.version) + "/infer"
        if binary:
            header = json.dumps(body).encode()
            headers |= {HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"}
            reply = self._request("POST", path, headers=headers, raw=header + b"".join(tail))
        else:
            reply = self._request("POST", path, body, headers=headers)
        resp = self._ok(reply, f"POST {path}")
        return _rest_result(resp, reply)

    def close(self) -> None:
        pass


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _model_path(model: str, version: str) -> str:
    base = f"/v2/models/{_quote(model)}"
    return f"{base}/versions/{_quote(version)}" if version else base


def _rest_result(resp: Any, reply: _Reply) -> InferResult:
    """An OIP REST inference response; outputs sized by binary_data_size are read after the JSON."""
    what = "inference response"
    tail = b"" if reply.header_length is None else reply.body[reply.header_length :]
    pos = 0
    outputs = []
    for i, out in enumerate(_field(resp, "outputs", list, what)):
        where = f"{what} outputs[{i}]"
        shape = _field(out, "shape", list, where)
        if not all(type(d) is int for d in shape):
            raise ContractViolation(f"{where}.shape must be a list of integers, got {shape}")
        datatype = _field(out, "datatype", str, where)
        size = (out.get("parameters") or {}).get("binary_data_size") if isinstance(out, dict) else None
        if size is None:
            count = _count(_field(out, "data", list, where))
        else:
            if reply.header_length is None or not isinstance(size, int) or pos + size > len(tail):
                raise ContractViolation(
                    f"{where} has binary_data_size {size}, but the body has {len(tail) - pos} bytes left "
                    f"after the JSON (Inference-Header-Content-Length {reply.header_length})"
                )
            try:
                count = raw_count(datatype, tail[pos : pos + size], where)
            except ValueError as error:
                raise ContractViolation(str(error)) from None
            pos += size
        outputs.append(OutputTensor(_field(out, "name", str, where), datatype, tuple(shape), count))
    if pos != len(tail):
        raise ContractViolation(f"{what}: {len(tail) - pos} bytes after the last binary output")
    return InferResult(
        _field(resp, "model_name", str, what),
        str(resp.get("id", "")),
        tuple(outputs),
        str(resp.get("model_version", "")),
    )


def _http_failed(reply: _Reply) -> CallFailed:
    # OIP REST: an error is {"error": "<message>"}; anything else leaves the message empty.
    message = ""
    try:
        body = json.loads(reply.body)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    status = _HTTP_STATUS.get(reply.status, Status.OTHER)
    body_text = reply.body[:200].decode(errors="replace")
    return CallFailed(reply.call, status, f"HTTP {reply.status}", message, body_text)


def _field(obj: object, key: str, kind: type, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ContractViolation(f'{what}: missing field "{key}" in {json.dumps(obj)[:200]}')
    value = obj[key]
    if not isinstance(value, kind):
        raise ContractViolation(
            f'{what}: "{key}" must be a JSON {kind.__name__}, got {json.dumps(value)[:100]}'
        )
    return value


def _specs(items: list[Any], what: str) -> tuple[TensorSpec, ...]:
    specs = []
    for i, item in enumerate(items):
        where = f"{what}[{i}]"
        shape = _field(item, "shape", list, where)
        if not all(type(d) is int for d in shape):
            raise ContractViolation(f"{where}.shape must be a list of integers, got {shape}")
        specs.append(
            TensorSpec(_field(item, "name", str, where), _field(item, "datatype", str, where), tuple(shape))
        )
    return tuple(specs)


def _count(data: list[Any]) -> int:
    """Elements in OIP JSON tensor data, flat or nested row-major."""
    return sum(_count(item) if isinstance(item, list) else 1 for item in data)
