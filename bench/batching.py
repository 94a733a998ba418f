"""What dynamic batching gives a model that does not batch: the fixed-cost digits model (one call at a
time, each at least --floor-ms) behind a sidecar without batching and one with it.

Per repeat, with the Go open-loop generator (bench/loadgen) sending one-row ModelInfer calls:

1. **capacity**: closed loop, 32 workers, through the sidecar without batching: the model's
   unbatched capacity C (about 1000 / floor calls/s);
2. **overload**: open loop at --overload x C (8 by default) through the batching sidecar: its
   throughput, and that over C (the issue asks for at least 5);
3. **light load**: open loop at --light-rate calls/s through each sidecar: p50 and p99, and what
   batching adds to p50 (the issue asks for at most max_latency + 1 ms).

Tables of the medians over repeats; every run's numbers in bench/results/batching-<time>.json.

    python bench/batching.py                         # floor 10 ms, 3 repeats (about 3 minutes)
    python bench/batching.py --floor-ms 5 --repeat 1

Both sidecars run the grpcio data plane, or the relay with --dataplane relay:

    python bench/batching.py --dataplane relay
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "examples" / "python"))
sys.path.insert(0, str(REPO))

import loadgen_run  # noqa: E402
import yaml  # noqa: E402

from inference import grpc_service_pb2 as pb  # noqa: E402
from local_stack import HOST, Proc, running, start_model, start_sidecar  # noqa: E402

RESULTS = BENCH / "results"


def _payload(directory: pathlib.Path) -> pathlib.Path:
    """One digit's row: what a caller of a model that does not batch sends."""
    path = directory / "request.bin"
    path.write_bytes(
        pb.ModelInferRequest(
            model_name="digits",
            inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[1, 64])],
            raw_input_contents=[bytes(64 * 4)],
        ).SerializeToString()
    )
    return path


def _run(binary: pathlib.Path, spec: loadgen_run.LoadSpec, sidecar: Proc, model: Proc) -> dict[str, Any]:
    result = loadgen_run.run(binary, spec, {"sidecar": sidecar.pid, "model": model.pid})
    r = result.report
    ok = max(int(r["ok_in_window"]), 1)
    return {
        "rate": spec.rate,
        "workers": spec.saturate_workers,
        "achieved_rps": r["achieved_rps"],
        "p50_ms": r["p50_ms"],
        "p99_ms": r["p99_ms"],
        "errors": r["errors"],
        "skipped": r["skipped"],
        "sidecar_cpu_us_per_call": result.usage["sidecar"].cpu_s / ok * 1e6,
        "model_cpu_us_per_call": result.usage["model"].cpu_s / ok * 1e6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--floor-ms", type=float, default=10.0, help="the model's per-call floor [10]")
    p.add_argument("--overload", type=float, default=8.0, help="offered load over the capacity [8]")
    p.add_argument("--light-rate", type=float, default=20.0, help="light load, calls/s [20]")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-latency-ms", type=float, default=5.0)
    p.add_argument("--duration", type=float, default=10.0, help="measured window, s [10]")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured load before it, s [2]")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dataplane", choices=("grpcio", "relay"), default="grpcio", help="gRPC plane [grpcio]")
    args = p.parse_args()

    binary = loadgen_run.build()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = pathlib.Path(tmp_name)
        payload = _payload(tmp)
        policy = tmp / "policy.yaml"
        rule = {
            "model": "digits",
            "max_batch_size": args.max_batch_size,
            "max_latency": f"{args.max_latency_ms}ms",
        }
        policy.write_text(yaml.safe_dump({"batching": [rule]}))
        model = start_model("--fixed-cost-ms", str(args.floor_ms))
        with running(model):
            plain = start_sidecar(model.ports["grpc"], "--model", "digits", "--dataplane", args.dataplane)
            batching = start_sidecar(
                model.ports["grpc"], "--model", "digits", "--dataplane", args.dataplane,
                "--inference-policy-file", str(policy),
            )  # fmt: skip
            with running(plain), running(batching):

                def spec(target: Proc, **kw: Any) -> loadgen_run.LoadSpec:
                    return loadgen_run.LoadSpec(
                        address=f"{HOST}:{target.ports['grpc']}", payload=payload,
                        warmup_s=args.warmup, duration_s=args.duration, **kw,
                    )  # fmt: skip

                for repeat in range(args.repeat):
                    capacity = _run(binary, spec(plain, saturate_workers=32), plain, model)
                    rate = round(args.overload * capacity["achieved_rps"])
                    time.sleep(1)
                    overload = _run(binary, spec(batching, rate=rate, seed=repeat + 1), batching, model)
                    time.sleep(1)
                    light = {
                        name: _run(binary, spec(target, rate=args.light_rate, seed=repeat + 1), target, model)
                        for name, target in (("unbatched", plain), ("batching", batching))
                    }
                    run = {"repeat": repeat, "capacity": capacity, "overload": overload, "light": light}
                    runs.append(run)
                    c, o = capacity["achieved_rps"], overload["achieved_rps"]
                    was, now = light["unbatched"]["p50_ms"], light["batching"]["p50_ms"]
                    print(
                        f"repeat {repeat}: capacity {c:.0f}/s; at {rate}/s batching gives {o:.0f}/s"
                        f" ({o / c:.1f}x), p50 at light load {was:.2f} -> {now:.2f} ms",
                        file=sys.stderr,
                    )
                    time.sleep(1)

    def med(get: Any) -> float:
        return float(statistics.median(get(r) for r in runs))

    cap = med(lambda r: r["capacity"]["achieved_rps"])
    got = med(lambda r: r["overload"]["achieved_rps"])
    ratio = med(lambda r: r["overload"]["achieved_rps"] / r["capacity"]["achieved_rps"])
    lines = [
        f"{args.dataplane} sidecars; fixed-cost model: floor {args.floor_ms:g} ms, one call at a time;"
        f" batching max_batch_size {args.max_batch_size}, max_latency {args.max_latency_ms:g} ms;"
        f" medians of {len(runs)} repeats.",
        "",
        "| run | offered | achieved/s | x unbatched capacity | p50 ms | p99 ms | errors + skipped"
        " | sidecar CPU µs/call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| unbatched capacity (32 workers, closed loop) | - | {cap:.0f} | 1.0 |"
        f" {med(lambda r: r['capacity']['p50_ms']):.1f} | {med(lambda r: r['capacity']['p99_ms']):.1f} |"
        f" {sum(sum(r['capacity']['errors'].values()) + r['capacity']['skipped'] for r in runs)} |"
        f" {med(lambda r: r['capacity']['sidecar_cpu_us_per_call']):.0f} |",
        f"| batching at {args.overload:g}x capacity (open loop) |"
        f" {med(lambda r: r['overload']['rate']):.0f}/s |"
        f" {got:.0f} | {ratio:.1f} | {med(lambda r: r['overload']['p50_ms']):.1f} |"
        f" {med(lambda r: r['overload']['p99_ms']):.1f} |"
        f" {sum(sum(r['overload']['errors'].values()) + r['overload']['skipped'] for r in runs)} |"
        f" {med(lambda r: r['overload']['sidecar_cpu_us_per_call']):.0f} |",
    ]
    for name in ("unbatched", "batching"):
        lines.append(
            f"| {name}, light load (open loop) | {args.light_rate:g}/s |"
            f" {med(lambda r, n=name: r['light'][n]['achieved_rps']):.0f} | - |"
            f" {med(lambda r, n=name: r['light'][n]['p50_ms']):.2f} |"
            f" {med(lambda r, n=name: r['light'][n]['p99_ms']):.2f} |"
            f" {sum(sum(r['light'][name]['errors'].values()) + r['light'][name]['skipped'] for r in runs)}"
            " |"
            f" {med(lambda r, n=name: r['light'][n]['sidecar_cpu_us_per_call']):.0f} |"
        )
    added = med(lambda r: r["light"]["batching"]["p50_ms"] - r["light"]["unbatched"]["p50_ms"])
    lines += [
        "",
        f"Added p50 at light load: {added:.2f} ms (max_latency + 1 ms = {args.max_latency_ms + 1:g} ms).",
    ]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"batching-{stamp}.json"
    out.write_text(json.dumps({"options": vars(args), "runs": runs, "table": lines}, indent=2))
    print(f"\n(all runs: {out.relative_to(REPO)})", file=sys.stderr)


if __name__ == "__main__":
    main()
