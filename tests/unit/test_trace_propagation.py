"""Extraction (W3C, then B3), injection that replaces the caller's headers, and the sampler's decisions."""

from collections.abc import Iterable

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)

from sidecar.core.call import Metadata
from sidecar.telemetry.propagation import Injector, extract, incoming_ids, trace_headers
from sidecar.telemetry.sampling import sampler

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"


def parent_of(metadata: Iterable[tuple[str, str]]) -> SpanContext:
    md: Metadata = [*metadata]
    return get_current_span(extract(md)).get_span_context()


def test_w3c_traceparent_and_tracestate_are_read():
    parent = parent_of([("traceparent", TRACEPARENT), ("tracestate", "vendor=x,other=y")])
    assert (parent.trace_id, parent.span_id, parent.is_remote) == (int(TRACE, 16), int(SPAN, 16), True)
    assert parent.trace_flags.sampled
    assert dict(parent.trace_state) == {"vendor": "x", "other": "y"}


def test_b3_single_and_multi_are_read():
    single = parent_of([("b3", f"{TRACE}-{SPAN}-1")])
    multi = parent_of([("x-b3-traceid", TRACE), ("x-b3-spanid", SPAN), ("x-b3-sampled", "0")])
    ids = (int(TRACE, 16), int(SPAN, 16))
    assert (single.trace_id, single.span_id, single.trace_flags.sampled) == (*ids, True)
    assert (multi.trace_id, multi.span_id, multi.trace_flags.sampled) == (*ids, False)


def test_w3c_wins_over_b3_and_a_bad_traceparent_falls_back_to_b3():
    b3_span = "1111111111111111"
    both = [("b3", f"{TRACE}-{b3_span}-1"), ("traceparent", TRACEPARENT)]
    assert parent_of(both).span_id == int(SPAN, 16)
    bad = [("traceparent", "00-nonsense-01"), ("b3", f"{TRACE}-{b3_span}-1")]
    assert parent_of(bad).span_id == int(b3_span, 16)


def test_no_trace_headers_means_a_new_root():
    binary: Metadata = [("x-other", "1"), ("traceparent-bin", b"\x00"), ("traceparent", b"not text")]
    assert not get_current_span(extract(binary)).get_span_context().is_valid
    assert incoming_ids([]) is None
    assert incoming_ids([("traceparent", TRACEPARENT)]) == (TRACE, SPAN)


def test_trace_headers_collects_only_trace_keys():
    md: Metadata = [("traceparent", TRACEPARENT), ("x-a", "1"), ("tracestate", "a=1"), ("tracestate", "b=2")]
    assert trace_headers(md) == {"traceparent": [TRACEPARENT], "tracestate": ["a=1", "b=2"]}


def ours() -> Context:
    span = SpanContext(int("ab" * 16, 16), int("cd" * 8, 16), is_remote=False, trace_flags=TraceFlags(1))
    return set_span_in_context(NonRecordingSpan(span))


@pytest.mark.parametrize(
    ("formats", "expected"),
    [
        (["w3c"], [("traceparent", f"00-{'ab' * 16}-{'cd' * 8}-01")]),
        (["b3"], [("b3", f"{'ab' * 16}-{'cd' * 8}-1")]),
        (
            ["b3multi"],
            [("x-b3-traceid", "ab" * 16), ("x-b3-spanid", "cd" * 8), ("x-b3-sampled", "1")],
        ),
    ],
)
def test_injection_replaces_every_trace_header_the_caller_sent(formats, expected):
    md: Metadata = [
        ("traceparent", TRACEPARENT),
        ("tracestate", "vendor=x"),
        ("b3", f"{TRACE}-{SPAN}-1"),
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-parentspanid", SPAN),
        ("x-b3-sampled", "1"),
        ("x-b3-flags", "1"),
        ("x-keep", "me"),
    ]
    Injector(formats).inject(md, ours())
    assert md == [("x-keep", "me"), *expected]


def test_every_format_at_once_and_duplicates_once():
    md: Metadata = []
    Injector(["w3c", "b3", "b3multi", "w3c"]).inject(md, ours())
    assert [k for k, _ in md] == ["traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"]


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="jaeger"):
        Injector(["w3c", "jaeger"])


# -- the sampler: parentbased_traceidratio plus B3 hints


def decide(metadata: Iterable[tuple[str, str]], ratio: float, trace_id: int = int(TRACE, 16)) -> Decision:
    md: Metadata = [*metadata]
    return sampler(ratio).should_sample(extract(md), trace_id, "span").decision


def test_a_sampled_caller_is_followed_whatever_the_ratio():
    assert decide([("traceparent", TRACEPARENT)], 0.0) is Decision.RECORD_AND_SAMPLE
    assert decide([("b3", f"{TRACE}-{SPAN}-1")], 0.0) is Decision.RECORD_AND_SAMPLE


def test_an_unsampled_caller_is_followed_whatever_the_ratio():
    assert decide([("traceparent", f"00-{TRACE}-{SPAN}-00")], 1.0) is Decision.DROP
    assert decide([("b3", f"{TRACE}-{SPAN}-0")], 1.0) is Decision.DROP


def test_roots_are_sampled_by_trace_id_ratio():
    low, high = 1, (1 << 64) - 1  # the ratio compares the trace id's low 64 bits
    assert decide([], 0.5, low) is Decision.RECORD_AND_SAMPLE
    assert decide([], 0.5, high) is Decision.DROP
    assert decide([], 1.0, high) is Decision.RECORD_AND_SAMPLE
    assert decide([], 0.0, low) is Decision.DROP


def test_b3_sampling_state_without_ids_decides_the_root():
    assert decide([("b3", "0")], 1.0) is Decision.DROP
    assert decide([("b3", "1")], 0.0) is Decision.RECORD_AND_SAMPLE
    assert decide([("x-b3-flags", "1")], 0.0) is Decision.RECORD_AND_SAMPLE


def test_b3_ids_without_a_sampling_state_defer_to_the_ratio():
    deferred = [("x-b3-traceid", TRACE), ("x-b3-spanid", SPAN)]
    assert decide(deferred, 1.0) is Decision.RECORD_AND_SAMPLE
    assert decide(deferred, 0.0) is Decision.DROP
    assert decide([("b3", f"{TRACE}-{SPAN}")], 1.0) is Decision.RECORD_AND_SAMPLE


def test_a_deferred_b3_trace_keeps_the_callers_trace_id_and_the_child_follows_the_server_span():
    provider = TracerProvider(sampler=sampler(1.0), shutdown_on_exit=False)
    tracer = provider.get_tracer("test")
    parent = extract([("x-b3-traceid", TRACE), ("x-b3-spanid", SPAN)])
    server = tracer.start_span("server", parent)
    client = tracer.start_span("client", set_span_in_context(server, parent))
    assert server.is_recording() and client.is_recording()
    assert server.get_span_context().trace_id == int(TRACE, 16)
    assert client.get_span_context().trace_id == int(TRACE, 16)
    client.end()
    server.end()


@pytest.mark.parametrize(
    ("metadata", "ids"),
    [
        ([("traceparent", TRACEPARENT)], (TRACE, SPAN)),
        ([("traceparent", f" {TRACEPARENT} ")], (TRACE, SPAN)),
        ([("traceparent", f"01-{TRACE}-{SPAN}-01-future")], (TRACE, SPAN)),  # a later version may add fields
        ([("traceparent", f"00-{TRACE}-{SPAN}-01-extra")], None),
        ([("traceparent", f"ff-{TRACE}-{SPAN}-01")], None),
        ([("traceparent", f"00-{'0' * 32}-{SPAN}-01")], None),
        ([("traceparent", f"00-{TRACE.upper()}-{SPAN}-01")], None),
        ([("traceparent", "junk"), ("b3", f"{TRACE}-{SPAN}-0")], (TRACE, SPAN)),
        ([("x-b3-traceid", TRACE[16:]), ("x-b3-spanid", SPAN)], ("0" * 16 + TRACE[16:], SPAN)),
        ([("b3", "0")], None),
    ],
)
def test_incoming_ids_read_without_tracing(metadata, ids):
    md: Metadata = list(metadata)
    assert incoming_ids(md) == ids
    # The same answer tracing's extraction gives, where it finds a context.
    parent = get_current_span(extract(md)).get_span_context()
    assert (ids is not None) == parent.is_valid
