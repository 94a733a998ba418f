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

# ---- issue 12: client connections, the loop's fairness, the write buffer (connlimits) ----
# Each counted in LimitHits under the kind named beside it when it fires.

# Client connections one listener holds at once; one more is accepted and closed at once
# ("connections"), as Envoy's max_connections does. Each relayed one also holds a model socket.
MAX_CONNECTIONS: Final = 4096
# The listening socket's accept queue (the kernel caps it at net.core.somaxconn, 4096 on recent
# kernels; Go asks for somaxconn, nginx for 511). asyncio's default of 100 overflows under a burst
# of connections, and a connection the kernel dropped from the queue is accepted only when the
# client's handshake is retried, seconds later, so its preface deadline starts late.
LISTEN_BACKLOG: Final = 4096
# Seconds an accepted connection has to send the 24-byte HTTP/2 preface, or it is closed
# ("preface_timeout"). The model is dialled only once the preface is in. linkerd2-proxy's
# protocol detection waits 10 s; gRPC clients send the preface with the connection.
PREFACE_TIMEOUT: Final = 5.0
# Seconds a connection may have no stream (relayed or answered here) before GOAWAY(NO_ERROR) and
# close ("idle"); grpc-go's MaxConnectionIdle, nginx's keepalive_timeout (75 s). Checked every
# quarter of it, so an idle connection goes between 1 and 1.25 times this after its last stream.
IDLE_TIMEOUT: Final = 300.0
# Seconds one connection's read callback may spend on what one read brought; the rest waits for
# the next loop turn, reading paused ("read_budget"), so one connection cannot hold the loop (a
# wake-up can bring 32 reads of 256 KiB, thousands of calls). Time, not bytes: a byte spent on
# a new call costs a hundred times one passing in DATA.
READ_BUDGET: Final = 0.002
# A read larger than this is handled in slices of this many bytes, the budget looked at between
# them (a slice of the smallest calls takes about as long as the budget).
READ_SLICE: Final = 4096
# Bytes queued towards a client (above its kernel buffer) before it counts as not reading: reading
# stops from it and from the model for it until they are down to a quarter of this.
CLIENT_WRITE_HIGH: Final = 256 << 10
# The kernel's buffers of a client socket (SO_SNDBUF and SO_RCVBUF, set on the listening socket;
# Linux doubles them, and autotunes them up to 4 and 32 MiB when they are not set): a client
# that reads nothing is paused once about 512 KiB of answers wait for it, and its own writes
# stall soon after the relay stops reading it. 256 KiB in flight fills 10 Gbit/s at 0.2 ms.
CLIENT_SNDBUF: Final = 128 << 10
CLIENT_RCVBUF: Final = 128 << 10
# Bytes queued towards a client past which it is dropped ("write_buffer"). From WRITE_HIGH on it is
# paused: reading stops from it and from the model for it.
WRITE_MAX: Final = 8 << 20
# Seconds a client may stay paused (it reads nothing) before it is dropped ("write_stall");
# nginx's send_timeout is 60 s.
WRITE_STALL: Final = 30.0

# ---- end of connlimits' block ----

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
    # issue 12, connlimits
    max_connections: int = MAX_CONNECTIONS
    preface_timeout: float = PREFACE_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    read_budget: float = READ_BUDGET
    read_slice: int = READ_SLICE
    client_write_high: int = CLIENT_WRITE_HIGH
    client_sndbuf: int = CLIENT_SNDBUF
    client_rcvbuf: int = CLIENT_RCVBUF
    write_max: int = WRITE_MAX
    write_stall: float = WRITE_STALL
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
