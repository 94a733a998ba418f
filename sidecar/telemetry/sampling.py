"""The sampler: OpenTelemetry's parentbased_traceidratio, plus what B3 callers may ask for. No I/O.

A caller's decision wins, as in parentbased_traceidratio; spans without a
parent are sampled by trace-id ratio. B3 adds two cases the W3C model has no
flag for, which extraction (`propagation.extract`) records as a hint in the
context: a sampling state sent without ids (`b3: 0` / `b3: 1`) decides the
new root, and ids sent without a sampling state defer the decision to us,
so the ratio decides and the caller's trace id is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry.context import Context, create_key, get_value
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from sidecar.telemetry.b3 import Sampling

# Context key of the B3 sampling state extraction found (a b3.Sampling).
SAMPLING_HINT: Final = create_key("ai-sidecar-b3-sampling")


def sampler(ratio: float) -> Sampler:
    """parentbased_traceidratio with `ratio` for roots, reading B3 hints as described above."""
    ratio_sampler = TraceIdRatioBased(ratio)
    return ParentBased(
        root=_Root(ratio_sampler),
        remote_parent_not_sampled=_DeferredOrOff(ratio_sampler),
    )


def _hint(parent_context: Context | None) -> object:
    return get_value(SAMPLING_HINT, parent_context) if parent_context is not None else None


class _Root(Sampler):
    def __init__(self, ratio: Sampler) -> None:
        self._ratio = ratio

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        hint = _hint(parent_context)
        chosen = self._ratio
        if hint is Sampling.DENY:
            chosen = ALWAYS_OFF
        elif hint is Sampling.ACCEPT:
            chosen = ALWAYS_ON
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"B3HintOr{{{self._ratio.get_description()}}}"


class _DeferredOrOff(Sampler):
    """A remote parent marked not sampled: off, unless it is B3 that left the decision to us."""

    def __init__(self, ratio: Sampler) -> None:
        self._ratio = ratio

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        chosen = self._ratio if _hint(parent_context) is Sampling.DEFER else ALWAYS_OFF
        return chosen.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"B3DeferredOr{{{self._ratio.get_description()}}}"
