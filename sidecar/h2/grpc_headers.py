"""What the relay reads from and writes into gRPC header blocks: path, metadata, deadline, status.

Pure: decoded header lists in, values out; the trailers-only reply is HPACK-encoded here with
literals *without indexing* and no dynamic-table references (RFC 7541 section 6.2.2), so
writing it never changes the client decoder's table that the model's encoder mirrors.
Knows nothing about sockets or connection state.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable
from typing import Final

import hpack

from sidecar.core.call import Metadata, MetadataValue, Outcome
from sidecar.core.deadline import Deadline, grpc_timeout
from sidecar.core.status import Code
from sidecar.h2 import frames as f
from sidecar.h2.limits import EXACT_MESSAGES, KNOWN_FIELDS
from sidecar.transport.metadata import HOP_BY_HOP

Headers = list[tuple[str, str]]

_STATUS_200: Final = b"\x88"  # indexed field, static table entry 8 (":status: 200")


class Malformed(Exception):
    """A request RFC 9113 section 8.2-8.3 calls malformed: a stream error, never forwarded."""


def request(
    headers: Headers, known: set[tuple[str, str]] | None = None, max_known: int = KNOWN_FIELDS
) -> tuple[str, Deadline | None, Metadata]:
    """A request block's :path, deadline (from grpc-timeout) and metadata, in one pass.

    Raises Malformed for what must not reach the model: bad field names or values, pseudo-header
    fields missing, repeated, unknown or after regular ones, connection-specific fields, and a
    :path that is not a printable ASCII absolute path (a grpc.aio server stops serving on one).
    `known` holds fields already found well-formed on this connection, most of which repeat call
    after call; it is added to here, up to `max_known` (then emptied).
    """
    if known is None:
        known = set()
    path = ""
    timeout: Deadline | None = None
    out: Metadata = []
    seen: set[str] = set()
    regular = False
    for k, v in headers:
        if (k, v) not in known:
            # -bin values may be raw bytes: gRPC's true-binary metadata, negotiated in SETTINGS.
            if _BAD_NAME.search(k) or (_BAD_VALUE.search(v) and not k.endswith("-bin")):
                raise Malformed(f"field {k[:64]!r} has a character RFC 9113 8.2.1 forbids")
            if len(known) >= max_known:
                known.clear()
            known.add((k, v))
        if k[0] == ":":
            if regular or k in seen or k not in _REQUEST_PSEUDO:
                raise Malformed(f"pseudo-header field {k[:64]!r} misplaced, repeated or unknown")
            seen.add(k)
            if k == ":path":
                path = v
        else:
            regular = True
            if k not in HOP_BY_HOP:
                out.append(_binary(k, v) if k.endswith("-bin") else (k, v))
            elif k == "grpc-timeout":
                timeout = deadline(v)
            elif k in _CONNECTION_SPECIFIC or (k == "te" and v != "trailers"):
                raise Malformed(f"connection-specific field {k!r}")
    if not seen >= _REQUIRED_PSEUDO:
        raise Malformed("a pseudo-header field of :method, :scheme and :path is missing")
    if not (path[:1] == "/" and path.isascii() and path.isprintable()):
        raise Malformed(f":path {path[:64]!r} is not a printable ASCII absolute path")
    return path, timeout, out


_REQUEST_PSEUDO: Final = frozenset({":method", ":scheme", ":path", ":authority"})
_REQUIRED_PSEUDO: Final = frozenset({":method", ":scheme", ":path"})
_CONNECTION_SPECIFIC: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)
# A name: lower-case tchars (RFC 9110 5.6.2), a pseudo-header's leading colon allowed; not empty.
_BAD_NAME: Final = re.compile(r"^$|(?!^:)[^!#$%&'*+\-.^_`|~0-9a-z]")
# A value: no NUL, CR or LF, no leading or trailing space or tab (RFC 9113 8.2.1).
_BAD_VALUE: Final = re.compile(r"[\x00\r\n]|^[ \t]|[ \t]$")


def deadline(value: str) -> Deadline | None:
    """The deadline a grpc-timeout value sets; None if the value is malformed."""
    seconds = grpc_timeout(value)
    return None if seconds is None else Deadline.after(seconds)


def metadata(headers: Iterable[tuple[str, str]]) -> Metadata:
    """Request or trailing metadata as grpcio presents it: `-bin` values decoded to bytes."""
    return [
        _binary(k, v) if k.endswith("-bin") else (k, v)
        for k, v in headers
        if k not in HOP_BY_HOP and not k.startswith(":")
    ]


def _binary(key: str, value: str) -> tuple[str, MetadataValue]:
    raw = value.encode("latin-1")
    if raw[:1] == b"\x00":  # gRPC's true-binary metadata (grpc_allow_true_binary_metadata)
        return key, raw[1:]
    try:
        return key, base64.b64decode(raw + b"=" * (-len(raw) % 4))
    except ValueError:
        return key, value


def outcome(headers: Headers) -> Outcome | None:
    """The gRPC status a trailers block carries; None if it carries none."""
    if len(headers) == 1 and headers[0][0] == "grpc-status":  # the usual trailers: status alone
        return _STATUSES.get(headers[0][1]) or _status(headers[0][1], "", [])
    code: str | None = None
    message = ""
    others: Headers = []
    for k, v in headers:
        if k == "grpc-status":
            code = v
        elif k == "grpc-message":
            message = urllib.parse.unquote(v)
        else:
            others.append((k, v))
    if code is None:
        return None
    return _status(code, message, metadata(others))


def _status(value: str, message: str, trailing: Metadata) -> Outcome:
    try:
        code = Code(int(value))
    except ValueError:
        code = Code.UNKNOWN
    return Outcome(code, message, trailing)


# Status-only outcomes, shared: Outcome is frozen and nothing appends to their empty trailers.
_STATUSES: Final = {str(int(c)): Outcome(c) for c in Code}


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


def trailers_only(result: Outcome, *, after_headers: bool = False) -> bytes:
    """A trailers-only response block: :status 200, content-type, grpc-status, grpc-message.

    With `after_headers`, the trailers that end a response whose headers were sent: no :status.
    """
    message = urllib.parse.quote(result.message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")
    fields: list[tuple[str, MetadataValue]] = [] if after_headers else [("content-type", "application/grpc")]
    fields.append(("grpc-status", str(int(result.code))))
    if message:
        fields.append(("grpc-message", message))
    fields.extend(result.trailing_metadata)
    return literal_fields(fields) if after_headers else _STATUS_200 + literal_fields(fields)


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


class ClearingEncoder(hpack.Encoder):
    """An encoder whose first block empties the model's decoder table before using it (RFC 7541 6.3)."""

    def __init__(self, table_size: int) -> None:
        super().__init__()
        self.header_table_size = table_size
        self.table_size_changes: list[int] = []  # announced by hand, below
        self._size = table_size
        self._first = True

    def encode_fields(self, headers: Headers) -> bytes:
        block: bytes = self.encode([(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers])
        if self._first:
            self._first = False
            # Size updates to 0 (evicts the model's whole table) and back, then the fields.
            block = table_size_update(0) + table_size_update(self._size) + block
        return block


def reset_outcome(code: int) -> Outcome:
    """What a call ends with when the model resets its stream with this HTTP/2 error code."""
    status = {f.REFUSED_STREAM: Code.UNAVAILABLE, f.CANCEL: Code.CANCELLED}.get(code, Code.INTERNAL)
    return Outcome(status, f"model reset the stream (HTTP/2 error {code})")


class MessageBytes:
    """The message bytes in one direction of a gRPC stream's DATA, without each message's 5-byte
    prefix (gRPC over HTTP/2: compressed flag, 4-byte length): what grpcio's handlers count.
    Exact for the first EXACT_MESSAGES messages; after those, prefixes count as message bytes."""

    @property
    def counted(self) -> int | None:
        """The total, or None without a message (as grpcio reports a call that got no reply)."""
        return self.total if self.messages else None

    __slots__ = ("_left", "_prefix", "messages", "total")

    def __init__(self) -> None:
        self.total = 0
        self.messages = 0
        self._left = 0  # bytes of the current message still to come
        self._prefix = b""  # a prefix split across DATA frames

    def add(self, data: bytes, start: int, end: int) -> None:
        if self.messages >= EXACT_MESSAGES:
            # Past this many, DATA bytes stand for message bytes: walking a flood of empty
            # messages one by one would cost the relay ~25x what their bytes cost to forward.
            self.total += end - start
            return
        if not self._left and not self._prefix and end - start >= 5:
            # The usual case: this DATA starts a message and holds its whole prefix.
            size = int.from_bytes(data[start + 1 : start + 5], "big")
            self.messages += 1
            if end - start - 5 <= size:
                self._left = size - (end - start - 5)
                self.total += end - start - 5
                return
            self.total += size
            start += 5 + size
        pos = start
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                self._left -= take
                self.total += take
                pos += take
                continue
            need = 5 - len(self._prefix)
            self._prefix += data[pos : min(pos + need, end)]
            pos += need
            if len(self._prefix) == 5:
                self.messages += 1
                self._left = int.from_bytes(self._prefix[1:], "big")
                self._prefix = b""
                if self.messages >= EXACT_MESSAGES and pos < end:
                    self.total += end - pos
                    return
