"""What the relay reads from and writes into gRPC header blocks: path, metadata, deadline, status.

Pure: decoded header lists in, values out; the trailers-only reply is HPACK-encoded here with
literals *without indexing* and no dynamic-table references (RFC 7541 section 6.2.2), so
writing it never changes the client decoder's table that the model's encoder mirrors.
Knows nothing about frames or sockets.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterable
from typing import Final

import hpack

from sidecar.core.call import Metadata, MetadataValue, Outcome
from sidecar.core.deadline import Deadline
from sidecar.core.status import Code
from sidecar.transport.metadata import HOP_BY_HOP, forwardable

Headers = list[tuple[str, str]]

# grpc-timeout units (gRPC over HTTP/2 spec) in seconds.
_UNITS: Final = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_STATUS_200: Final = b"\x88"  # indexed field, static table entry 8 (":status: 200")


def decode(decoder: hpack.Decoder, block: bytes) -> Headers:
    """Decode a block, keeping the decoder in step; names and values as latin-1 (bytes-preserving)."""
    fields = decoder.decode(block, raw=True)
    return [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in fields]


def pseudo(headers: Headers, name: str) -> str:
    for k, v in headers:
        if k == name:
            return v
        if not k.startswith(":"):
            break
    return ""


def deadline(headers: Headers) -> Deadline | None:
    for k, v in headers:
        if k == "grpc-timeout":
            unit = _UNITS.get(v[-1:])
            if unit is None or not v[:-1].isdigit() or len(v) > 9:
                return None
            return Deadline.after(int(v[:-1]) * unit)
    return None


def metadata(headers: Iterable[tuple[str, str]]) -> Metadata:
    """Request or trailing metadata as grpcio presents it: `-bin` values decoded to bytes."""
    out: Metadata = []
    for k, v in forwardable(headers):
        if k.endswith("-bin") and isinstance(v, str):
            raw = v.encode("latin-1")
            if raw[:1] == b"\x00":  # gRPC's true-binary metadata (grpc_allow_true_binary_metadata)
                out.append((k, raw[1:]))
                continue
            try:
                out.append((k, base64.b64decode(raw + b"=" * (-len(raw) % 4))))
            except ValueError:
                out.append((k, v))
        else:
            out.append((k, v))
    return out


def outcome(headers: Headers) -> Outcome | None:
    """The gRPC status a trailers block carries; None if it carries none."""
    code: Code | None = None
    message = ""
    for k, v in headers:
        if k == "grpc-status":
            try:
                code = Code(int(v))
            except ValueError:
                code = Code.UNKNOWN
        elif k == "grpc-message":
            message = urllib.parse.unquote(v)
    if code is None:
        return None
    trailing = [(k, v) for k, v in metadata(headers) if k not in ("grpc-status", "grpc-message")]
    return Outcome(code, message, trailing)


def _int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name: str, value: bytes) -> bytes:
    raw_name = name.encode("ascii")
    return b"\x00" + _int(len(raw_name), 7, 0) + raw_name + _int(len(value), 7, 0) + value


def literal_fields(fields: Iterable[tuple[str, MetadataValue]]) -> bytes:
    """Fields as HPACK literals without indexing, new names, no Huffman: appendable to any block."""
    out = []
    for k, v in fields:
        if isinstance(v, bytes):
            raw = base64.b64encode(v).rstrip(b"=") if k.endswith("-bin") else v
        else:
            # Values decoded from the wire are latin-1, so they go back byte for byte.
            raw = v.encode("latin-1", "replace")
        out.append(_literal(k, raw))
    return b"".join(out)


def trailers_only(result: Outcome) -> bytes:
    """A trailers-only response block: :status 200, content-type, grpc-status, grpc-message."""
    message = urllib.parse.quote(result.message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")
    fields: list[tuple[str, MetadataValue]] = [
        ("content-type", "application/grpc"),
        ("grpc-status", str(int(result.code))),
    ]
    if message:
        fields.append(("grpc-message", message))
    fields.extend(result.trailing_metadata)
    return _STATUS_200 + literal_fields(fields)


def response_headers() -> bytes:
    return _STATUS_200 + literal_fields([("content-type", "application/grpc")])


def status_trailers(code: Code) -> bytes:
    return literal_fields([("grpc-status", str(int(code)))])


def table_size_update(size: int) -> bytes:
    """An HPACK dynamic table size update (RFC 7541 section 6.3)."""
    return _int(size, 5, 0x20)


def with_metadata(headers: Headers, metadata: Metadata) -> Headers:
    """Request headers with their metadata replaced by `metadata` (pseudo and transport headers kept)."""
    out = [(k, v) for k, v in headers if k.startswith(":") or k in HOP_BY_HOP]
    for k, v in metadata:
        if isinstance(v, bytes):
            raw = base64.b64encode(v).rstrip(b"=") if k.endswith("-bin") else v
            v = raw.decode("latin-1")
        out.append((k, v))
    return out
