"""What the relay reads from gRPC header blocks: a request's path, metadata and deadline; a reply's status.

Pure: decoded header lists in, values out. Knows nothing about HPACK encoding (hpack_encoder.py),
messages (messages.py), sockets or connection state.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable
from typing import Final

from sidecar.core.call import Metadata, MetadataValue, Outcome
from sidecar.core.deadline import Deadline, grpc_timeout
from sidecar.core.status import Code
from sidecar.h2 import frames as f
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.limits import KNOWN_FIELDS
from sidecar.transport.metadata import HOP_BY_HOP


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


def with_metadata(headers: Headers, metadata: Metadata) -> Headers:
    """Request headers with their metadata replaced by `metadata` (pseudo and transport headers kept)."""
    out = [(k, v) for k, v in headers if k.startswith(":") or k in HOP_BY_HOP]
    for k, v in metadata:
        if isinstance(v, bytes):
            raw = base64.b64encode(v).rstrip(b"=") if k.endswith("-bin") else v
            v = raw.decode("latin-1")
        out.append((k, v))
    return out


def reset_outcome(code: int) -> Outcome:
    """What a call ends with when the model resets its stream with this HTTP/2 error code."""
    status = {f.REFUSED_STREAM: Code.UNAVAILABLE, f.CANCEL: Code.CANCELLED}.get(code, Code.INTERNAL)
    return Outcome(status, f"model reset the stream (HTTP/2 error {code})")
