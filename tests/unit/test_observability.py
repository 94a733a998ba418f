"""Which filters the config puts in a chain: a part that is off adds none."""

import pathlib

from sidecar.config import load_config
from sidecar.core.call import Call
from sidecar.filters.access_log import AccessLogFilter
from sidecar.filters.metrics import MetricsFilter
from sidecar.filters.tracing import ClientSpan, ServerSpan
from sidecar.health.readiness import Readiness
from sidecar.observability import Telemetry
from sidecar.oip import contract
from sidecar.oip.contract import METHODS as CONTRACT_METHODS
from sidecar.telemetry.access_log import NoAccessLog
from sidecar.telemetry.prometheus import NoMetrics
from sidecar.telemetry.tracing import NoTracing

REQUIRED = ["--app-name", "digits", "--model-address", "127.0.0.1:8001"]


def telemetry(*argv: str) -> Telemetry:
    return Telemetry(load_config([*REQUIRED, *argv], {}))


def kinds(filters) -> list[type]:
    return [type(f) for f in filters]


def test_defaults_put_only_the_metrics_filter_in_the_chain():
    t = telemetry()
    assert kinds(t.outer_filters("ingress")) == [MetricsFilter]
    assert t.inner_filters("ingress", upstream="127.0.0.1:8001") == []
    assert (type(t.tracing), type(t.access_log)) == (NoTracing, NoAccessLog)
    assert t.exposition() is not None


def test_everything_off_puts_nothing_in_the_chain_and_serves_no_metrics():
    t = telemetry("--metrics", "off")
    assert t.outer_filters("ingress") == [] and t.inner_filters("egress") == []
    assert t.exposition() is None


async def test_everything_on_in_order(tmp_path: pathlib.Path):
    t = telemetry(
        *("--tracing", "on", "--trace-exporter", "file", "--trace-file", str(tmp_path / "s")),
        *("--access-log", "on"),
    )
    assert kinds(t.outer_filters("ingress")) == [MetricsFilter, ServerSpan, AccessLogFilter]
    assert kinds(t.inner_filters("ingress", upstream="[::1]:9000")) == [ClientSpan]
    assert t.inner_filters("ingress", upstream="[::1]:9000")[0]._upstream == ("::1", 9000)  # type: ignore[attr-defined]
    await t.stop()


def test_the_contract_methods_are_known_labels():
    assert "/inference.GRPCInferenceService/ModelInfer" in CONTRACT_METHODS
    assert len(CONTRACT_METHODS) == 9


def test_without_tracing_the_access_log_names_the_trace_the_caller_sent():
    t = telemetry("--access-log", "on")
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    call = Call(
        method=contract.MODEL_INFER,
        metadata=[("traceparent", f"00-{trace_id}-{span_id}-01")],
        deadline=None,
        protocol="grpc",
    )
    assert t.tracing.ids(call) == (trace_id, span_id)
    call.metadata = []
    assert t.tracing.ids(call) is None


async def test_parts_that_are_off_take_the_same_calls_and_do_nothing():
    t = telemetry("--metrics", "off")
    readiness = Readiness(1, 1)
    t.watch(readiness)
    t.watch_registration(lambda: True)
    t.watch_egress(dict)
    t.start()
    readiness.record(True)
    await t.stop()
    assert (type(t.metrics), t.exposition(), t.outer_filters("egress")) == (NoMetrics, None, [])
