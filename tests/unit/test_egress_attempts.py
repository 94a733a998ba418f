"""Egress tries through the attempt filters: a CLIENT span per try, each sending its own context."""

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.discovery.endpoint import Endpoint
from sidecar.egress.attempts import AttemptChain
from sidecar.egress.router import AttemptResult
from sidecar.filters.chain import Next, build_chain
from sidecar.filters.tracing import ClientSpan, ServerSpan
from sidecar.telemetry.names import MethodLabels
from tests.unit.test_tracing_filters import CALLER_SPAN, INFER, TRACE, make_call, make_tracing

DEAD = Endpoint(app="DIGITS-B", instance_id="dead", host="10.0.0.1", http_port=8080, grpc_port=9001)
LIVE = Endpoint(app="DIGITS-B", instance_id="live", host="10.0.0.2", http_port=8080, grpc_port=9002)


def grpc_port(endpoint: Endpoint) -> int | None:
    return endpoint.grpc_port


async def test_each_try_gets_its_own_client_span_and_sends_its_own_context():
    exporter = InMemorySpanExporter()
    tracing = make_tracing(exporter)
    methods = MethodLabels([INFER])
    attempts = AttemptChain([ClientSpan(tracing, methods, direction="egress")])
    sent: list[tuple[str, dict[str, object]]] = []

    async def run(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
        sent.append((endpoint.instance_id, dict(tried.metadata)))
        return AttemptResult(Code.UNAVAILABLE if endpoint is DEAD else Code.OK)

    async def terminal(call: Call) -> Outcome:  # as the router does: the dead instance, then a retry
        attempt = attempts.attempt(call, run, grpc_port)
        for endpoint in (DEAD, LIVE):
            result = await attempt(endpoint, 1.0)
        return Outcome(result.code)

    chain = build_chain([ServerSpan(tracing, methods, direction="egress")], terminal)
    call = make_call([("traceparent", f"00-{TRACE}-{CALLER_SPAN}-01"), ("x-keep", "1")])
    assert (await chain(call)).ok
    await tracing.shutdown()
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    assert [s.kind.name for s in spans] == ["CLIENT", "CLIENT"]
    dead, live = spans
    for span, endpoint, code in ((dead, DEAD, Code.UNAVAILABLE), (live, LIVE, Code.OK)):
        assert format_trace_id(span.context.trace_id) == TRACE
        # Each try continues the model's span: the tries are siblings, not nested.
        assert span.parent is not None and format_span_id(span.parent.span_id) == CALLER_SPAN
        assert span.attributes is not None
        assert span.attributes["server.address"] == endpoint.host
        assert span.attributes["server.port"] == endpoint.grpc_port
        assert span.attributes["rpc.grpc.status_code"] == int(code)
    # Each instance was sent the context of its own try's span.
    assert [(who, m["traceparent"]) for who, m in sent] == [
        ("dead", f"00-{TRACE}-{format_span_id(dead.context.span_id)}-01"),
        ("live", f"00-{TRACE}-{format_span_id(live.context.span_id)}-01"),
    ]
    assert all(m["x-keep"] == "1" for _, m in sent)
    # The call itself still carries what the model sent.
    assert call.metadata == [("traceparent", f"00-{TRACE}-{CALLER_SPAN}-01"), ("x-keep", "1")]


async def test_without_attempt_filters_a_try_is_the_transports_alone():
    seen: list[Call] = []

    async def run(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
        seen.append(tried)
        return AttemptResult(Code.OK, f"{endpoint.instance_id} in {timeout}")

    call = make_call([])
    result = await AttemptChain([]).attempt(call, run, grpc_port)(LIVE, 2.5)
    assert result == AttemptResult(Code.OK, "live in 2.5")
    assert seen == [call] and seen[0] is call and call.upstream is None


async def test_a_filter_that_answers_a_try_itself_is_its_result():
    async def refuse(call: Call, next: Next) -> Outcome:
        assert call.upstream == ("10.0.0.2", 9002)
        return Outcome(Code.RESOURCE_EXHAUSTED, "no tries left here")

    async def run(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
        raise AssertionError("a refused try must not reach the transport")

    result = await AttemptChain([refuse]).attempt(make_call([]), run, grpc_port)(LIVE, 1.0)
    assert result == AttemptResult(Code.RESOURCE_EXHAUSTED, "no tries left here")
