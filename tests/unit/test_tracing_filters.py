"""The tracing filters over a real (in-memory) OpenTelemetry SDK: spans, links, attributes, injection."""

import asyncio

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next, build_chain
from sidecar.filters.tracing import ClientSpan, ServerSpan
from sidecar.telemetry.names import MethodLabels
from sidecar.telemetry.tracing import Tracing, TracingSettings, current_ids

INFER = "/inference.GRPCInferenceService/ModelInfer"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def make_tracing(exporter: InMemorySpanExporter, ratio: float = 1.0, formats=("w3c",)) -> Tracing:
    settings = TracingSettings(
        service_name="digits", sample_ratio=ratio, propagation=formats, exporter="memory"
    )
    return Tracing(settings, exporter=exporter)


def make_chain(tracing: Tracing, terminal, direction: str = "ingress"):
    methods = MethodLabels([INFER])
    return build_chain(
        [
            ServerSpan(tracing, methods, direction=direction, local=lambda protocol: ("127.0.0.1", 8081)),
            ClientSpan(tracing, methods, direction=direction, upstream=("127.0.0.1", 9000)),
        ],
        terminal,
    )


def make_call(metadata, method: str = INFER, model: str = "") -> Call:
    return Call(
        method=method,
        metadata=list(metadata),
        deadline=None,
        protocol="grpc",
        peer="ipv4:10.1.2.3:5555",
        model=model,
    )


async def finished(tracing: Tracing, exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    await tracing.shutdown()
    return {span.kind.name: span for span in exporter.get_finished_spans()}


async def test_caller_span_to_server_span_to_client_span_to_upstream():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter)
    sent = []

    async def terminal(call: Call) -> Outcome:
        sent.append(list(call.metadata))
        return Outcome(Code.OK)

    chain = make_chain(tracing, terminal)
    call = make_call([("traceparent", f"00-{TRACE}-{CALLER_SPAN}-01"), ("x-keep", "1")], model="digits")
    assert (await chain(call)).ok
    spans = await finished(tracing, exporter)
    server, client = spans["SERVER"], spans["CLIENT"]
    assert {format_trace_id(s.context.trace_id) for s in (server, client)} == {TRACE}
    assert server.parent is not None and server.parent.is_remote
    assert format_span_id(server.parent.span_id) == CALLER_SPAN
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    # Upstream sees the client span as its parent, and nothing of the caller's own headers.
    client_id = format_span_id(client.context.span_id)
    assert sent == [[("x-keep", "1"), ("traceparent", f"00-{TRACE}-{client_id}-01")]]
    assert server.name == client.name == "inference.GRPCInferenceService/ModelInfer"
    assert server.attributes == {
        "rpc.system": "grpc",
        "rpc.service": "inference.GRPCInferenceService",
        "rpc.method": "ModelInfer",
        "ai_sidecar.model": "digits",
        "ai_sidecar.protocol": "grpc",
        "server.address": "127.0.0.1",
        "server.port": 8081,
        "network.peer.address": "10.1.2.3",
        "network.peer.port": 5555,
        "rpc.grpc.status_code": 0,
    }
    assert client.attributes is not None
    assert (client.attributes["server.address"], client.attributes["server.port"]) == ("127.0.0.1", 9000)


async def test_b3_caller_gets_w3c_upstream_in_the_same_trace():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter, formats=("w3c", "b3multi"))
    sent = []

    async def terminal(call: Call) -> Outcome:
        sent.append(dict(call.metadata))
        return Outcome(Code.OK)

    await make_chain(tracing, terminal)(make_call([("b3", f"{TRACE}-{CALLER_SPAN}-1")]))
    spans = await finished(tracing, exporter)
    client_id = format_span_id(spans["CLIENT"].context.span_id)
    assert sent == [
        {
            "traceparent": f"00-{TRACE}-{client_id}-01",
            "x-b3-traceid": TRACE,
            "x-b3-spanid": client_id,
            "x-b3-sampled": "1",
        }
    ]


@pytest.mark.parametrize(
    ("code", "server_error"),
    [
        (Code.NOT_FOUND, False),
        (Code.INVALID_ARGUMENT, False),
        (Code.UNAVAILABLE, True),
        (Code.INTERNAL, True),
    ],
)
async def test_status_codes_and_errors_follow_the_rpc_conventions(code, server_error):
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter)

    async def terminal(call: Call) -> Outcome:
        return Outcome(code, "why")

    await make_chain(tracing, terminal)(make_call([]))
    spans = await finished(tracing, exporter)
    for span in spans.values():
        assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == int(code)
    assert spans["CLIENT"].status.status_code is StatusCode.ERROR  # any non-OK code, for a client
    assert (spans["SERVER"].status.status_code is StatusCode.ERROR) is server_error


async def test_a_call_rejected_before_upstream_has_a_server_span_only():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter)
    methods = MethodLabels([INFER])

    async def gate(call: Call, next) -> Outcome:
        return Outcome(Code.UNAVAILABLE, "model not ready")

    async def terminal(call: Call) -> Outcome:
        raise AssertionError("not reached")

    chain = build_chain(
        [
            ServerSpan(tracing, methods, direction="ingress"),
            gate,
            ClientSpan(tracing, methods, direction="ingress"),
        ],
        terminal,
    )
    assert (await chain(make_call([]))).code is Code.UNAVAILABLE
    spans = await finished(tracing, exporter)
    assert list(spans) == ["SERVER"]
    assert spans["SERVER"].status.description == "UNAVAILABLE: model not ready"


async def test_a_cancelled_call_ends_its_spans_as_cancelled():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter)
    started = asyncio.Event()

    async def terminal(call: Call) -> Outcome:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    task = asyncio.create_task(make_chain(tracing, terminal)(make_call([])))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    spans = await finished(tracing, exporter)
    assert {s.attributes["rpc.grpc.status_code"] for s in spans.values() if s.attributes} == {1}


async def test_hostile_method_names_share_one_span_name():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter)

    async def terminal(call: Call) -> Outcome:
        return Outcome(Code.UNIMPLEMENTED)

    methods = MethodLabels([INFER], limit=2)
    chain = build_chain([ServerSpan(tracing, methods, direction="ingress")], terminal)
    for i in range(5):
        await chain(make_call([], method=f"/evil.S{i}/M"))
    await chain(make_call([], method=f"/evil.Long/{'x' * 1000}"))
    await tracing.shutdown()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["evil.S0/M", "evil.S1/M", "other", "other", "other", "other"]
    assert spans[-1].attributes is not None and spans[-1].attributes["rpc.method"] == "x" * 256


async def test_unsampled_calls_still_propagate_with_the_sampled_flag_off():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter, ratio=0.0)
    sent = []

    async def terminal(call: Call) -> Outcome:
        sent.append(dict(call.metadata))
        return Outcome(Code.OK)

    await make_chain(tracing, terminal)(make_call([("traceparent", f"00-{TRACE}-{CALLER_SPAN}-00")]))
    await tracing.shutdown()
    assert exporter.get_finished_spans() == ()
    traceparent = str(sent[0]["traceparent"])
    assert traceparent.startswith(f"00-{TRACE}-") and traceparent.endswith("-00")


async def test_egress_continues_the_models_span_without_a_server_span():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter)
    ids = []

    async def terminal(call: Call) -> Outcome:
        return Outcome(Code.OK)

    methods = MethodLabels([INFER])

    async def look(call: Call, next: Next) -> Outcome:
        ids.append(current_ids(call))
        return await next(call)

    chain = build_chain(
        [
            ServerSpan(tracing, methods, direction="egress"),
            look,
            ClientSpan(tracing, methods, direction="egress"),
        ],
        terminal,
    )
    await chain(make_call([("traceparent", f"00-{TRACE}-{CALLER_SPAN}-01")]))
    spans = await finished(tracing, exporter)
    assert list(spans) == ["CLIENT"]
    assert spans["CLIENT"].parent is not None
    assert format_span_id(spans["CLIENT"].parent.span_id) == CALLER_SPAN
    assert ids == [(TRACE, CALLER_SPAN)]
    assert spans["CLIENT"].kind is SpanKind.CLIENT
