"""SidecarMetrics and MetricsFilter: what is counted, with which labels, and that labels stay bounded."""

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.core.call import Call, Outcome
from sidecar.core.clock import FakeClock
from sidecar.core.status import Code
from sidecar.filters.chain import build_chain
from sidecar.filters.metrics import MetricsFilter
from sidecar.health.loop_lag import LagRecord
from sidecar.health.readiness import ReadinessSnapshot
from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.prometheus import SidecarMetrics

INFER = "/inference.GRPCInferenceService/ModelInfer"


def make_metrics(**kwargs) -> SidecarMetrics:
    return SidecarMetrics(MethodLabels([INFER], limit=100), BoundedNames(["digits"], limit=100), **kwargs)


def samples(metrics: SidecarMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name:
                found[tuple(sorted(s.labels.items()))] = s.value
    return found


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


def make_call(method: str = INFER, model: str = "") -> Call:
    return Call(method=method, metadata=[], deadline=None, protocol="grpc", model=model)


async def test_a_call_is_counted_and_timed_by_direction_service_method_model_and_code():
    metrics = make_metrics()
    clock = FakeClock()

    async def terminal(call: Call) -> Outcome:
        clock.advance(0.042)
        return Outcome(Code.NOT_FOUND)

    chain = build_chain([MetricsFilter(metrics, direction="ingress", clock=clock)], terminal)
    await chain(make_call(model="digits"))
    key = labels(
        direction="ingress", service="inference.GRPCInferenceService", method="ModelInfer", model="digits",
        code="NOT_FOUND",
    )  # fmt: skip
    assert samples(metrics, "ai_sidecar_requests_total") == {key: 1.0}
    assert samples(metrics, "ai_sidecar_request_duration_seconds_sum") == {key: pytest.approx(0.042)}
    buckets = samples(metrics, "ai_sidecar_request_duration_seconds_bucket")
    assert buckets[(*key[:2], ("le", "0.025"), *key[2:])] == 0.0
    assert buckets[(*key[:2], ("le", "0.05"), *key[2:])] == 1.0
    # No `_created` series beside each one: they would double the series count.
    assert samples(metrics, "ai_sidecar_requests_created") == {}


async def test_in_flight_counts_calls_inside_and_a_cancelled_call_is_counted_as_cancelled():
    metrics = make_metrics()
    inside = asyncio.Event()

    async def terminal(call: Call) -> Outcome:
        inside.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    chain = build_chain([MetricsFilter(metrics, direction="egress")], terminal)

    async def call() -> Outcome:
        return await chain(make_call())

    task = asyncio.create_task(call())
    await inside.wait()
    assert samples(metrics, "ai_sidecar_requests_in_flight") == {labels(direction="egress"): 1.0}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert samples(metrics, "ai_sidecar_requests_in_flight") == {labels(direction="egress"): 0.0}
    (key,) = samples(metrics, "ai_sidecar_requests_total")
    assert dict(key)["code"] == "CANCELLED"


def test_ten_thousand_hostile_methods_and_models_keep_the_series_bounded():
    metrics = make_metrics()
    for i in range(10_000):
        metrics.observe("ingress", f"/evil.S{i}/M{i}", f"model-{i}", Code.UNIMPLEMENTED, 0.001)
    totals = samples(metrics, "ai_sidecar_requests_total")
    assert sum(totals.values()) == 10_000
    # 100 admitted method names (each with the model admitted alongside it), then one "other" series.
    assert len(totals) == 101
    assert totals[
        labels(direction="ingress", service="other", method="other", model="other", code="UNIMPLEMENTED")
    ] == 9_900


def test_a_cap_on_label_combinations_folds_the_rest_into_other():
    metrics = make_metrics(max_series=10)
    for i in range(50):
        for code in (Code.OK, Code.INTERNAL):
            metrics.observe("ingress", INFER, f"m{i}", code, 0.001)
    totals = samples(metrics, "ai_sidecar_requests_total")
    assert len(totals) == 12  # 10 kept apart, then one "other" series per code
    assert sum(totals.values()) == 100


def test_model_readiness_and_registration_gauges():
    metrics = make_metrics()
    metrics.on_readiness(ReadinessSnapshot(True, "model ready"))
    assert samples(metrics, "ai_sidecar_model_ready") == {(): 1.0}
    metrics.on_readiness(ReadinessSnapshot(False, "sidecar draining", serving=True))
    assert samples(metrics, "ai_sidecar_model_ready") == {(): 0.0}
    assert samples(metrics, "ai_sidecar_eureka_registered") == {}
    registered = [False]
    metrics.watch_registration(lambda: registered[0])
    assert samples(metrics, "ai_sidecar_eureka_registered") == {(): 0.0}
    registered[0] = True
    assert samples(metrics, "ai_sidecar_eureka_registered") == {(): 1.0}


def test_loop_lag_and_probe_verdicts_are_read_when_scraped():
    metrics = make_metrics()
    clock, lag = FakeClock(100.0), LagRecord()
    verdicts = {"pass": 3, "fail": 1, "inconclusive": 0}
    metrics.watch_health(lambda: lag.worst(clock()), lambda: lag.stalled_total, lambda: verdicts)
    assert samples(metrics, "ai_sidecar_event_loop_lag_seconds") == {(): 0.0}
    lag.tick(due=99.0, ran=100.5)
    verdicts["inconclusive"] += 1
    assert samples(metrics, "ai_sidecar_event_loop_lag_seconds") == {(): 1.5}
    assert samples(metrics, "ai_sidecar_event_loop_stalled_seconds_total") == {(): 1.5}
    assert samples(metrics, "ai_sidecar_model_probes_total") == {
        labels(verdict="pass"): 3.0, labels(verdict="fail"): 1.0, labels(verdict="inconclusive"): 1.0,
    }  # fmt: skip
    clock.advance(30.0)  # the gauge looks back 10 s; the counter keeps the total
    assert samples(metrics, "ai_sidecar_event_loop_lag_seconds") == {(): 0.0}
    assert samples(metrics, "ai_sidecar_event_loop_stalled_seconds_total") == {(): 1.5}


def test_each_sidecar_has_its_own_registry():
    a, b = make_metrics(), make_metrics()
    a.observe("ingress", INFER, "", Code.OK, 0.01)
    assert len(samples(a, "ai_sidecar_requests_total")) == 1
    assert samples(b, "ai_sidecar_requests_total") == {}
