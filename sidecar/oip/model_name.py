"""The model a contract call names, read from field 1 of its first request message without parsing it.

ModelInferRequest, ModelMetadataRequest and ModelReadyRequest all carry the model's name as field
1 (a length-delimited string); protobuf encoders write fields in number order, so it is usually
in the first bytes. The reader walks the wire format (varint tags, skipping other fields) over
whatever prefix of the message is there, and says when it needs more bytes. No protobuf
runtime, no copies beyond the name itself. Knows nothing about transports.
"""

from __future__ import annotations

from typing import Final

from sidecar.oip import contract

# The contract methods whose request message names a model in field 1.
MODEL_METHODS: Final = frozenset(
    {contract.MODEL_INFER, contract.MODEL_METADATA, contract.MODEL_READY, contract.MODEL_STREAM_INFER}
)
# Those of them that are unary: their one request message is there before the verdict.
UNARY_MODEL_METHODS: Final = MODEL_METHODS - {contract.MODEL_STREAM_INFER}
# gRPC's message prefix: one compressed-flag byte and a 4-byte big-endian length.
PREFIX_LEN: Final = 5
# A model name longer than this is not read (the call is treated as naming none).
MAX_NAME: Final = 1024

NEED_MORE: Final = None


def from_message(message: bytes | memoryview, *, complete: bool = True) -> str | None:
    """The name in a serialized request; "" if it names none; None: need more bytes (`complete`
    False: `message` may be only the start of the request)."""
    n = len(message)
    # The common case, one comparison: field 1 first (tag 0x0a) with a length under 128.
    if n >= 2 and message[0] == 0x0A and message[1] < 0x80 and n >= 2 + message[1]:
        try:
            return bytes(message[2 : 2 + message[1]]).decode("utf-8")
        except UnicodeDecodeError:
            return ""
    buf = memoryview(message)
    pos = 0
    while pos < n:
        tag, pos = _varint(buf, pos)
        if pos < 0:
            return NEED_MORE
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
            if pos < 0:
                return NEED_MORE
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos < 0:
                return NEED_MORE
            if field == 1:
                if length > MAX_NAME:
                    return ""
                if pos + length > n:
                    return NEED_MORE
                try:
                    return bytes(buf[pos : pos + length]).decode("utf-8")
                except UnicodeDecodeError:
                    return ""
            pos += length
        else:
            return ""  # groups or garbage: not a message this reader understands
    return "" if complete and pos == n else NEED_MORE


def from_grpc_frame(data: bytes | memoryview) -> str | None:
    """The same for the start of a gRPC-framed stream (5-byte prefix, then the message)."""
    if len(data) < PREFIX_LEN:
        return NEED_MORE
    if data[0] != 0:
        return ""  # compressed: not readable without inflating it
    length = int.from_bytes(data[1:PREFIX_LEN], "big")
    body = data[PREFIX_LEN : PREFIX_LEN + length]
    return from_message(body, complete=len(body) >= length)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it); position -1 when the buffer ends inside it."""
    value = shift = 0
    n = len(buf)
    while True:
        if pos >= n or shift > 63:
            return 0, -1
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
