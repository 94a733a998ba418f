"""Header blocks the egress proxy writes, encoded per connection without touching any HPACK table.

Every block is re-encoded for the connection it goes out on (HPACK state is per connection,
RFC 7541 2.3), from static-table entries and literals *without indexing* (6.2.2): the peer's
dynamic table is never written, so the encoding of a field is the same on every connection and
at any time, and each field's bytes are memoised. The cost is a few bytes per field over
indexing, on loopback and one hop. Also what a proxied call's request and response blocks carry
across: the fields kept, the ones replaced. Knows nothing about frames, streams or sockets.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Final

from sidecar.core.call import Metadata, MetadataValue
from sidecar.h2 import hpack_encoder as he
from sidecar.h2.hpack_decoder import STATIC, Headers

# Bound on the memo of encoded fields (values such as trace ids and deadlines vary per call).
_MEMO_MAX: Final = 4096

_STATIC_FIELD: Final = {pair: i + 1 for i, pair in reversed(list(enumerate(STATIC)))}
_STATIC_NAME: Final = {name: i + 1 for i, (name, _) in reversed(list(enumerate(STATIC)))}
_memo: dict[tuple[str, str], bytes] = {}

# Fields of one hop (RFC 9113 8.2.2) that never cross the proxy in either direction.
CONNECTION_SPECIFIC: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"}
)
# Request fields the proxy sets itself for the upstream hop, or consumes.
REPLACED: Final = frozenset({"grpc-timeout", "te", "x-sidecar-target"})


def field(name: str, value: str) -> bytes:
    """One field's representation: a static entry, or a literal without indexing."""
    key = (name, value)
    raw = _memo.get(key)
    if raw is not None:
        return raw
    index = _STATIC_FIELD.get(key)
    if index is not None:
        raw = he.integer(index, 7, 0x80)
    else:
        v = value.encode("latin-1")
        index = _STATIC_NAME.get(name)
        if index is not None:
            raw = he.integer(index, 4, 0x00) + he.integer(len(v), 7, 0) + v
        else:
            n = name.encode("latin-1")
            raw = b"\x00" + he.integer(len(n), 7, 0) + n + he.integer(len(v), 7, 0) + v
    if len(_memo) >= _MEMO_MAX:
        _memo.clear()
    _memo[key] = raw
    return raw


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    memo = _memo
    return b"".join([memo.get(kv) or field(*kv) for kv in headers])  # a hit costs no Python call


def wire_value(key: str, value: MetadataValue) -> str:
    """A metadata value as a header field carries it (-bin values base64, unpadded)."""
    if isinstance(value, bytes):
        raw = base64.b64encode(value).rstrip(b"=") if key.endswith("-bin") else value
        return raw.decode("latin-1")
    return value


def upstream_request(
    headers: Headers, authority: str, metadata: Metadata, hop_by_hop: frozenset[str], timeout: str | None
) -> Headers:
    """The request block one try sends upstream: the client's pseudo-header and transport fields
    (content-type, user-agent, grpc-encoding ... pass as they came: the messages do), :authority
    `authority`, the call's metadata as the filters left it, and the time left as grpc-timeout."""
    out: Headers = []
    for k, v in headers:
        if k[0] == ":":
            out.append((k, authority) if k == ":authority" else (k, v))
        elif k in hop_by_hop and k not in CONNECTION_SPECIFIC and k not in REPLACED:
            out.append((k, v))
    if not any(k == ":authority" for k, _ in out):
        out.insert(0, (":authority", authority))
    out.append(("te", "trailers"))
    if timeout is not None:
        out.append(("grpc-timeout", timeout))
    out.extend((k, wire_value(k, v)) for k, v in metadata)
    return out


def passed(headers: Headers) -> Headers:
    """A response block as the client gets it: the upstream's fields less its connection-specific ones."""
    return [(k, v) for k, v in headers if k not in CONNECTION_SPECIFIC]


_passed_memo: dict[tuple[tuple[str, str], ...], bytes] = {}


def passed_block(headers: Headers) -> bytes:
    """`passed(headers)` encoded; memoised, as an instance sends the same response headers and
    trailers call after call."""
    key = tuple(headers)
    block = _passed_memo.get(key)
    if block is None:
        block = encode(passed(headers))
        if len(_passed_memo) >= _MEMO_MAX:
            _passed_memo.clear()
        _passed_memo[key] = block
    return block
