"""Where the relay's CPU goes: the relay data plane in this process, under open-loop load, profiled.

Starts the digits model, then runs in this process (uvloop, as the sidecar does) first the plain
TCP relay (bench/tcp_relay.py, the floor), then the relay data plane with the sidecar's default
filters (metrics, readiness). Each serves the Go load generator for a fixed window, measured
without a profiler (CPU microseconds per call, this process only); then the relay serves once
more under cProfile with a CPU clock, and its time is split by where it was spent. Profiling
inflates small Python functions, so the shares are indicative; the unprofiled figures are not.

    python bench/relay_profile.py                 # 500 calls/s, 5 s windows, 3 repeats
    python bench/relay_profile.py --rate 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pathlib
import pstats
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "examples" / "python"))

import ingress  # noqa: E402
import loadgen_run  # noqa: E402
import tcp_relay  # noqa: E402
import uvloop  # noqa: E402

from local_stack import HOST, running, start_model  # noqa: E402
from sidecar.filters.chain import Filter  # noqa: E402
from sidecar.filters.metrics import MetricsFilter  # noqa: E402
from sidecar.filters.readiness import ReadinessGate  # noqa: E402
from sidecar.h2 import build  # noqa: E402
from sidecar.health.readiness import Readiness  # noqa: E402
from sidecar.ingress.relay.listener import RelayDataplane  # noqa: E402
from sidecar.oip import contract  # noqa: E402
from sidecar.telemetry.names import BoundedNames, MethodLabels  # noqa: E402
from sidecar.telemetry.prometheus import SidecarMetrics  # noqa: E402

# Where a function's own time is counted, by the file it is in (first match wins).
GROUPS = (
    (
        "HTTP/2 frames: scan, forward, flow (h2/reader, streams, outbox, frames; relay/connection, sockets)",
        (
            "h2/reader.py",
            "h2/streams.py",
            "h2/outbox.py",
            "h2/frames.py",
            "h2/limits.py",
            "relay/connection.py",
            "relay/sockets.py",
        ),
    ),
    ("HPACK (h2/hpack_decoder.py, h2/hpack_encoder.py)", ("h2/hpack_decoder.py", "h2/hpack_encoder.py")),
    (
        "gRPC headers and messages: path, metadata, deadline, status, message bytes"
        " (h2/grpc_headers, h2/messages)",
        ("h2/grpc_headers.py", "h2/messages.py"),
    ),
    ("the call layer (relay/calls.py)", ("relay/calls.py",)),
    ("filter chain and filters (filters/, core/)", ("sidecar/filters/", "sidecar/core/")),
    ("Prometheus client (telemetry/, prometheus_client)", ("sidecar/telemetry/", "prometheus_client")),
    ("built-ins called from Python (len, dict, bytes, int.from_bytes, ...)", ("~:",)),
    ("asyncio", ("asyncio",)),
)


async def _load(port: int, payload: pathlib.Path, rate: float, seconds: float, seed: int) -> int:
    spec = loadgen_run.LoadSpec(
        address=f"{HOST}:{port}", payload=payload, warmup_s=0.5, duration_s=seconds, rate=rate, seed=seed
    )
    proc = await asyncio.create_subprocess_exec(
        str(loadgen_run.build()),
        *spec.args(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    report = json.loads(out)
    if report["errors"]:
        raise RuntimeError(f"load generator saw errors: {report['errors']}")
    return int(report["ok"])


async def _cpu_per_call(serve: int, payload: pathlib.Path, opts: argparse.Namespace, seed: int) -> float:
    started = time.process_time()
    calls = await _load(serve, payload, opts.rate, opts.duration, seed)
    return (time.process_time() - started) / calls * 1e6


def _relay(model_port: int) -> RelayDataplane:
    readiness = Readiness(1, 1)
    readiness.record(True)
    metrics = SidecarMetrics(MethodLabels(contract.METHODS, limit=100), BoundedNames((), limit=100))
    filters: list[Filter] = [MetricsFilter(metrics, direction="ingress"), ReadinessGate(readiness)]
    return RelayDataplane(
        host=HOST, port=0, model_address=f"{HOST}:{model_port}", filters=filters, readiness=readiness
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def main(opts: argparse.Namespace, model_port: int, payload: pathlib.Path) -> None:
    results: dict[str, list[float]] = {"tcp relay (floor)": [], "relay, default filters": []}
    port = _free_port()
    server = asyncio.create_task(tcp_relay.serve(port, (HOST, model_port)))
    await asyncio.sleep(0.2)
    relay = _relay(model_port)
    await relay.start()
    runs: list[tuple[str, Callable[[int], Awaitable[float]]]] = [
        ("tcp relay (floor)", lambda seed: _cpu_per_call(port, payload, opts, seed)),
        ("relay, default filters", lambda seed: _cpu_per_call(relay.port, payload, opts, seed)),
    ]
    for r in range(opts.repeat):
        for name, run in runs if r % 2 == 0 else runs[::-1]:  # alternate, so drift hits both alike
            results[name].append(await run(r + 1))
    server.cancel()
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    calls = await _load(relay.port, payload, opts.rate, opts.duration, 99)
    profile.disable()
    await relay.stop(1.0)

    print(
        f"CPU per call of this process, {opts.rate:g} calls/s, {opts.duration:g} s windows, "
        f"{opts.repeat} runs each (median, runs):\n"
    )
    print("| path | µs/call | runs |\n| --- | --: | --- |")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    floor, relay_cpu = (statistics.median(v) for v in results.values())
    print(f"\nrelay / floor: {relay_cpu / floor:.2f}x\n")
    stats = pstats.Stats(profile)
    own: dict[str, float] = {}
    total = 0.0
    for (path, _, func), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        where = f"{path}:{func}"
        group = next((g for g, needles in GROUPS if any(n in where for n in needles)), "other Python")
        own[group] = own.get(group, 0.0) + tottime
    python_calls = sum(n for (path, _, _), (_, n, _, _, _) in stats.stats.items() if path != "~")  # type: ignore[attr-defined]
    builtin_calls = sum(n for (path, _, _), (_, n, _, _, _) in stats.stats.items() if path == "~")  # type: ignore[attr-defined]
    print(f"Wire machinery: {build.describe()}")
    print(
        f"Per relayed call: {python_calls / calls:.0f} Python function calls and"
        f" {builtin_calls / calls:.0f} calls of built-ins (compiled twins' functions count as built-ins).\n"
    )
    print(f"Profiled run ({calls} calls, cProfile on a CPU clock; shares of the profiled time):\n")
    print("| where | share |\n| --- | --: |")
    for group, seconds in sorted(own.items(), key=lambda kv: -kv[1]):
        print(f"| {group} | {seconds / total * 100:.0f} % |")
    print("\nThe ten functions with the most own time:\n")
    print("| function | calls per call | share |\n| --- | --: | --: |")
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:10]  # type: ignore[attr-defined]
    for (path, line, func), (_, ncalls, tottime, _, _) in top:
        name = f"{pathlib.Path(path).name}:{line} {func}" if path != "~" else func
        print(f"| `{name}` | {ncalls / calls:.1f} | {tottime / total * 100:.1f} % |")


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--repeat", type=int, default=3)
    opts = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running(start_model()) as model:
        payload = pathlib.Path(tmp) / "request.bin"
        payload.write_bytes(ingress.payload())
        uvloop.run(main(opts, model.ports["grpc"], payload))


if __name__ == "__main__":
    cli()
