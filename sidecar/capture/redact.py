"""A captured payload as it goes into an event: the message's bytes, less the tensors a rule leaves out.

Runs off the call path (the sink's task). Without tensor redaction the bytes go as they came, never
parsed. With it, the message is parsed (protobuf or OIP JSON), the named inputs or outputs (and
their raw contents) removed and the rest written back; a payload that cannot be parsed, or was cut
at the size limit, goes with no body at all, since what it holds cannot be checked. Knows nothing
about I/O.
"""

from __future__ import annotations

import json
from typing import Final

from google.protobuf.message import DecodeError, Message

from inference import grpc_service_pb2 as pb
from sidecar.capture.events import JSON, Captured, protobuf_type
from sidecar.capture.policy import Redaction
from sidecar.oip import contract

# Content type -> the message class, for the methods capture applies to.
_TYPES: Final = {
    protobuf_type(cls.DESCRIPTOR.full_name): cls for types in contract.MESSAGES.values() for cls in types
}


def payload(c: Captured) -> bytes:
    data = c.data[c.offset :] if c.offset else c.data
    r = c.redaction
    if not r.tensors:
        return data
    if c.truncated or c.json_length >= 0:
        return b""  # cut, or tensors in a binary tail: what it holds cannot be checked
    if c.content_type == JSON:
        return _json(data, r)
    cls = _TYPES.get(c.content_type)
    if cls is None:
        return b""
    return _protobuf(data, cls, r)


def _protobuf(data: bytes, cls: type[Message], r: Redaction) -> bytes:
    try:
        message = cls.FromString(data)
    except DecodeError:
        return b""
    changed = False
    if isinstance(message, pb.ModelInferRequest):
        changed = _drop(message.inputs, message.raw_input_contents, r.inputs)
    elif isinstance(message, pb.ModelInferResponse):
        changed = _drop(message.outputs, message.raw_output_contents, r.outputs)
    elif isinstance(message, pb.ModelStreamInferResponse):
        inner = message.infer_response
        changed = _drop(inner.outputs, inner.raw_output_contents, r.outputs)
    return message.SerializeToString() if changed else data


def _drop(tensors: object, raw: object, names: frozenset[str]) -> bool:
    """Remove the tensors named `names` and, when the message carries raw contents, theirs too."""
    listed = list(tensors)  # type: ignore[call-overload]
    doomed = [i for i, t in enumerate(listed) if t.name in names]
    if not doomed:
        return False
    contents = list(raw)  # type: ignore[call-overload]
    for i in reversed(doomed):
        del tensors[i]  # type: ignore[attr-defined]
        if len(contents) == len(listed):
            del raw[i]  # type: ignore[attr-defined]
    return True


def _json(data: bytes, r: Redaction) -> bytes:
    try:
        body = json.loads(data)
    except ValueError:
        return b""
    if not isinstance(body, dict):
        return data
    changed = False
    for key, names in (("inputs", r.inputs), ("outputs", r.outputs)):
        tensors = body.get(key)
        if isinstance(tensors, list) and names:
            kept = [t for t in tensors if not (isinstance(t, dict) and t.get("name") in names)]
            changed = changed or len(kept) != len(tensors)
            body[key] = kept
    return json.dumps(body, separators=(",", ":")).encode() if changed else data
