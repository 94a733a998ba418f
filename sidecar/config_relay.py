"""The relay's settings: its client connection bounds (relay_*) and HTTP/2 limits (h2_*).

`RelaySettings` is the base of `SidecarConfig`, whose table and loading these fields share (config.py).
Knows nothing of how values are read, checked or shown; the defaults are sidecar/h2/limits.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sidecar.config_table import about
from sidecar.config_values import Duration, Int, KiB, MiB, Size
from sidecar.h2 import limits as h2


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaySettings:
    """The relay's settings of `ai-sidecar run` (issue 12: connlimits, h2limits)."""

    # ---- the relay's connection bounds (issue 12, connlimits; sidecar/h2/limits.py) ----
    relay_max_connections: int = field(
        default=h2.MAX_CONNECTIONS,
        metadata=about(Int(1), "Client connections the relay holds at once; more are closed as accepted."),
    )
    relay_preface_timeout: float = field(
        default=h2.PREFACE_TIMEOUT,
        metadata=about(
            Duration(positive=True),
            "A relay client connection without its HTTP/2 preface by then is closed (the model is dialled"
            " only after it).",
        ),
    )
    relay_idle_timeout: float = field(
        default=h2.IDLE_TIMEOUT,
        metadata=about(
            Duration(positive=True), "A relay client connection with no stream this long gets GOAWAY, closed."
        ),
    )
    relay_read_budget: float = field(
        default=h2.READ_BUDGET,
        metadata=about(
            Duration(positive=True),
            "Time the relay spends on one connection's reads per loop turn; the rest waits (fairness).",
        ),
    )
    relay_client_write_high: int = field(
        default=h2.CLIENT_WRITE_HIGH,
        metadata=about(
            Size(16 * KiB, 64 * MiB),
            "Bytes queued towards a relay client before it counts as not reading and is paused.",
        ),
    )
    relay_client_sndbuf: int = field(
        default=h2.CLIENT_SNDBUF,
        metadata=about(
            Size(4 * KiB, 64 * MiB), "Kernel send buffer of each relay client socket (SO_SNDBUF)."
        ),
    )
    relay_client_rcvbuf: int = field(
        default=h2.CLIENT_RCVBUF,
        metadata=about(
            Size(4 * KiB, 64 * MiB), "Kernel receive buffer of each relay client socket (SO_RCVBUF)."
        ),
    )
    relay_write_max: int = field(
        default=h2.WRITE_MAX,
        metadata=about(
            Size(1 * MiB, 2**31 - 1),
            "Bytes queued towards a relay client that reads nothing before it is dropped.",
        ),
    )
    relay_write_stall: float = field(
        default=h2.WRITE_STALL,
        metadata=about(
            Duration(positive=True), "How long a relay client may read nothing before it is dropped."
        ),
    )
    # ---- the relay's HTTP/2 limits on a client (issue 12, h2limits); defaults: sidecar/h2/limits.py ----
    h2_max_concurrent_streams: int = field(
        default=h2.MAX_CONCURRENT_STREAMS,
        metadata=about(
            Int(1, 2**31 - 1),
            "Relay: streams a client connection may have open (advertised); past it REFUSED_STREAM.",
        ),
    )
    h2_max_header_list_size: int = field(
        default=h2.MAX_HEADER_LIST_SIZE,
        metadata=about(
            Size(1, 2**31 - 1),
            "Relay: decoded size of a request's header list (advertised); past it GOAWAY ENHANCE_YOUR_CALM.",
        ),
    )
    h2_max_header_block: int = field(
        default=h2.MAX_BLOCK,
        metadata=about(
            Size(1, 2**31 - 1), "Relay: bytes of one encoded header block (HEADERS and CONTINUATIONs)."
        ),
    )
    h2_max_continuations: int = field(
        default=h2.MAX_CONTINUATIONS,
        metadata=about(Int(1), "Relay: CONTINUATION frames one header block may have."),
    )
    h2_health_max_streams: int = field(
        default=h2.HEALTH_MAX_STREAMS,
        metadata=about(Int(1), "Relay: health calls it answers itself open at once on one connection."),
    )
    h2_reset_budget: int = field(
        default=h2.RESET_BUDGET,
        metadata=about(Int(1), "Relay: RST_STREAMs a client connection may send per h2_reset_window."),
    )
    h2_reset_window: float = field(
        default=h2.RESET_WINDOW,
        metadata=about(Duration(positive=True), "Relay: the window of h2_reset_budget."),
    )
    h2_ping_budget: int = field(
        default=h2.PING_BUDGET,
        metadata=about(Int(1), "Relay: PINGs a client connection may send per h2_control_window."),
    )
    h2_settings_budget: int = field(
        default=h2.SETTINGS_BUDGET,
        metadata=about(Int(1), "Relay: SETTINGS a client connection may send per h2_control_window."),
    )
    h2_empty_frame_budget: int = field(
        default=h2.EMPTY_FRAME_BUDGET,
        metadata=about(
            Int(1), "Relay: empty DATA frames not ending a stream a client may send per h2_control_window."
        ),
    )
    h2_malformed_stream_budget: int = field(
        default=h2.MALFORMED_STREAM_BUDGET,
        metadata=about(Int(1), "Relay: malformed requests one connection may send per h2_control_window."),
    )
    h2_control_window: float = field(
        default=h2.CONTROL_WINDOW,
        metadata=about(
            Duration(positive=True), "Relay: window of the PING, SETTINGS, empty-frame and malformed budgets."
        ),
    )
