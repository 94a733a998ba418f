"""Triton's binary tensor data extension on OIP REST bodies, both ways. Knows nothing about HTTP servers.

The extension (Triton's docs/protocol/extension_binary_data.md): a body is a JSON object, then
the raw bytes of some tensors in the order they appear in it, and the
``Inference-Header-Content-Length`` header gives the JSON object's length. A tensor carried so
has ``"parameters": {"binary_data_size": N}`` and no ``data``. A request asks for binary outputs
with ``"binary_data_output": true`` in its parameters (every output) or ``"binary_data": true``
in a requested output's parameters (that one; it overrides the former either way). Raw bytes are
the OIP raw layout, so a binary input is ``raw_input_contents`` as it came.

Both directions exist twice: the sidecar as a REST server (ingress: request in, response out)
and as a REST client of a model that speaks the extension (model link: request out, response
in). The extension's parameters never reach the protobuf messages: they describe the REST body,
not the call. Every size and offset is checked against the body before use; a mismatch is
INVALID_ARGUMENT naming the tensor when the caller sent it, INTERNAL when the model did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.internal.containers import MessageMap

import inference.grpc_service_pb2 as pb
from sidecar.core.errors import SidecarError
from sidecar.oip import fast_json, json_codec
from sidecar.oip.json_codec import BINARY_DATA_SIZE, NO_BINARY_DATA, BinaryData
from sidecar.oip.tensor_bytes import bad_model, bad_request, show

__all__ = [
    "EXTENSION",
    "HEADER",
    "OutputChoice",
    "RestBody",
    "header_length",
    "infer_request_from_rest",
    "infer_response_to_rest",
    "join",
    "mentions_extension",
    "split_answer",
]

EXTENSION = "binary_tensor_data"
"""The name a server lists in its metadata's ``extensions`` when it speaks this extension."""
HEADER = "Inference-Header-Content-Length"
BINARY_DATA = "binary_data"
BINARY_DATA_OUTPUT = "binary_data_output"
_TOKEN = BINARY_DATA.encode()

# Digits only: int() alone would also take "+5", " 5" and "5_0".
_MAX_HEADER_DIGITS = 19


@dataclass(frozen=True, slots=True)
class RestBody:
    """A REST body and the value of its Inference-Header-Content-Length (None: all JSON)."""

    body: bytes
    header_length: int | None = None

    @property
    def content_type(self) -> str:
        return "application/json" if self.header_length is None else "application/octet-stream"


@dataclass(frozen=True, slots=True)
class OutputChoice:
    """Which outputs the caller wants as binary: named ones as told, the rest as `default`."""

    default: bool = False
    named: dict[str, bool] = field(default_factory=dict)

    def __call__(self, name: str) -> bool:
        return self.named.get(name, self.default)


class _Tail:
    """The binary part of a body, handed out in order; every take is checked against what is left."""

    def __init__(self, view: memoryview, blame: Callable[[str], SidecarError]) -> None:
        self._view = view
        self._pos = 0
        self._blame = blame

    def take(self, size: int, where: str) -> bytes:
        left = len(self._view) - self._pos
        if size > left:
            raise self._blame(
                f"{where}.parameters.{BINARY_DATA_SIZE} is {size}, but only {left} bytes of binary "
                f"data are left in the body at offset {self._pos}"
            )
        # One copy: protobuf's bytes fields take bytes, not views.
        chunk = bytes(self._view[self._pos : self._pos + size])
        self._pos += size
        return chunk

    def finish(self) -> None:
        left = len(self._view) - self._pos
        if left:
            raise self._blame(
                f"{left} bytes of binary data follow the last tensor sized by {BINARY_DATA_SIZE}"
            )


def _split(
    rest: RestBody, blame: Callable[[str], SidecarError]
) -> tuple[object, BinaryData, _Tail | None]:
    """The parsed JSON header and the binary data after it."""
    if rest.header_length is None:
        return fast_json.loads(rest.body, blame), NO_BINARY_DATA, None
    if not 0 <= rest.header_length <= len(rest.body):
        raise blame(f"{HEADER} is {rest.header_length}, but the body has {len(rest.body)} bytes")
    view = memoryview(rest.body)
    header = fast_json.loads(view[: rest.header_length], blame)
    tail = _Tail(view[rest.header_length :], blame)
    return header, tail, tail


def header_length(value: str | None) -> int | None:
    """The Inference-Header-Content-Length header as a number; INVALID_ARGUMENT unless digits."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_HEADER_DIGITS:
        raise bad_request(f"{HEADER} must be a byte count, got {value[:32]!r}")
    return int(text)


def mentions_extension(rest: RestBody) -> bool:
    """Whether the body may use the extension at all: cheap, so plain JSON can pass untouched."""
    return rest.header_length is not None or _TOKEN in rest.body


# ---- the sidecar as a REST server ----------------------------------------------------------


def infer_request_from_rest(
    rest: RestBody, model_name: str, model_version: str
) -> tuple[pb.ModelInferRequest, OutputChoice]:
    """A REST inference request, plain JSON or with binary tensors, and the outputs it wants binary."""
    body, binary, tail = _split(rest, bad_request)
    request = json_codec.infer_request_from_json(body, model_name, model_version, binary)
    if tail is not None:
        tail.finish()
    default = _flag(request.parameters, BINARY_DATA_OUTPUT, "parameters", bad_request)
    named = {
        o.name: _flag(o.parameters, BINARY_DATA, f"outputs[{i}].parameters", bad_request)
        for i, o in enumerate(request.outputs)
        if BINARY_DATA in o.parameters
    }
    return request, OutputChoice(default, named)


def infer_response_to_rest(resp: pb.ModelInferResponse, choice: OutputChoice) -> RestBody:
    """A ModelInferResponse as a REST body, the outputs `choice` names as binary after the JSON."""
    header, binaries = json_codec.infer_response_to_parts(resp, choice)
    text = fast_json.dumps_finite(header, 'ask for that output with "binary_data": true, or use gRPC')
    if not binaries:
        return RestBody(text)
    return RestBody(b"".join([text, *binaries]), len(text))


# ---- the sidecar as a REST client of a model that speaks the extension ---------------------


def split_answer(rest: RestBody) -> tuple[object, BinaryData, Callable[[], None]]:
    """The model's REST answer split into its JSON header and its binary data (INTERNAL if broken).

    Returns the parsed header, the binary data for the outputs to take their bytes from, and a
    check to call once every output has been read (bytes left over are the model's fault).
    """
    header, binary, tail = _split(rest, bad_model)
    return header, binary, (tail.finish if tail is not None else _nothing)


def join(header: dict[str, object], binaries: list[bytes]) -> RestBody:
    """A JSON header and the tensors' bytes after it, as one body (to a model that lacks the
    extension, a non-finite element in JSON is UNIMPLEMENTED: it cannot be sent)."""
    text = fast_json.dumps_finite(header, "the REST model does not list binary_tensor_data")
    if not binaries:
        return RestBody(text)
    return RestBody(b"".join([text, *binaries]), len(text))


def _nothing() -> None:
    return None


def _flag(
    params: MessageMap[str, pb.InferParameter],
    key: str,
    where: str,
    blame: Callable[[str], SidecarError],
) -> bool:
    """Pop an extension flag from a protobuf parameters map; it must be a boolean."""
    if key not in params:
        return False
    param = params[key]
    which = param.WhichOneof("parameter_choice")
    if which != "bool_param":
        raise blame(f"{where}.{key} must be a boolean, got {show(getattr(param, which or 'bool_param'))}")
    value = param.bool_param
    del params[key]
    return value
