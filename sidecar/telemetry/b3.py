"""Reading Zipkin B3 trace headers, single (`b3`) and multi (`x-b3-*`). Pure: no I/O, no tracing library.

Follows https://github.com/openzipkin/b3-propagation: a 64-bit trace id is
left-padded to 128 bits; the sampling state is accept ("1", or debug "d" /
`x-b3-flags: 1`), deny ("0") or absent, which defers the decision to the
receiver. A sampling state may come without ids (`b3: 0`): the caller decided,
but started no trace. A malformed single header falls back to the multi
headers; malformed ids are ignored, never an error.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

SINGLE: Final = "b3"
TRACE_ID: Final = "x-b3-traceid"
SPAN_ID: Final = "x-b3-spanid"
PARENT_SPAN_ID: Final = "x-b3-parentspanid"
SAMPLED: Final = "x-b3-sampled"
FLAGS: Final = "x-b3-flags"
KEYS: Final = frozenset({SINGLE, TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS})

_TRACE_ID = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")


class Sampling(enum.Enum):
    ACCEPT = "accept"
    DENY = "deny"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class B3:
    # Both set or both None (a sampling state alone).
    trace_id: int | None
    span_id: int | None
    sampling: Sampling
    debug: bool = False


def parse(headers: Mapping[str, str]) -> B3 | None:
    """The B3 context in lower-case `headers`, or None when they carry none."""
    single = headers.get(SINGLE)
    if single is not None:
        parsed = _single(single.strip())
        if parsed is not None:
            return parsed
    return _multi(headers)


def _single(value: str) -> B3 | None:
    fields = value.split("-")
    if len(fields) == 1:
        sampling = _SINGLE_SAMPLING.get(fields[0])
        return None if sampling is None else B3(None, None, *sampling)
    if len(fields) > 4:
        return None
    trace_id, span_id = _id(fields[0], _TRACE_ID), _id(fields[1], _SPAN_ID)
    if trace_id is None or span_id is None:
        return None
    sampling = _SINGLE_SAMPLING.get(fields[2]) if len(fields) > 2 else (Sampling.DEFER, False)
    if sampling is None or (len(fields) == 4 and _id(fields[3], _SPAN_ID) is None):
        return None
    return B3(trace_id, span_id, *sampling)


_SINGLE_SAMPLING: Final = {
    "1": (Sampling.ACCEPT, False),
    "d": (Sampling.ACCEPT, True),
    "0": (Sampling.DENY, False),
}
# Early tracers sent "true"/"false"; the spec asks receivers to accept them.
_MULTI_SAMPLED: Final = {
    "1": Sampling.ACCEPT, "true": Sampling.ACCEPT, "0": Sampling.DENY, "false": Sampling.DENY,
}  # fmt: skip


def _multi(headers: Mapping[str, str]) -> B3 | None:
    debug = headers.get(FLAGS, "").strip() == "1"
    sampled = headers.get(SAMPLED)
    sampling = _MULTI_SAMPLED.get(sampled.strip().lower(), Sampling.DEFER) if sampled else Sampling.DEFER
    if debug:
        sampling = Sampling.ACCEPT  # debug implies accept; a "0" beside it is ignored, as the spec says
    trace_id = _id(headers.get(TRACE_ID, "").strip(), _TRACE_ID)
    span_id = _id(headers.get(SPAN_ID, "").strip(), _SPAN_ID)
    if trace_id is None or span_id is None:
        if sampling is Sampling.DEFER:
            return None
        return B3(None, None, sampling, debug)
    return B3(trace_id, span_id, sampling, debug)


def _id(text: str, pattern: re.Pattern[str]) -> int | None:
    if not pattern.fullmatch(text):
        return None
    value = int(text, 16)
    return value or None  # all zeros is invalid
