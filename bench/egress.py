"""Egress benchmark: the cost of picking an instance at 10, 1,000 and 10,000 instances, and calls by name
through each gRPC egress plane (open loop, Poisson arrivals) against calling the instance directly.

    python bench/egress.py [--rate 200] [--seconds 10] [--repeat 3] [--recovery-only | --end-to-end-only]

Pick cost is measured in-process (the route's pick, breaker permit included), so it shows that the
request path does not scan instances. The end-to-end part is bench/ingress.py's method: the Go
open-loop generator (bench/loadgen) at a fixed rate, p50/p99 from each call's scheduled send time,
CPU per call from /proc. One digits instance behind its sidecar (the relay) is called directly and by
name through two client sidecars' egress, the stream-level proxy (by :authority) and the grpc.aio
plane (by x-sidecar-target), interleaved, repeated. A call by name also crosses the instance's relay,
so each run gives the egress's CPU per call and the ingress relay's on the same calls, and the ratio.

The recovery part makes one of the three instances 50 ms slower for 10 s under load (its model
restarted with --latency-ms 50), then healthy again, and reports the share of calls the peak-EWMA
balancer sends it in each 5 s window after it recovered: the time-decayed estimate lets power of
two choices probe it again once it has been idle long enough (tau * ln(peak / baseline)).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import random
import statistics
import sys
import tempfile
import time
import timeit
from typing import Any

import grpc
import grpc.aio

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "examples" / "python"), str(REPO / "bench")]

import loadgen_run  # noqa: E402

from local_stack import HOST, start_model, start_sidecar  # noqa: E402
from sidecar.core.clock import monotonic  # noqa: E402
from sidecar.discovery.endpoint import Endpoint  # noqa: E402
from sidecar.egress.policy import ServicePolicy  # noqa: E402
from sidecar.egress.route import Route  # noqa: E402

SERVICE = "digits-svc"
METHOD = "/inference.GRPCInferenceService/ModelInfer"


def pick_cost(n: int, balancer: str, picks: int = 100_000) -> float:
    """Nanoseconds per pick of a route with n instances whose load statistics are warm."""
    route = Route("S", ServicePolicy(balancer=balancer), monotonic, random.Random(1), zone="")
    endpoints = tuple(
        Endpoint(app="S", instance_id=f"i{k}", host="10.0.0.1", http_port=8080, grpc_port=k + 1,
                 weight=1 + k % 3)
        for k in range(n)
    )
    route.update(endpoints)
    rng = random.Random(2)
    for stats in route.stats.values():
        stats.observe(rng.uniform(0.005, 0.050))
    empty: frozenset[str] = frozenset()

    def pick() -> None:
        _, breaker = route.pick(empty)
        assert breaker is not None
        breaker.release()

    best = min(timeit.repeat(pick, number=picks, repeat=5))
    return best / picks * 1e9


async def open_loop(port: int, rate: float, seconds: float, metadata: tuple[tuple[str, str], ...]
                    ) -> dict[str, Any]:
    payload = _payload()
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as ch:
        mc = ch.unary_unary(METHOD)

        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                await mc(payload, metadata=metadata, timeout=5)
                latencies.append(time.perf_counter() - scheduled)
            except grpc.aio.AioRpcError:
                errors += 1

        tasks = []
        start = time.perf_counter()
        at = start
        while at - start < seconds:
            at += rng.expovariate(rate)
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(at)))
        await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "sent": len(tasks),
        "errors": errors,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def _payload() -> bytes:
    from inference import grpc_service_pb2 as pb

    x = bytes(4 * 4 * 64)  # 4 images of 64 float32 zeros: 1 KiB
    return pb.ModelInferRequest(
        model_name="digits",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[4, 64])],
        raw_input_contents=[x],
    ).SerializeToString()


def end_to_end(rate: float, seconds: float, repeat: int) -> list[dict[str, Any]]:
    """Open-loop load (bench/loadgen, as bench/ingress.py) at one digits instance behind its sidecar:
    direct to that sidecar, and by name through a client sidecar's egress on each plane. Every call
    by name also crosses the instance's ingress relay, so each run measures both CPUs per call on the
    same calls: the egress's, and the ingress relay's."""
    binary = loadgen_run.build()
    model = start_model()
    instance = start_sidecar(model.ports["grpc"], "--dataplane", "relay", app_name=SERVICE)
    registry = pathlib.Path(tempfile.mkstemp(suffix=".yaml")[1])
    registry.write_text(json.dumps({"apps": {SERVICE: [
        {"host": HOST, "grpc_port": instance.ports["grpc"], "http_port": instance.ports["http"]}
    ]}}))
    payload = pathlib.Path(tempfile.mkstemp(suffix=".bin")[1])
    payload.write_bytes(_payload())
    own = start_model()
    clients = {
        plane: start_sidecar(own.ports["grpc"], "--registry-file", str(registry), "--egress-dataplane", plane,
                             app_name=f"client-{plane}")
        for plane in ("proxy", "grpcio")
    }  # fmt: skip
    targets = [
        ("direct", f"{HOST}:{instance.ports['grpc']}", "", (), None),
        ("egress proxy, by :authority", f"{HOST}:{clients['proxy'].ports['egress_grpc']}", SERVICE, (),
         clients["proxy"]),
        ("egress grpcio, by x-sidecar-target", f"{HOST}:{clients['grpcio'].ports['egress_grpc']}", "",
         (("x-sidecar-target", SERVICE),), clients["grpcio"]),
    ]  # fmt: skip
    rows = []
    try:
        for r in range(repeat):
            for name, address, authority, headers, client in targets:
                spec = loadgen_run.LoadSpec(
                    address=address, payload=payload, warmup_s=2.0, duration_s=seconds, rate=rate, seed=r + 1,
                    headers=headers, authority=authority,
                )  # fmt: skip
                watch = {"instance": instance.pid, **({"egress": client.pid} if client is not None else {})}
                got = loadgen_run.run(binary, spec, watch)
                rep = got.report
                ok = max(1, int(rep["ok_in_window"]))
                row: dict[str, Any] = {
                    "path": name, "p50_ms": rep["p50_ms"], "p99_ms": rep["p99_ms"], "sent": rep["sent"],
                    "errors": sum(rep["errors"].values()) + rep["skipped"],
                    "ingress_cpu_us_per_call": 1e6 * got.usage["instance"].cpu_s / ok,
                }  # fmt: skip
                if client is not None:
                    row["egress_cpu_us_per_call"] = 1e6 * got.usage["egress"].cpu_s / ok
                    row["egress_rss_mib"] = got.usage["egress"].rss_peak_bytes / 2**20
                rows.append(row)
    finally:
        for proc in (*clients.values(), own, instance, model):
            proc.stop()
    return rows


def model_calls(port: int) -> int:
    """ModelInfer calls a digits model has answered (its ModelStatistics)."""
    from inference import grpc_service_pb2 as pb
    from inference import grpc_service_pb2_grpc as pb_grpc

    async def ask() -> int:
        async with grpc.aio.insecure_channel(f"{HOST}:{port}") as ch:
            stats = await pb_grpc.GRPCInferenceServiceStub(ch).ModelStatistics(
                pb.ModelStatisticsRequest(name="digits"))
            return sum(s.inference_stats.success.count + s.inference_stats.fail.count
                       for s in stats.model_stats)

    return asyncio.run(ask())


def recovery(rate: float, slow_seconds: float, windows: int, window: float) -> dict[str, Any]:
    """Share of calls a once-slow instance gets in each window after it recovered."""
    models = [start_model() for _ in range(3)]
    instances = [start_sidecar(m.ports["grpc"], app_name=SERVICE) for m in models]
    registry = pathlib.Path(tempfile.mkstemp(suffix=".yaml")[1])
    registry.write_text(json.dumps({"apps": {SERVICE: [
        {"host": HOST, "grpc_port": s.ports["grpc"], "http_port": s.ports["http"]} for s in instances
    ]}}))
    own = start_model()
    client = start_sidecar(own.ports["grpc"], "--registry-file", str(registry), app_name="client")
    md = (("x-sidecar-target", SERVICE),)
    port = client.ports["egress_grpc"]
    errors = 0

    def run(seconds: float) -> None:
        nonlocal errors
        errors += asyncio.run(open_loop(port, rate, seconds, md))["errors"]

    try:
        run(3.0)  # every instance observed
        slow_port = models[2].ports["grpc"]
        models[2].stop()
        models[2] = start_model("--latency-ms", "50", port=slow_port)
        run(slow_seconds)
        models[2].stop()
        models[2] = start_model(port=slow_port)  # recovered
        shares = []
        for _ in range(windows):
            # A restarted model counts from zero; the windows read differences of the same process.
            before = [model_calls(m.ports["grpc"]) for m in models]
            run(window)
            after = [model_calls(m.ports["grpc"]) for m in models]
            done = [a - b for a, b in zip(after, before, strict=True)]
            shares.append(done[2] / max(1, sum(done)))
    finally:
        for proc in (client, own, *instances, *models):
            proc.stop()
    return {"shares": shares, "window_s": window, "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recovery-only", action="store_true", help="only the recovered-instance share")
    parser.add_argument("--recovery-windows", type=int, default=12)
    parser.add_argument("--end-to-end-only", action="store_true", help="only the end-to-end table")
    args = parser.parse_args()
    if args.end_to_end_only:
        return print_end_to_end(args.rate, args.seconds, args.repeat)

    got = recovery(args.rate, slow_seconds=10.0, windows=args.recovery_windows, window=5.0)
    print(f"share of calls to an instance that was 50 ms slower for 10 s, per {got['window_s']:g} s"
          f" after it recovered (peak EWMA, {args.rate:g} RPS; a third is its fair share;"
          f" {got['errors']} errors):")
    print("| " + " | ".join(f"{int(i * got['window_s'])}-{int((i + 1) * got['window_s'])} s"
                            for i in range(len(got["shares"]))) + " |")
    print("|" + "---|" * len(got["shares"]))
    print("| " + " | ".join(f"{100 * x:.0f} %" for x in got["shares"]) + " |\n")
    if args.recovery_only:
        return 0

    print("| balancer | 10 instances | 1,000 | 10,000 |\n|---|---|---|---|")
    for balancer in ("peak_ewma", "least_request", "round_robin", "weighted"):
        costs = [pick_cost(n, balancer) for n in (10, 1000, 10_000)]
        print(f"| {balancer} | " + " | ".join(f"{c:.0f} ns" for c in costs) + " |")

    return print_end_to_end(args.rate, args.seconds, args.repeat)


def print_end_to_end(rate: float, seconds: float, repeat: int) -> int:
    rows = end_to_end(rate, seconds, repeat)
    print(json.dumps(rows), file=sys.stderr)
    print(f"\nend to end at {rate:g} RPS (open loop, Poisson), {seconds:g} s windows, medians of {repeat}:")
    print("| path | p50 ms | p99 ms | added p50 / p99 ms | egress CPU µs/call | instance's ingress relay CPU"
          " µs/call | egress / relay | egress RSS MiB | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    direct = [r for r in rows if r["path"] == "direct"]
    for path in dict.fromkeys(r["path"] for r in rows):
        mine = [r for r in rows if r["path"] == path]

        def med(key: str, mine: list[dict[str, Any]] = mine) -> float:
            values = [r[key] for r in mine if key in r]
            return float(statistics.median(values)) if values else float("nan")

        ratio = [r["egress_cpu_us_per_call"] / r["ingress_cpu_us_per_call"] for r in mine
                 if "egress_cpu_us_per_call" in r]  # fmt: skip
        added = "" if path == "direct" else (
            f"{med('p50_ms') - statistics.median(r['p50_ms'] for r in direct):+.2f} / "
            f"{med('p99_ms') - statistics.median(r['p99_ms'] for r in direct):+.2f}")
        print(f"| {path} | {med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {added} | "
              f"{med('egress_cpu_us_per_call'):.0f} | {med('ingress_cpu_us_per_call'):.0f} | "
              f"{statistics.median(ratio) if ratio else float('nan'):.2f} | {med('egress_rss_mib'):.0f} | "
              f"{sum(r['errors'] for r in mine)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
