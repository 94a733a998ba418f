"""Admission control against a model that serves 8 calls at once, offered five times that.

The model counts its own concurrency. With the limit at the model's capacity, the model never
holds more than it; admitted calls keep their unloaded latency; shed calls come back at once.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import statistics
from collections.abc import Iterator

import grpc.aio
import pytest

from tests.support.governance import (
    grpc_caller,
    model_counters,
    open_loop,
    reset_model,
    start_governed_model,
)
from tests.support.metrics import histogram_quantile, ingress_histogram
from tests.support.procs import HOST, Proc, http_get, running, start_sidecar

pytestmark = pytest.mark.integration

DELAY, CAPACITY = 0.05, 8


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


@pytest.fixture(scope="module")
def model() -> Iterator[Proc]:
    with running(start_governed_model(delay=DELAY, capacity=CAPACITY)) as proc:
        yield proc


def _sidecar(model: Proc, tmp: pathlib.Path, admission: str, dataplane: str = "relay") -> Proc:
    policy = tmp / "policy.yaml"
    policy.write_text(f"version: admission\nadmission: {admission}\n")
    return start_sidecar(model.ports["grpc"], "--dataplane", dataplane, "--policy-file", str(policy))


# Latency is timed by the sidecar itself (its duration histogram, arrival to answer): the client's
# own clock, one Python process sending 800 calls/s on a shared two-core machine, adds its event
# loop's lag. A run the machine disturbs may miss the latency bounds; up to three runs are made and
# the bounds must hold in one. The model's concurrency bound must hold in every run.
ATTEMPTS = 3


async def test_fixed_limit_holds_the_model_at_capacity(model: Proc, tmp_path: pathlib.Path):
    misses: list[str] = []
    with running(_sidecar(model, tmp_path, f"{{limit: fixed, max_concurrency: {CAPACITY}}}")) as sidecar:
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            call = grpc_caller(ch, (("x-client-id", "a"),), timeout=2.0)
            for _ in range(ATTEMPTS):
                miss = await _overload(sidecar, model, call)
                if not miss:
                    return
                misses.append(miss)
    raise AssertionError("; ".join(misses))


async def _overload(sidecar: Proc, model: Proc, call) -> str:
    """One run: unloaded calls, then five times the model's capacity; "" if the latency bounds held."""
    before = ingress_histogram(sidecar, "OK")
    shed_before = ingress_histogram(sidecar, "RESOURCE_EXHAUSTED")
    unloaded = [await _timed(call) for _ in range(100)]
    quiet = ingress_histogram(sidecar, "OK")
    await reset_model(model)
    offered = 5 * CAPACITY / DELAY  # five times what the model can serve
    tally = await open_loop(offered, 3.0, call)
    loaded = ingress_histogram(sidecar, "OK")
    shed = ingress_histogram(sidecar, "RESOURCE_EXHAUSTED")
    counters = await model_counters(model)
    assert set(tally.codes) <= {"OK", "RESOURCE_EXHAUSTED"}, tally.codes
    assert counters["max_in_flight"] <= CAPACITY, counters
    admitted = tally.latencies.get("OK", [0.0])
    shed_total = shed[float("inf")] - shed_before.get(float("inf"), 0)
    assert shed_total == tally.codes["RESOURCE_EXHAUSTED"]
    p99_unloaded = histogram_quantile(0.99, quiet, before)
    p99_loaded = histogram_quantile(0.99, loaded, quiet)
    p99_shed = histogram_quantile(0.99, shed, shed_before)
    # The limit is not merely shedding everything: the model is kept busy (half its capacity at least).
    busy = len(admitted) >= 0.5 * 3.0 * CAPACITY / DELAY
    if busy and p99_loaded <= 1.5 * p99_unloaded and p99_shed <= 0.005:
        return ""
    client = f"client: {p99(admitted) * 1000:.0f} ms loaded, {p99(unloaded) * 1000:.0f} ms unloaded"
    return (
        f"{len(admitted)} admitted, p99 {p99_loaded * 1000:.0f} ms, unloaded {p99_unloaded * 1000:.0f} ms,"
        f" shed p99 {p99_shed * 1000:.1f} ms ({client})"
    )


async def _timed(call) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await call() == "OK"
    return loop.time() - started


async def test_a_call_whose_wait_would_outlast_its_deadline_is_shed_at_once(tmp_path: pathlib.Path):
    with (
        running(start_governed_model(delay=0.2, capacity=1)) as slow,
        # The queue is the grpcio plane's (and REST's): the relay sheds instead (admission.py says why).
        running(
            _sidecar(slow, tmp_path, "{limit: fixed, max_concurrency: 1, queue: {size: 10}}", "grpcio")
        ) as sidecar,
    ):
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            md = (("x-client-id", "a"),)
            assert await grpc_caller(ch, md)() == "OK"  # one sample: calls take about 200 ms
            patient = asyncio.ensure_future(grpc_caller(ch, md, timeout=5.0)())
            queued = asyncio.ensure_future(grpc_caller(ch, md, timeout=5.0)())
            await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                await ch.unary_unary("/inference.GRPCInferenceService/ModelInfer")(
                    b"", metadata=md, timeout=0.15
                )
                code, details = "OK", ""
            except grpc.aio.AioRpcError as e:
                code, details = e.code().name, e.details() or ""
            took = loop.time() - started
            assert (await patient, await queued) == ("OK", "OK"), (
                "queued calls within their deadline are served"
            )
    assert code == "RESOURCE_EXHAUSTED", details
    assert "would outlast the deadline" in details
    assert took < 0.1, f"shed after {took * 1000:.0f} ms, not at once (its deadline was 150 ms)"


async def test_gradient_limit_learns_the_models_capacity(model: Proc, tmp_path: pathlib.Path):
    admission = (
        "{limit: gradient, gradient: {initial_limit: 40, min_limit: 2, probe_limit: 2, tolerance: 1.2}}"
    )
    with running(_sidecar(model, tmp_path, admission)) as sidecar:
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            await reset_model(model)
            call = grpc_caller(ch, (("x-client-id", "a"),), timeout=2.0)
            await open_loop(5 * CAPACITY / DELAY, 4.0, call)
            limits = []
            tally = None
            for _ in range(3):
                tally = await open_loop(5 * CAPACITY / DELAY, 1.0, call)
                limits.append(
                    json.loads(http_get(sidecar.ports["admin"], "/policy")[1])["admission"]["limit"]
                )
    assert tally is not None
    assert set(tally.codes) <= {"OK", "RESOURCE_EXHAUSTED"}, tally.codes
    # From 40 the limit comes down to the model's capacity, with a little headroom to probe above it.
    assert all(2 <= limit <= 2 * CAPACITY for limit in limits), limits
