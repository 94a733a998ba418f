"""The HTTP/2 attack classes of issue 12 and the answer a front door must give to each: the suite's table.

Every class names its attack (tests/attacks/floods.py, tests/attacks/exhaustion.py), the record
that made it known, and the answer the spec expects of the relay; docs/http2-conformance.md
tables the same answers with what nginx, grpc-go and Envoy answer. Knows nothing about running
or judging them.
"""

from __future__ import annotations

from typing import Final

from tests.attacks import exhaustion, floods
from tests.attacks.spec import CHECK, INFER, PREFACE_TIMEOUT_S, WATCH, Attack

ATTACKS: Final = (
    Attack(
        "rapid-reset",
        "Rapid reset: HEADERS + RST_STREAM pairs",
        "CVE-2023-44487",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.rapid_reset,
    ),
    Attack(
        "continuation-flood",
        "CONTINUATION flood: one small field per frame, no END_HEADERS",
        "CVE-2024-27316 family",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.continuation_flood,
    ),
    Attack(
        "continuation-empty",
        "CONTINUATION flood: endless empty frames",
        "CVE-2024-27316 family",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.continuation_empty,
    ),
    Attack(
        "hpack-bomb",
        "HPACK expansion: one 4 KB table entry referenced ~780k times (768 KiB block)",
        "HPACK bomb (RFC 9113 section 10.5.1)",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.hpack_bomb,
    ),
    Attack(
        "hpack-single-frame",
        "HPACK expansion in one large HEADERS frame with END_HEADERS",
        "HPACK bomb (RFC 9113 section 10.5.1)",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.hpack_single_frame,
    ),
    Attack(
        "ping-flood",
        "PING flood, never reading the ACKs",
        "CVE-2019-9512",
        "closed or throttled (writes stall)",
        floods.ping_flood,
    ),
    Attack(
        "settings-flood",
        "SETTINGS flood, never reading the ACKs",
        "CVE-2019-9515",
        "closed or throttled (writes stall)",
        floods.settings_flood,
    ),
    Attack(
        "empty-data-relayed",
        "Empty DATA flood on a relayed call (ModelInfer)",
        "CVE-2019-9518",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.empty_data(INFER, "ModelInfer"),
    ),
    Attack(
        "empty-data-health",
        "Empty DATA flood on a locally answered call (health Check)",
        "CVE-2019-9518",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.empty_data(CHECK, "health Check"),
    ),
    Attack(
        "empty-headers",
        "Empty HEADERS flood: an empty header block per new stream",
        "CVE-2019-9518",
        "GOAWAY(ENHANCE_YOUR_CALM)",
        floods.empty_headers,
    ),
    Attack(
        "streams-relayed",
        "Stream exhaustion: ModelInfer streams never finished",
        "RFC 9113 section 5.1.2",
        "RST_STREAM(REFUSED_STREAM) past the advertised SETTINGS_MAX_CONCURRENT_STREAMS",
        exhaustion.stream_exhaustion(INFER),
    ),
    Attack(
        "streams-health",
        "Stream exhaustion: health Watch streams held open",
        "RFC 9113 section 5.1.2",
        "RST_STREAM(REFUSED_STREAM) past the advertised SETTINGS_MAX_CONCURRENT_STREAMS",
        exhaustion.stream_exhaustion(WATCH),
    ),
    Attack(
        "connection-flood",
        "Connection flood: silent, half-preface and idle connections",
        "Slowloris-style connection exhaustion",
        f"preface-less connections closed within {PREFACE_TIMEOUT_S:g}s; the model not dialled for them",
        exhaustion.connection_flood,
    ),
    Attack(
        "slow-read",
        "Slow read: pipelined calls on huge windows, answers never read",
        "CVE-2019-9511/9517 (data dribble, internal data buffering)",
        "throttled (writes stall) or closed",
        exhaustion.slow_read,
    ),
    Attack(
        "zero-window",
        "Zero window: calls behind SETTINGS_INITIAL_WINDOW_SIZE 0",
        "RFC 9113 section 6.9",
        "no DATA until the window opens, then every call answered",
        exhaustion.zero_window,
    ),
    Attack(
        "oversized-data",
        "Oversized DATA frame (MAX_FRAME_SIZE + 1)",
        "RFC 9113 section 4.2",
        "GOAWAY(FRAME_SIZE_ERROR)",
        floods.oversized("data"),
    ),
    Attack(
        "oversized-headers",
        "Oversized HEADERS frame (MAX_FRAME_SIZE + 1)",
        "RFC 9113 section 4.2",
        "GOAWAY(FRAME_SIZE_ERROR)",
        floods.oversized("headers"),
    ),
    Attack(
        "oversized-declared",
        "A frame header declaring MAX_FRAME_SIZE + 1, no payload",
        "RFC 9113 section 4.2",
        "GOAWAY(FRAME_SIZE_ERROR) at the header",
        floods.oversized("declared"),
    ),
    Attack(
        "loop-hog",
        "One connection pipelining valid calls as fast as it can (fairness)",
        "issue 12, point 2",
        "any; the others served within 1 s and readiness kept",
        floods.loop_hog,
    ),
)
