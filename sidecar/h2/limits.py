"""Every bound the relay keeps, in one place: the pure build and a compiled one share these numbers.

Each is a named constant; the ones a connection applies are also fields of `Limits`, a frozen
value a connection is built with (their defaults are the constants). Knows nothing about
frames, streams or sockets.

`LimitHits` counts the times a bound fired, by kind: one per listener, shared by its
connections, read by a metrics collector at scrape time.
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
# Largest block such a cache keeps (gRPC's repeated request blocks are far smaller).
HPACK_CACHED_BLOCK: Final = 4096
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

# ---- issue 12: a peer's frames, streams and header blocks (h2limits) ----
# Each answered GOAWAY(ENHANCE_YOUR_CALM) when passed unless it says otherwise, and counted in
# LimitHits under the kind named beside it.

# SETTINGS_MAX_CONCURRENT_STREAMS the relay advertises and enforces: RST_STREAM(REFUSED_STREAM)
# past it ("concurrent_streams"). nginx advertises 128, Go's net/http2 250.
MAX_CONCURRENT_STREAMS: Final = 128
# SETTINGS_MAX_HEADER_LIST_SIZE the relay advertises and enforces while decoding a request's
# block: RFC 9113's size (names, values, 32 octets each) ("header_list_size"). grpc-core's hard
# metadata limit is 16 KiB by default; this leaves room for large tokens.
MAX_HEADER_LIST_SIZE: Final = 64 << 10
# CONTINUATION frames one header block may have ("continuations"): a list of
# MAX_HEADER_LIST_SIZE needs at most 4 at the smallest frame size.
MAX_CONTINUATIONS: Final = 16
# Client RST_STREAMs one connection may send per RESET_WINDOW seconds ("rapid_reset";
# CVE-2023-44487).
RESET_BUDGET: Final = 200
RESET_WINDOW: Final = 1.0
# Per CONTROL_WINDOW seconds of one connection: PINGs ("ping_flood"), SETTINGS ("settings_flood"),
# DATA with no payload and no END_STREAM ("empty_frames"), streams refused as malformed
# ("malformed_streams"; empty HEADERS). grpc-go and nginx count such frames alike.
PING_BUDGET: Final = 1000
SETTINGS_BUDGET: Final = 100
EMPTY_FRAME_BUDGET: Final = 100
MALFORMED_STREAM_BUDGET: Final = 100
CONTROL_WINDOW: Final = 1.0

# ---- end of h2limits' block ----


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
    # issue 12, h2limits
    max_concurrent_streams: int = MAX_CONCURRENT_STREAMS
    max_header_list_size: int = MAX_HEADER_LIST_SIZE
    max_continuations: int = MAX_CONTINUATIONS
    reset_budget: int = RESET_BUDGET
    reset_window: float = RESET_WINDOW
    ping_budget: int = PING_BUDGET
    settings_budget: int = SETTINGS_BUDGET
    empty_frame_budget: int = EMPTY_FRAME_BUDGET
    malformed_stream_budget: int = MALFORMED_STREAM_BUDGET
    control_window: float = CONTROL_WINDOW

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"Limits.{f.name} must be positive, got {value!r}")


# ---- counting the limits that fired ----


class LimitHits:
    """How many times each limit fired, by kind (snake_case words such as "rapid_reset").

    A plain dict of ints: `hit` is one dict update on the event loop's thread, no lock and no
    prometheus_client (a collector reads `snapshot()` at scrape). Kinds are fixed words chosen by
    the code that enforces a limit, never by a peer, so the label set stays bounded.
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def hit(self, kind: str) -> None:
        counts = self.counts
        counts[kind] = counts.get(kind, 0) + 1

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts (one C-level operation, so a reader on another thread sees them whole)."""
        return self.counts.copy()


class Budget:
    """At most `limit` events per `seconds` of a clock, counted in fixed windows: plain ints and a float.

    `spend(now)` takes one; False once the window's `limit` is spent (and for every event after
    it in that window). The clock is read only when an event comes, never on the data path.
    """

    __slots__ = ("count", "limit", "seconds", "start")

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.start = float("-inf")
        self.count = 0

    def spend(self, now: float) -> bool:
        if now - self.start >= self.seconds:
            self.start = now
            self.count = 0
        self.count += 1
        return self.count <= self.limit
