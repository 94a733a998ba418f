"""Every bound the relay keeps, in one place: the pure build and a compiled one share these numbers.

Each is a named constant; the ones a connection applies are also fields of `Limits`, a frozen
value a connection is built with (their defaults are the constants). Knows nothing about
frames, streams or sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

# ---- header blocks and HPACK ----

# A header block larger than this (HEADERS and all its CONTINUATIONs, payload bytes) closes the
# connection.
MAX_BLOCK: Final = 1 << 20
# No HPACK integer (index, length, table size) in a block of MAX_BLOCK bytes needs more.
MAX_HPACK_INT: Final = 1 << 28
# Decoded header blocks each HPACK decoder remembers, keyed by their bytes.
HPACK_BLOCK_CACHE: Final = 256
# Decoded Huffman strings remembered (per process: a string decodes alike on every connection).
HUFFMAN_MEMO: Final = 4096
# Request fields one connection remembers as already found well-formed.
KNOWN_FIELDS: Final = 512

# ---- writes, reads and flow-control credit ----

# Bytes queued towards a peer before reading from the other side pauses.
WRITE_HIGH: Final = 1 << 20
# Client bytes held while a new call waits for its verdict before reading from the client pauses.
HELD_HIGH: Final = 1 << 20
# Connection credit held back: far below the 65,535 bytes every connection window starts with,
# so a peer never waits for credit the relay holds (a peer whose window is spent has been
# credited its consumption, which past this amount goes out at once).
CREDIT_HELD: Final = 16384
# Seconds held credit waits at most for a write to ride on.
CREDIT_DELAY: Final = 0.005

# ---- streams ----

# Streams remembered as answered locally until the client ends them.
MAX_DROPPED: Final = 4096
# Messages per direction of a call whose 5-byte prefixes are left out of its byte count exactly;
# past them DATA bytes stand for message bytes.
EXACT_MESSAGES: Final = 1024
# Bytes of one message an observed call's observer is handed at most (gRPC's default maximum
# message size); past them the message is handed up cut short (its prefix still says its length).
OBSERVED_MESSAGE: Final = 4 << 20

# ---- the model connection ----

# The model is local: a connection it does not accept within this many seconds is answered locally.
CONNECT_TIMEOUT: Final = 2.0

# ---- grpc.health.v1 answered locally ----

# Request bytes buffered for one health call.
HEALTH_MAX_REQUEST: Final = 64 * 1024
# Health calls (Checks awaiting their request, open Watches) one connection may have at once.
HEALTH_MAX_STREAMS: Final = 16


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds one relayed connection applies; the defaults are the constants above."""

    max_block: int = MAX_BLOCK
    write_high: int = WRITE_HIGH
    held_high: int = HELD_HIGH
    credit_held: int = CREDIT_HELD
    credit_delay: float = CREDIT_DELAY
    max_dropped: int = MAX_DROPPED
    known_fields: int = KNOWN_FIELDS
    connect_timeout: float = CONNECT_TIMEOUT
    health_max_request: int = HEALTH_MAX_REQUEST
    health_max_streams: int = HEALTH_MAX_STREAMS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"Limits.{f.name} must be positive, got {value!r}")
