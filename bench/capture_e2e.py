"""What payload capture costs a real sidecar per call, its sinks' I/O included: the sidecar's CPU per call
under open-loop load, without capture and with it at ratio 0.01 and 1, to an HTTP collector and to
Kafka, in one run.

Every target is a sidecar (the grpcio plane, or the relay with --dataplane relay) in front of one
digits model; the collector (the CloudEvents SDK behind aiohttp, in this process) and a KRaft Kafka
broker (scripts/setup-kafka.sh) run beside them.
Each repeat runs every target at --rate calls/s for --duration s (after --warmup s) with the Go
generator, in an order rotated per repeat; the sidecar's CPU over the window ÷ calls answered in it
is its CPU per call, and the difference from `off` is what capture adds. Medians of repeats.

    python bench/capture_e2e.py                  # 300 calls/s, 10 s, 3 repeats (about 3 minutes)
    python bench/capture_e2e.py --repeat 1 --duration 5
    python bench/capture_e2e.py --dataplane relay

bench/capture_cost.py measures the same paths in-process, precisely, without the I/O.
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

from local_stack import HOST, Proc, running, start_model, start_sidecar  # noqa: E402
from tests.support.event_sink import EventCollector  # noqa: E402
from tests.support.kafka import kafka_broker  # noqa: E402
from tests.support.openloop import digits_request  # noqa: E402

RESULTS = BENCH / "results"
TARGETS = ("off", "ratio 0.01, http", "ratio 1, http", "ratio 1, kafka")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=300.0, help="open-loop calls/s [300]")
    p.add_argument("--duration", type=float, default=10.0, help="measured window, s [10]")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured load before it, s [2]")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dataplane", choices=("grpcio", "relay"), default="grpcio", help="gRPC plane [grpcio]")
    args = p.parse_args()

    binary = loadgen_run.build()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name, EventCollector() as collector, kafka_broker() as kafka:
        tmp = pathlib.Path(tmp_name)
        payload = tmp / "request.bin"
        payload.write_bytes(digits_request(4))  # bench/ingress.py's request: 1,055 bytes
        sinks = {
            "http": {"http": {"url": collector.url}},
            "kafka": {"kafka": {"bootstrap_servers": kafka.bootstrap, "topic": "bench"}},
        }
        model = start_model()
        with running(model):
            sidecars: dict[str, Proc] = {}
            try:
                for name in TARGETS:
                    flags = ["--model", "digits", "--dataplane", args.dataplane]
                    if name != "off":
                        ratio, sink = name.removeprefix("ratio ").split(", ")
                        policy = tmp / f"{sink}-{ratio}.yaml"
                        capture = {"sinks": [sinks[sink]], "rules": [{"model": "*", "ratio": float(ratio)}]}
                        policy.write_text(yaml.safe_dump({"capture": capture}))
                        flags += ["--inference-policy-file", str(policy)]
                    sidecars[name] = start_sidecar(model.ports["grpc"], *flags)
                for repeat in range(args.repeat):
                    order = TARGETS[repeat % len(TARGETS) :] + TARGETS[: repeat % len(TARGETS)]
                    for name in order:
                        sidecar = sidecars[name]
                        spec = loadgen_run.LoadSpec(
                            address=f"{HOST}:{sidecar.ports['grpc']}", payload=payload, warmup_s=args.warmup,
                            duration_s=args.duration, rate=args.rate, seed=repeat + 1,
                        )  # fmt: skip
                        result = loadgen_run.run(binary, spec, {"sidecar": sidecar.pid})
                        ok = max(int(result.report["ok_in_window"]), 1)
                        run = {
                            "repeat": repeat,
                            "target": name,
                            "achieved_rps": result.report["achieved_rps"],
                            "p50_ms": result.report["p50_ms"],
                            "p99_ms": result.report["p99_ms"],
                            "errors": result.report["errors"],
                            "cpu_us_per_call": result.usage["sidecar"].cpu_s / ok * 1e6,
                            "rss_peak_mib": result.usage["sidecar"].rss_peak_bytes / 2**20,
                            "others": max(0.0, result.machine_busy_s - result.usage["sidecar"].cpu_s)
                            / result.window_s,
                        }
                        runs.append(run)
                        cpu, p50 = run["cpu_us_per_call"], run["p50_ms"]
                        print(f"repeat {repeat} {name}: {cpu:.1f} µs/call, p50 {p50:.2f} ms", file=sys.stderr)
                        time.sleep(1)
            finally:
                for s in sidecars.values():
                    s.stop()

    def med(target: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs if r["target"] == target))

    base = med("off", "cpu_us_per_call")
    lines = [
        f"{args.dataplane} sidecar, {args.rate:g} calls/s open loop, {args.duration:g} s windows, medians of"
        f" {args.repeat} repeats; capture of every model's ModelInfer, request and response.",
        "",
        "| capture | sidecar CPU µs/call | added µs/call | p50 ms | p99 ms | RSS peak MiB | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in TARGETS:
        cpu = med(name, "cpu_us_per_call")
        errors = sum(sum(r["errors"].values()) for r in runs if r["target"] == name)
        lines.append(
            f"| {name} | {cpu:.1f} | {cpu - base:+.1f} | {med(name, 'p50_ms'):.2f} |"
            f" {med(name, 'p99_ms'):.2f} | {med(name, 'rss_peak_mib'):.1f} | {errors} |"
        )
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"capture-{stamp}.json"
    out.write_text(json.dumps({"options": vars(args), "runs": runs, "table": lines}, indent=2))
    print(f"\n(all runs: {out.relative_to(REPO)})", file=sys.stderr)


if __name__ == "__main__":
    main()
