"""HPACK encoding (RFC 7541) of what the relay writes itself: literal fields, its replies, re-encoded blocks.

The relay's own blocks (trailers-only replies, health responses, appended metadata) are literals
*without indexing* and use no dynamic-table entry (RFC 7541 section 6.2.2), so writing them never
changes the table of the peer's decoder, which that peer's encoder on the other connection
mirrors. Blocks relayed from one peer to the other pass as they are while the receiving decoder
mirrors the sending encoder; once it cannot (a block it never saw changed the sender's table),
ModelBlocks writes every block out as such literals. Knows nothing about frames or sockets.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterable
from typing import Final

from sidecar.core.call import MetadataValue, Outcome
from sidecar.core.status import Code
from sidecar.h2.hpack_decoder import Headers

_STATUS_200: Final = b"\x88"  # indexed field, static table entry 8 (":status: 200")


# Fields whose literal a connection's ModelBlocks keeps (each some 60 bytes plus the field's).
MAX_KEPT_LITERALS: Final = 256


def integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 5.1) in a `prefix_bits` prefix, its first octet's high bits `first`."""
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
    return b"\x00" + integer(len(raw_name), 7, 0) + raw_name + integer(len(value), 7, 0) + value


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
    return integer(size, 5, 0x20)


class ModelBlocks:
    """The header blocks the model gets: the client's own, with fields appended as literals, until
    `diverge`; then each written out whole as literals without indexing (RFC 7541 6.2.2).

    Once a block the model never saw has changed the client's table, the client's blocks cannot go
    on as they are (RFC 7541 2.3: the tables must agree). Literals without indexing neither use nor
    change the model's table, so no table state is kept here and none needs clearing; they cost a
    block some bytes on a local connection, not a re-encoding through a dynamic table and Huffman
    per field (some 10x the CPU). A call's fields mostly repeat the last call's (only grpc-timeout
    and the like change), so each field's literal is kept, a bounded number per connection."""

    __slots__ = ("_literals", "reencoding")

    def __init__(self) -> None:
        self.reencoding = False  # whether `block` re-encodes (otherwise, with no extra fields, it is a no-op)
        self._literals: dict[tuple[str, str], bytes] = {}

    def diverge(self) -> None:
        """A block the model never sees changed the client's table: re-encode from now on."""
        self.reencoding = True

    def block(self, block: bytes, headers: Headers, extra: Iterable[tuple[str, MetadataValue]]) -> bytes:
        """What the model gets for the client's `block`, which decoded to `headers`, plus `extra`."""
        if self.reencoding:
            return self._fields(headers) + literal_fields(extra)
        return block + literal_fields(extra) if extra else block

    def _fields(self, headers: Headers) -> bytes:
        literals = self._literals
        out = []
        for field in headers:
            literal = literals.get(field)
            if literal is None:
                literal = literal_fields((field,))
                if len(literals) >= MAX_KEPT_LITERALS:
                    literals.clear()  # a client sending new values each call gains nothing here
                literals[field] = literal
            out.append(literal)
        return b"".join(out)
