"""The request metrics a collector reads at scrape time are byte for byte what prometheus_client's own
Counter and Histogram expose for the same calls, so the format cannot drift from the library's."""

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from sidecar.core.call import Call, Outcome
from sidecar.core.clock import FakeClock
from sidecar.core.status import Code
from sidecar.filters.chain import build_chain
from sidecar.filters.metrics import MetricsFilter
from sidecar.telemetry import prometheus as p
from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.prometheus import SidecarMetrics

SERVICE = "inference.GRPCInferenceService"
INFER = f"/{SERVICE}/ModelInfer"
READY = f"/{SERVICE}/ModelReady"
ODD_MODEL = 'mo"del\\with\nnewline'  # every character the exposition must escape in a label value

# (direction, method path, model, code, seconds) and the labels prometheus_client is given for it.
CALLS = [
    ("ingress", INFER, "digits", Code.OK, 0.042, (SERVICE, "ModelInfer", "digits")),
    ("ingress", INFER, "digits", Code.OK, 0.005, (SERVICE, "ModelInfer", "digits")),  # on a bound
    ("ingress", INFER, "digits", Code.OK, 0.1 + 0.2, (SERVICE, "ModelInfer", "digits")),
    ("ingress", INFER, "digits", Code.NOT_FOUND, 75.0, (SERVICE, "ModelInfer", "digits")),  # +Inf
    ("ingress", READY, "", Code.OK, 0.0, (SERVICE, "ModelReady", "")),
    ("egress", INFER, "digits", Code.UNAVAILABLE, 1.2345678901234567, (SERVICE, "ModelInfer", "digits")),
    ("ingress", "no-slash", ODD_MODEL, Code.UNIMPLEMENTED, 0.0001, ("", "no-slash", ODD_MODEL)),
    ("ingress", "/evil.S1/M1", "digits", Code.UNIMPLEMENTED, 0.002, ("evil.S1", "M1", "digits")),
    # Past the names admitted beyond the known ones (two methods, one model): "other".
    ("ingress", "/evil.S2/M2", "m2", Code.UNIMPLEMENTED, 0.003, ("other", "other", "other")),
    ("ingress", INFER, "digits", Code.OK, 0.75, (SERVICE, "ModelInfer", "digits")),
]


def make_metrics() -> SidecarMetrics:
    return SidecarMetrics(MethodLabels([INFER, READY], limit=2), BoundedNames(["digits"], limit=1))


def library_exposition(calls) -> bytes:
    """What the request metrics were before: prometheus_client's Counter and Histogram, fed the same."""
    registry = CollectorRegistry(auto_describe=True)
    requests = Counter(f"{p.PREFIX}_requests", p.REQUESTS_HELP, p.REQUEST_LABELS, registry=registry)
    duration = Histogram(
        f"{p.PREFIX}_request_duration_seconds", p.DURATION_HELP, p.REQUEST_LABELS,
        buckets=p.DURATION_BUCKETS, registry=registry,
    )  # fmt: skip
    for direction, _, _, code, seconds, labels in calls:
        key = (direction, *labels, code.name)
        requests.labels(*key).inc()
        duration.labels(*key).observe(seconds)
    return generate_latest(registry)


def request_families(metrics: SidecarMetrics) -> bytes:
    """The request counter and histogram: the first families of the exposition, up to the in-flight gauge."""
    body, _ = metrics.exposition()
    head, sep, _ = body.partition(b"# HELP ai_sidecar_requests_in_flight ")
    assert sep, body
    return head


def test_recorded_calls_expose_exactly_as_prometheus_client_counters_and_histograms():
    metrics = make_metrics()
    for direction, method, model, code, seconds, _ in CALLS:
        metrics.observe(direction, method, model, code, seconds)
    expected = library_exposition(CALLS)
    assert b'model="mo\\"del\\\\with\\nnewline"' in expected  # the escaping is exercised
    assert request_families(metrics) == expected


def test_no_calls_yet_exposes_the_two_families_without_samples():
    assert request_families(make_metrics()) == library_exposition([])


@pytest.mark.parametrize("code", [Code.OK, Code.CANCELLED], ids=lambda c: c.name)
async def test_calls_through_the_filter_expose_as_the_library_would(code: Code):
    metrics = make_metrics()
    clock = FakeClock()

    async def terminal(call: Call) -> Outcome:
        clock.advance(0.0125)
        return Outcome(code)

    chain = build_chain([MetricsFilter(metrics, direction="ingress", clock=clock)], terminal)
    for _ in range(3):
        await chain(Call(method=INFER, metadata=[], deadline=None, protocol="grpc", model="digits"))
    labels = (SERVICE, "ModelInfer", "digits")
    assert request_families(metrics) == library_exposition([("ingress", "", "", code, 0.0125, labels)] * 3)


def test_relay_limit_hits_are_read_at_scrape_as_a_counter_by_kind():
    metrics = make_metrics()
    counts = {"rapid_reset": 3}
    metrics.watch_relay_limits(lambda: counts)
    body, _ = metrics.exposition()
    assert b"# TYPE ai_sidecar_relay_limits_total counter" in body
    assert b'ai_sidecar_relay_limits_total{kind="rapid_reset"} 3.0' in body
    counts["ping_flood"] = 1  # read again at the next scrape, not copied at registration
    body, _ = metrics.exposition()
    assert b'ai_sidecar_relay_limits_total{kind="ping_flood"} 1.0' in body
