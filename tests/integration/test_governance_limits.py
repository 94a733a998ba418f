"""Rate-limit accuracy on real sidecars: 1000 calls/s offered for 10 s against 300/s admits 3000 + burst.

Judged on the sidecar's own clock: its access log has each call's arrival and code, so what it
admitted is compared with what a perfect token bucket admits of those very arrivals (exact to
within 5 %, whatever the machine's load), and those arrivals with a steady 1000/s for 10 s
(3000 + burst). A window the shared two-core machine disturbs so much that the arrivals were
not steady is run again, at most three times; the limiter's own accuracy must hold in each.

The relay, the grpcio plane and REST run at once (three clients, each its own bucket), which keeps
the test's wall time at one window. In global mode three sidecars share one real redis-server;
killing it mid-run shows the failure mode holding and no call hanging.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import time
from collections.abc import Iterator

import aiohttp
import grpc.aio
import pytest

from tests.support.governance import Tally, grpc_caller, ideal_admitted, open_loop, start_governed_model
from tests.support.procs import HOST, Proc, http_get, running, start_sidecar
from tests.support.redis import running_redis

pytestmark = pytest.mark.integration

RATE, BURST, OFFERED, SECONDS = 300, 30, 1000, 10.0
EXPECTED = RATE * SECONDS + BURST

LOCAL = f"""
version: limits-local
rate_limits: {{default: {{rate: {RATE}, burst: {BURST}}}}}
"""


@pytest.fixture(scope="module")
def model() -> Iterator[Proc]:
    with running(start_governed_model()) as proc:
        yield proc


def rest_caller(session: aiohttp.ClientSession, port: int, client: str):
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    url = f"http://{HOST}:{port}/v2/models/digits/infer"

    async def call() -> str:
        async with session.post(url, json=body, headers={"x-client-id": client}) as r:
            await r.read()
            if r.status == 429:
                assert r.headers.get("Retry-After", "").isdigit()
            return "OK" if r.status == 200 else str(r.status)

    return call


@pytest.fixture(scope="module")
def local_sidecars(model: Proc, tmp_path_factory) -> Iterator[dict[str, Proc]]:
    policy = tmp_path_factory.mktemp("limits") / "policy.yaml"
    policy.write_text(LOCAL)
    flags = ("--policy-file", str(policy), "--access-log", "on")
    with (
        running(start_sidecar(model.ports["grpc"], "--dataplane", "relay", *flags)) as relay,
        running(start_sidecar(model.ports["grpc"], "--dataplane", "grpcio", *flags)) as grpcio,
    ):
        yield {"relay": relay, "grpcio": grpcio}


def arrivals(sidecar: Proc, client: str, since: float) -> list[tuple[float, str]]:
    """(arrival wall time, code) of each ingress call of `client` the sidecar logged after `since`."""
    out = []
    for text in sidecar.log().splitlines():
        if not text.startswith("{"):
            continue
        entry = json.loads(text)
        if entry.get("client_id") != client or entry.get("direction") != "ingress":
            continue
        at = datetime.datetime.fromisoformat(entry["time"]).timestamp()
        if at >= since:
            out.append((at, entry["code"]))
    return sorted(out)


def _check(what: str, tally: Tally, logged: list[tuple[float, str]]) -> str:
    """Assert the limiter's accuracy; "" if the load was steady enough to judge 3000 + burst too."""
    overload = {c: n for c, n in tally.codes.items() if c not in ("OK", "RESOURCE_EXHAUSTED", "429")}
    if overload:
        # The grpcio plane serves about 1000 calls/s on this machine when it is quiet (see
        # docs/benchmarks.md); on a busy one some calls time out or are cancelled before any
        # filter saw them. Not the limiter's doing: the window is run again.
        return f"{what}: calls failed before the limit ({overload})"
    admitted = tally.codes.get("OK", 0)
    served = sum(1 for _, code in logged if code == "OK")
    assert abs(served - admitted) <= 0.01 * admitted, (
        f"{what}: the log has {served} admitted, the client {admitted}"
    )
    ideal = ideal_admitted([at for at, _ in logged], RATE, BURST)
    assert abs(admitted - ideal) <= 0.05 * ideal, f"{what}: {admitted} admitted, a perfect bucket {ideal}"
    print(f"{what}: {admitted} admitted of {tally.sent}; a perfect bucket {ideal} of the same arrivals")
    if abs(ideal - EXPECTED) <= 0.05 * EXPECTED and abs(admitted - EXPECTED) <= 0.05 * EXPECTED:
        return ""
    return f"{what}: arrivals not steady ({ideal} for a perfect bucket, {admitted} admitted, not ~{EXPECTED})"


ATTEMPTS = 3


# One plane at a time: on two cores, three clients at 1000/s beside the sidecars and the model
# starve each other, and a client that stalls for longer than burst/rate (100 ms) offers less
# than the limit for that time, which no token bucket can make up.
@pytest.mark.parametrize("plane", ["relay", "grpcio"])
async def test_local_limit_is_accurate_on_grpc(local_sidecars: dict[str, Proc], plane: str):
    sidecar = local_sidecars[plane]
    misses = []
    async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
        for attempt in range(ATTEMPTS):
            client = f"{plane}-{attempt}"
            since = time.time()
            tally = await open_loop(OFFERED, SECONDS, grpc_caller(ch, (("x-client-id", client),)))
            miss = _check(plane, tally, await _logged(sidecar, client, since, tally.sent))
            if not miss:
                break
            misses.append(miss)
        else:
            raise AssertionError("; ".join(misses))
    # Counted by client class (the only client label): every refusal of this run is in it.
    limited = (
        'ai_sidecar_governance_decisions_total{client_class="default",decision="limited",filter="rate_limit"}'
    )
    metrics = http_get(sidecar.ports["http"], "/metrics")[1].decode().splitlines()
    line = next(m for m in metrics if m.startswith(limited))
    assert float(line.rsplit(" ", 1)[1]) >= tally.codes["RESOURCE_EXHAUSTED"]


async def test_local_limit_is_accurate_on_rest(local_sidecars: dict[str, Proc]):
    sidecar = local_sidecars["relay"]
    misses = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
        for attempt in range(ATTEMPTS):
            client = f"rest-{attempt}"
            since = time.time()
            tally = await open_loop(OFFERED, SECONDS, rest_caller(session, sidecar.ports["http"], client))
            miss = _check("rest", tally, await _logged(sidecar, client, since, tally.sent))
            if not miss:
                return
            misses.append(miss)
    raise AssertionError("; ".join(misses))


async def _logged(sidecar: Proc, client: str, since: float, sent: int) -> list[tuple[float, str]]:
    """The client's calls in the sidecar's access log, once all of them are written."""
    for _ in range(100):
        logged = arrivals(sidecar, client, since)
        if len(logged) >= sent:
            return logged
        await asyncio.sleep(0.1)
    return logged


def _global(failure_mode: str) -> str:
    return f"""
version: limits-global-{failure_mode}
rate_limits: {{mode: global, failure_mode: {failure_mode}, default: {{rate: {RATE}, burst: {BURST}}}}}
"""


async def test_three_sidecars_share_one_redis_limit(model: Proc, tmp_path: pathlib.Path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(_global("open"))
    misses = []
    with running_redis() as redis:
        flags = (
            "--policy-file", str(policy), "--redis-address", redis.address, "--redis-timeout", "50ms",
            "--access-log", "on",
        )  # fmt: skip
        sidecars = [
            start_sidecar(model.ports["grpc"], "--dataplane", dp, *flags)
            for dp in ("relay", "grpcio", "relay")
        ]
        try:
            channels = [grpc.aio.insecure_channel(f"{HOST}:{s.ports['grpc']}") for s in sidecars]
            for attempt in range(ATTEMPTS):
                # One client, spread over three replicas: the limit is the client's, across all of them.
                client = f"shared-{attempt}"
                since = time.time()
                tallies = await asyncio.gather(
                    *(
                        open_loop(OFFERED / 3, SECONDS, grpc_caller(ch, (("x-client-id", client),)))
                        for ch in channels
                    )
                )
                logged: list[tuple[float, str]] = []
                for s, t in zip(sidecars, tallies, strict=True):
                    logged += await _logged(s, client, since, t.sent)
                total = Tally(codes={}, sent=sum(t.sent for t in tallies))
                for t in tallies:
                    for code, n in t.codes.items():
                        total.codes[code] = total.codes.get(code, 0) + n
                miss = _check("three sidecars", total, sorted(logged))
                if not miss:
                    break
                misses.append(miss)
            else:
                raise AssertionError("; ".join(misses))
            for ch in channels:
                await ch.close()
        finally:
            for s in sidecars:
                s.stop()


@pytest.mark.parametrize("failure_mode", ["open", "closed"])
async def test_redis_killed_mid_run_keeps_the_failure_mode_and_no_call_hangs(
    model: Proc, tmp_path: pathlib.Path, failure_mode: str
):
    policy = tmp_path / "policy.yaml"
    policy.write_text(_global(failure_mode))
    with running_redis() as redis:
        flags = ("--policy-file", str(policy), "--redis-address", redis.address, "--redis-timeout", "20ms")
        with running(start_sidecar(model.ports["grpc"], "--dataplane", "relay", *flags)) as sidecar:
            async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
                call = grpc_caller(ch, (("x-client-id", "k"),), timeout=2.0)
                before = await open_loop(200, 1.5, call)
                redis.kill()
                await asyncio.sleep(0.2)
                after = await open_loop(200, 1.5, call)
    assert before.codes.get("OK", 0) >= 0.9 * before.sent, before.codes  # under the limit: nearly all pass
    assert set(after.codes) == {"OK" if failure_mode == "open" else "RESOURCE_EXHAUSTED"}, after.codes
    slowest = max(max(v) for v in after.latencies.values())
    assert slowest < 0.5, f"a call took {slowest:.3f} s with Redis down"
