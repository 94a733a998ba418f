"""Traces through real processes: a client's trace id in the sidecar's exported spans and the model's log.

The sidecar exports to a JSON-lines file (trace_exporter: file) that the test
reads; the digits model logs the W3C context it received in its event log.
Links checked: the client's span -> the sidecar's SERVER span -> its CLIENT
span -> the model, for W3C and for a client that speaks only B3; then the
same trace carried on through egress into a second sidecar and model; and
the OTLP exporter against an in-process collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import secrets
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import images, raw_request
from tests.support.procs import HOST, Proc, free_port, running, start_model, start_sidecar

pytestmark = pytest.mark.integration

Span = dict[str, Any]
OIP = "inference.GRPCInferenceService"
INFER = f"{OIP}/ModelInfer"


def read_jsonl(path: pathlib.Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(what: str, probe, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def spans_of(path: pathlib.Path, trace_id: str, count: int) -> list[Span]:
    def probe() -> list[Span] | None:
        spans = [s for s in read_jsonl(path) if s["trace_id"] == trace_id]
        return spans if len(spans) >= count else None

    return list(wait_for(f"{count} spans of trace {trace_id} in {path}", probe))


def trace_spans(path: pathlib.Path, trace_id: str, done: Any) -> list[Span]:
    """The spans of a trace once `done(spans)` says all that should be there are."""

    def probe() -> list[Span] | None:
        spans = [s for s in read_jsonl(path) if s["trace_id"] == trace_id]
        return spans if done(spans) else None

    return list(wait_for(f"the spans of trace {trace_id} in {path}", probe))


def by_kind(spans: list[Span]) -> dict[str, Span]:
    kinds = {s["kind"]: s for s in spans}
    assert len(kinds) == len(spans), spans
    return kinds


def model_event(path: pathlib.Path, request_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        return next((e for e in read_jsonl(path) if e["id"] == request_id), None)

    return dict(wait_for(f"model event for request {request_id}", probe))


def access_line(proc: Proc, trace_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for line in proc.log().splitlines():
            if line.startswith("{") and f'"trace_id":"{trace_id}"' in line:
                return dict(json.loads(line))
        return None

    return dict(wait_for(f"access log line of trace {trace_id}", probe))


def ids() -> tuple[str, str, str]:
    """A fresh trace id, caller span id and request id."""
    return secrets.token_hex(16), secrets.token_hex(8), secrets.token_hex(4)


def rest_infer(port: int, path: str, traceparent: str) -> None:
    """An OIP REST inference request for one digit, with a W3C context, answered 200."""
    x, _ = images()
    inputs = [{"name": "INPUT0", "datatype": "FP32", "shape": [1, 64], "data": x[0].tolist()}]
    request = urllib.request.Request(
        f"http://{HOST}:{port}{path}",
        data=json.dumps({"inputs": inputs}).encode(),
        headers={"Content-Type": "application/json", "traceparent": traceparent},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200


def infer(port: int, request_id: str, metadata: list[tuple[str, str]]) -> None:
    x, _ = images()
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            raw_request(x[:1], id=request_id), metadata=metadata, timeout=10
        )
    assert response.id == request_id


@pytest.fixture(scope="module")
def workdir() -> Iterator[pathlib.Path]:
    with tempfile.TemporaryDirectory(prefix="tracing-") as d:
        yield pathlib.Path(d)


@pytest.fixture(scope="module")
def traced(workdir: pathlib.Path) -> Iterator[Proc]:
    events, spans = workdir / "events.jsonl", workdir / "spans.jsonl"
    with running(start_model("--event-log", str(events))) as model, running(
        start_sidecar(
            model.ports["grpc"],
            *("--model", "digits", "--tracing", "on", "--trace-exporter", "file", "--trace-file", str(spans)),
            *("--trace-propagation", "w3c,b3multi", "--access-log", "on"),
        )
    ) as sidecar:
        yield sidecar


def check_links(spans: list[Span], trace_id: str, caller_span: str | None, event: dict[str, Any]) -> Span:
    """client's span -> SERVER -> CLIENT -> model; returns the CLIENT span."""
    kinds = by_kind(spans)
    server, client = kinds["SERVER"], kinds["CLIENT"]
    assert server["name"] == client["name"] == INFER
    assert server["parent_span_id"] == caller_span
    assert server["parent_remote"] is (True if caller_span else None)
    assert client["parent_span_id"] == server["span_id"] and client["parent_remote"] is False
    assert server["attributes"]["rpc.system"] == "grpc"
    assert server["attributes"]["rpc.service"] == "inference.GRPCInferenceService"
    assert server["attributes"]["rpc.method"] == "ModelInfer"
    assert server["attributes"]["rpc.grpc.status_code"] == 0
    assert client["attributes"]["server.address"] == HOST
    # The model saw the sidecar's client span as its parent, in the same trace.
    assert (event["trace_id"], event["parent_span_id"]) == (trace_id, client["span_id"])
    return client


def test_a_w3c_trace_goes_from_the_client_through_the_sidecar_into_the_model(traced, workdir):
    sidecar = traced
    trace_id, caller_span, request_id = ids()
    infer(
        sidecar.ports["grpc"],
        request_id,
        [("traceparent", f"00-{trace_id}-{caller_span}-01"), ("x-client-id", "tests")],
    )
    spans = spans_of(workdir / "spans.jsonl", trace_id, 2)
    event = model_event(workdir / "events.jsonl", request_id)
    client = check_links(spans, trace_id, caller_span, event)
    assert {s["service"] for s in spans} == {"digits"}
    # Formats the sidecar was told to send: W3C and B3 multi, for the same span.
    assert event["metadata"]["x-b3-traceid"] == trace_id
    assert event["metadata"]["x-b3-spanid"] == client["span_id"]
    line = access_line(sidecar, trace_id)
    assert line["span_id"] == by_kind(spans)["SERVER"]["span_id"]
    assert (line["client_id"], line["code"], line["direction"]) == ("tests", "OK", "ingress")
    assert line["request_bytes"] > 0 and line["response_bytes"] > 0


@pytest.mark.parametrize("form", ["single", "multi"])
def test_a_client_that_speaks_only_b3_joins_the_same_trace(traced, workdir, form):
    sidecar = traced
    trace_id, caller_span, request_id = ids()
    if form == "single":
        headers = [("b3", f"{trace_id}-{caller_span}-1")]
    else:
        headers = [("x-b3-traceid", trace_id), ("x-b3-spanid", caller_span), ("x-b3-sampled", "1")]
    infer(sidecar.ports["grpc"], request_id, headers)
    spans = spans_of(workdir / "spans.jsonl", trace_id, 2)
    check_links(spans, trace_id, caller_span, model_event(workdir / "events.jsonl", request_id))


def test_a_64_bit_b3_trace_id_is_padded_to_128_bits(traced, workdir):
    sidecar = traced
    short, caller_span, request_id = secrets.token_hex(8), secrets.token_hex(8), secrets.token_hex(4)
    infer(sidecar.ports["grpc"], request_id, [("b3", f"{short}-{caller_span}-1")])
    trace_id = "0" * 16 + short
    check_links(
        spans_of(workdir / "spans.jsonl", trace_id, 2),
        trace_id,
        caller_span,
        model_event(workdir / "events.jsonl", request_id),
    )


def test_a_rest_call_is_traced_too(traced, workdir):
    sidecar = traced
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    rest_infer(sidecar.ports["http"], "/v2/models/digits/infer", f"00-{trace_id}-{caller_span}-01")
    kinds = by_kind(spans_of(workdir / "spans.jsonl", trace_id, 2))
    assert kinds["SERVER"]["parent_span_id"] == caller_span
    assert kinds["SERVER"]["attributes"]["ai_sidecar.protocol"] == "http"
    assert kinds["SERVER"]["attributes"]["ai_sidecar.model"] == "digits"
    assert kinds["CLIENT"]["parent_span_id"] == kinds["SERVER"]["span_id"]
    line = access_line(sidecar, trace_id)
    assert (line["protocol"], line["model"], line["http_status"]) == ("http", "digits", 200)


def test_a_call_without_context_starts_a_new_trace_the_model_continues(traced, workdir):
    sidecar = traced
    request_id = secrets.token_hex(4)
    infer(sidecar.ports["grpc"], request_id, [])
    event = model_event(workdir / "events.jsonl", request_id)
    spans = spans_of(workdir / "spans.jsonl", event["trace_id"], 2)
    check_links(spans, event["trace_id"], None, event)


# -- egress: ingress -> model -> egress -> second sidecar -> second model


class RelayModel:
    """A model that answers ModelInfer by calling service `target` through its sidecar's egress,
    passing on the trace context it received, as a model continuing the trace does."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.egress_port = 0
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
        )
        self._health = health.HealthServicer()
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        handler = grpc.unary_unary_rpc_method_handler(self._infer)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(OIP, {"ModelInfer": handler}),)
        )
        self.port = self._server.add_insecure_port(f"{HOST}:0")

    def _infer(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        trace = [(k, v) for k, v in context.invocation_metadata() if k == "traceparent"]
        with grpc.insecure_channel(f"{HOST}:{self.egress_port}") as channel:
            call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
            response: bytes = call(request, metadata=[*trace, ("x-sidecar-target", self.target)], timeout=10)
        return response

    def __enter__(self) -> RelayModel:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(0)


@dataclass
class EgressPair:
    """Sidecar A in front of a RelayModel calling digits-b, sidecar B with the digits model, by name."""

    a: Proc
    b: Proc
    spans_a: pathlib.Path
    spans_b: pathlib.Path
    events_b: pathlib.Path


@contextlib.contextmanager
def egress_pair(
    workdir: pathlib.Path, name: str, *, dead: tuple[int, ...] = (), a_flags: tuple[str, ...] = ()
) -> Iterator[EgressPair]:
    """Both sidecars trace to files named after `name`; `dead` ports are digits-b instances listed
    before sidecar B that refuse connections."""
    spans_a, spans_b = workdir / f"{name}-a.jsonl", workdir / f"{name}-b.jsonl"
    events_b = workdir / f"{name}-events-b.jsonl"
    tracing = ("--tracing", "on", "--trace-exporter", "file")
    with (
        running(start_model("--event-log", str(events_b))) as model_b,
        running(
            start_sidecar(model_b.ports["grpc"], *tracing, "--trace-file", str(spans_b), app_name="digits-b")
        ) as b,
        RelayModel("digits-b") as relay,
    ):
        instances = [{"host": HOST, "grpc_port": port, "http_port": port} for port in dead]
        instances.append({"host": HOST, "grpc_port": b.ports["grpc"], "http_port": b.ports["http"]})
        registry = workdir / f"{name}-registry.yaml"
        registry.write_text(json.dumps({"apps": {"digits-b": instances}}))
        with running(
            start_sidecar(
                relay.port,
                *(*tracing, "--trace-file", str(spans_a), "--registry-file", str(registry), *a_flags),
                app_name="relay-a",
            )
        ) as a:
            relay.egress_port = a.ports["egress_grpc"]
            yield EgressPair(a, b, spans_a, spans_b, events_b)


def test_the_trace_continues_through_egress_into_a_second_sidecar_and_model(workdir):
    with egress_pair(workdir, "through") as pair:
        trace_id, caller_span, request_id = ids()
        infer(pair.a.ports["grpc"], request_id, [("traceparent", f"00-{trace_id}-{caller_span}-01")])
        a = spans_of(pair.spans_a, trace_id, 3)
        b = spans_of(pair.spans_b, trace_id, 2)
    ingress_server = next(s for s in a if s["kind"] == "SERVER")
    ingress_client, egress_client = sorted(
        (s for s in a if s["kind"] == "CLIENT"), key=lambda s: s["start_ns"]
    )
    assert ingress_server["parent_span_id"] == caller_span
    assert ingress_client["parent_span_id"] == ingress_server["span_id"]
    # The relay passed its caller's context on unchanged, so egress continues from the ingress client span.
    assert egress_client["parent_span_id"] == ingress_client["span_id"] and egress_client["parent_remote"]
    kinds_b = by_kind(b)
    assert kinds_b["SERVER"]["parent_span_id"] == egress_client["span_id"]
    assert kinds_b["SERVER"]["service"] == "digits-b" and ingress_server["service"] == "relay-a"
    check_links(b, trace_id, egress_client["span_id"], model_event(pair.events_b, request_id))


def test_egress_gives_each_try_its_own_client_span_over_grpc_and_http(workdir):
    dead = free_port()  # an instance that refuses connections: its tries fail, the router retries
    policy = workdir / "tries-policy.yaml"
    policy.write_text(json.dumps({"default": {"balancer": "round_robin"}}))
    with egress_pair(workdir, "tries", dead=(dead,), a_flags=("--egress-policy-file", str(policy))) as pair:
        live = {"grpc": pair.b.ports["grpc"], "http": pair.b.ports["http"]}
        # gRPC: round robin tries the dead instance first in one of the first two calls.
        for _ in range(2):
            trace_id, caller_span, request_id = ids()
            infer(pair.a.ports["grpc"], request_id, [("traceparent", f"00-{trace_id}-{caller_span}-01")])
            # The ingress SERVER span ends last: then every egress try's span is written.
            a = trace_spans(pair.spans_a, trace_id, lambda spans: any(s["kind"] == "SERVER" for s in spans))
            if len(a) == 4:
                break
        assert len(a) == 4, "neither call tried the dead instance first"
        b = spans_of(pair.spans_b, trace_id, 2)

        # HTTP: the test is the model, calling by name with its own span as the parent.
        http_trace, model_span = secrets.token_hex(16), secrets.token_hex(8)
        egress = pair.a.ports["egress_http"]
        rest_infer(egress, "/digits-b/v2/models/digits/infer", f"00-{http_trace}-{model_span}-01")
        http_b = by_kind(spans_of(pair.spans_b, http_trace, 2))
        http_a = trace_spans(
            pair.spans_a,
            http_trace,
            lambda spans: any(s["attributes"]["server.port"] == live["http"] for s in spans),
        )

    ingress_server = next(s for s in a if s["kind"] == "SERVER")
    ingress_client = next(
        s for s in a if s["kind"] == "CLIENT" and s["parent_span_id"] == ingress_server["span_id"]
    )
    tries = sorted((s for s in a if s not in (ingress_server, ingress_client)), key=lambda s: s["start_ns"])
    assert [(s["kind"], s["attributes"]["server.port"]) for s in tries] == [
        ("CLIENT", dead),
        ("CLIENT", live["grpc"]),
    ]
    assert [s["attributes"]["rpc.grpc.status_code"] for s in tries] == [14, 0]
    # Both tries continue the model's context (siblings); the second sidecar continues the try
    # that reached it.
    assert {s["parent_span_id"] for s in tries} == {ingress_client["span_id"]}
    assert by_kind(b)["SERVER"]["parent_span_id"] == tries[1]["span_id"]

    assert {s["kind"] for s in http_a} == {"CLIENT"}
    assert {s["parent_span_id"] for s in http_a} == {model_span}  # the model's own span, from its header
    reached = next(s for s in http_a if s["attributes"]["server.port"] == live["http"])
    assert all(s["attributes"]["server.port"] == dead for s in http_a if s is not reached)
    # The second sidecar continues the try that reached it, not the model's span the request came with.
    assert http_b["SERVER"]["parent_span_id"] == reached["span_id"]


# -- the OTLP exporter, against an in-process collector


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = asyncio.Event()

    async def Export(self, request, context):  # the generated name
        self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


async def test_spans_reach_an_otlp_collector():
    collector = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(f"{HOST}:{free_port()}")
    await server.start()
    try:
        model = await asyncio.to_thread(start_model)
        try:
            sidecar = await asyncio.to_thread(
                start_sidecar,
                model.ports["grpc"],
                "--tracing", "on", "--otlp-endpoint", f"http://{HOST}:{port}",
            )  # fmt: skip
            try:
                trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
                await asyncio.to_thread(
                    infer, sidecar.ports["grpc"], "otlp", [("traceparent", f"00-{trace_id}-{caller_span}-01")]
                )
                async with asyncio.timeout(15):
                    while not _otlp_spans(collector, trace_id):
                        await collector.received.wait()
                        collector.received.clear()
            finally:
                await asyncio.to_thread(sidecar.stop)
        finally:
            await asyncio.to_thread(model.stop)
    finally:
        await server.stop(0)
    spans = _otlp_spans(collector, trace_id)
    assert sorted(kind for kind, _ in spans) == [2, 3]  # SPAN_KIND_SERVER, SPAN_KIND_CLIENT
    attributes = collector.requests[0].resource_spans[0].resource.attributes
    resource = {a.key: a.value.string_value for a in attributes}
    assert resource["service.name"] == "digits"


def _otlp_spans(collector: Collector, trace_id: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for request in collector.requests:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if span.trace_id.hex() == trace_id:
                        found.append((int(span.kind), span.name))
    return found
