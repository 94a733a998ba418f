"""What observability costs per request: tracing off/on, metrics on/off, access log, in CPU time.

Two measurements:

- **micro**: the filter chain alone, in this process, around a terminal that
  answers at once: the pure Python cost of each filter per call (median over
  repeats of N calls), with nothing else on the clock.
- **process**: a real sidecar per configuration in front of one digits model,
  loaded open-loop by bench/ingress.py's Go generator at a fixed rate; the
  sidecar's CPU time per call over the measured window, as bench/ingress.py
  measures it (bench/procstat.py), interleaved over repeats; the difference
  from the sidecar with everything off is the cost.

    python bench/observability.py                    # both, 400 calls/s, 10 s + 2 s, 3 repeats
    python bench/observability.py --micro-only
    python bench/observability.py --rate 200 --duration 3 --repeat 1   # smoke run

Prints markdown tables (stdout) and writes bench/results/observability-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "examples" / "python"))

import loadgen_run  # noqa: E402
from ingress import machine, payload, wait_quiet  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

from local_stack import HOST, Proc, running, start_model, start_sidecar  # noqa: E402
from sidecar.core.call import Call, Outcome  # noqa: E402
from sidecar.core.status import Code  # noqa: E402
from sidecar.filters.access_log import AccessLogFilter  # noqa: E402
from sidecar.filters.chain import Filter, build_chain  # noqa: E402
from sidecar.filters.metrics import MetricsFilter  # noqa: E402
from sidecar.filters.tracing import ClientSpan, ServerSpan  # noqa: E402
from sidecar.oip import contract  # noqa: E402
from sidecar.telemetry.access_log import AccessLog  # noqa: E402
from sidecar.telemetry.names import BoundedNames, MethodLabels  # noqa: E402
from sidecar.telemetry.prometheus import SidecarMetrics  # noqa: E402
from sidecar.telemetry.propagation import incoming_ids  # noqa: E402
from sidecar.telemetry.tracing import Tracing, TracingSettings  # noqa: E402

RESULTS = BENCH / "results"
MAX_OTHERS = 0.15  # share of a core other processes may use when a run starts (bench/ingress.py's)
INFER = "/inference.GRPCInferenceService/ModelInfer"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# The sidecar configurations of the process run; "off" has every observability part off.
CONFIGS: dict[str, tuple[str, ...]] = {
    "off": ("--metrics", "off"),
    "metrics": (),
    "tracing, unsampled": ("--metrics", "off", "--tracing", "on", "--trace-sample-ratio", "0"),
    "tracing, sampled": ("--metrics", "off", "--tracing", "on", "--trace-exporter", "file"),
    "access log": ("--metrics", "off", "--access-log", "on"),
    "all": ("--tracing", "on", "--trace-exporter", "file", "--access-log", "on"),
}


# -- micro: the chain in-process ----------------------------------------------------------------


class _NullSink(SpanExporter):
    """Takes finished spans and drops them: what export costs is measured in the process run.
    (An in-memory exporter would keep them all, and the garbage collector would pay for that.)"""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def _tracing(ratio: float) -> Tracing:
    settings = TracingSettings(
        service_name="bench", sample_ratio=ratio, propagation=("w3c",), exporter="memory"
    )
    return Tracing(settings, exporter=_NullSink())


def micro_chains() -> dict[str, tuple[Callable[[], list[Filter]], bool]]:
    """By name: how to build the filters, and whether the caller's traceparent says "sampled"."""

    def methods() -> MethodLabels:
        return MethodLabels(contract.METHODS)

    def metrics() -> list[Filter]:
        return [MetricsFilter(SidecarMetrics(methods(), BoundedNames()), direction="ingress")]

    def tracing(ratio: float) -> Callable[[], list[Filter]]:
        def build() -> list[Filter]:
            t, m = _tracing(ratio), methods()
            return [ServerSpan(t, m, direction="ingress"), ClientSpan(t, m, direction="ingress")]

        return build

    def access_log() -> list[Filter]:
        log = AccessLog(_Discard())  # type: ignore[arg-type]  # a sink that takes bytes
        return [AccessLogFilter(log, direction="ingress", trace_ids=lambda call: incoming_ids(call.metadata))]

    return {
        "nothing (the chain itself)": (list, True),
        "metrics": (metrics, True),
        "tracing, caller not sampled (spans not recorded)": (tracing(1.0), False),
        "tracing, sampled (spans recorded; export not counted)": (tracing(1.0), True),
        "access log (formatting on the writer thread counted)": (access_log, True),
        "all three, sampled": (lambda: [*metrics(), *tracing(1.0)(), *access_log()], True),
    }


async def _time_chain(filters: list[Filter], calls: int, sampled_caller: bool) -> float:
    async def terminal(call: Call) -> Outcome:
        return Outcome(Code.OK)

    chain = build_chain(filters, terminal)
    flags = "01" if sampled_caller else "00"
    metadata = [("traceparent", TRACEPARENT[:-2] + flags), ("x-client-id", "bench")]
    started = time.process_time()
    for _ in range(calls):
        call = Call(method=INFER, metadata=list(metadata), deadline=None, protocol="grpc", peer="ipv4:a:1")
        await chain(call)
    return (time.process_time() - started) / calls * 1e6


def run_micro(calls: int, repeat: int) -> dict[str, float]:
    builders = micro_chains()
    samples: dict[str, list[float]] = {name: [] for name in builders}

    async def all_runs() -> None:
        for _ in range(repeat):
            for name, (build, sampled) in builders.items():
                filters = build()
                for f in filters:  # the access log's writer thread, so the queue drains
                    log = getattr(f, "_log", None)
                    if isinstance(log, AccessLog):
                        log.start()
                await _time_chain(filters, calls // 10, sampled)  # warm-up
                samples[name].append(await _time_chain(filters, calls, sampled))
                for f in filters:
                    log = getattr(f, "_log", None)
                    if isinstance(log, AccessLog):
                        await log.stop()

    asyncio.run(all_runs())
    return {name: statistics.median(v) for name, v in samples.items()}


# -- process: real sidecars under load ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    rate: float
    duration_s: float
    warmup_s: float
    repeat: int
    micro_calls: int
    micro_only: bool
    out_dir: pathlib.Path


def run_process(opts: Options, payload_path: pathlib.Path, tmp: pathlib.Path) -> dict[str, Any]:
    binary = loadgen_run.build()
    per_call: dict[str, list[float]] = {name: [] for name in CONFIGS}
    others: dict[str, list[float]] = {name: [] for name in CONFIGS}
    errors: dict[str, int] = dict.fromkeys(CONFIGS, 0)
    with contextlib.ExitStack() as stack:
        model = stack.enter_context(running(start_model()))
        sidecars: dict[str, Proc] = {}
        for i, (name, flags) in enumerate(CONFIGS.items()):
            extra = ("--trace-file", str(tmp / f"spans-{i}.jsonl")) if "file" in flags else ()
            sidecars[name] = stack.enter_context(running(start_sidecar(model.ports["grpc"], *flags, *extra)))
        for proc in sidecars.values():  # prime: a fresh Python process is slow at first
            address = f"{HOST}:{proc.ports['grpc']}"
            spec = loadgen_run.LoadSpec(address, payload_path, 0.0, 2.0, rate=opts.rate)
            loadgen_run.run(binary, spec, {})
        names = list(CONFIGS)
        for r in range(opts.repeat):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                proc = sidecars[name]
                time.sleep(1.0)
                # The machine is shared: start when others leave it (mostly) alone, and record
                # how much they used anyway.
                wait_quiet(MAX_OTHERS, [model.pid, *(p.pid for p in sidecars.values())])
                spec = loadgen_run.LoadSpec(
                    f"{HOST}:{proc.ports['grpc']}",
                    payload_path,
                    opts.warmup_s,
                    opts.duration_s,
                    rate=opts.rate,
                    seed=1 + r,
                )
                result = loadgen_run.run(binary, spec, {"proxy": proc.pid, "model": model.pid})
                ok = int(result.report["ok_in_window"])
                report = result.report
                failed = sum(int(v) for v in (report.get("errors") or {}).values())
                errors[name] += failed + int(report["skipped"])
                us = result.usage["proxy"].cpu_s / ok * 1e6 if ok else float("nan")
                per_call[name].append(us)
                ours = sum(u.cpu_s for u in result.usage.values())
                other = max(0.0, result.machine_busy_s + result.steal_s - ours) / result.window_s
                others[name].append(other)
                print(
                    f"repeat {r + 1}/{opts.repeat} {name:20} {us:7.1f} µs/call ({ok} ok),"
                    f" others used {other * 100:.0f}% of a core",
                    file=sys.stderr,
                )
    return {
        "cpu_us_per_call": {name: statistics.median(v) for name, v in per_call.items()},
        "runs": per_call,
        "other_cpu_share": others,
        "errors": errors,
    }


def markdown(micro: dict[str, float], process: dict[str, Any] | None, opts: Options) -> str:
    base = micro["nothing (the chain itself)"]
    lines = [
        f"In-process filter chain, CPU µs per call (median of {opts.repeat} x {opts.micro_calls} calls):",
        "",
        "| filters | µs/call | added µs/call |",
        "| --- | ---: | ---: |",
    ]
    for name, us in micro.items():
        lines.append(f"| {name} | {us:.1f} | {us - base:+.1f} |")
    if process is not None:
        cost = process["cpu_us_per_call"]
        off = cost["off"]
        lines += [
            "",
            f"Sidecar process CPU µs per call at {opts.rate:g} calls/s open loop,"
            f" {opts.duration_s:g} s windows, median of {opts.repeat}:",
            "",
            "| sidecar configuration | flags | µs/call | added µs/call | errors |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for name, us in cost.items():
            flags = " ".join(CONFIGS[name]) or "(defaults)"
            lines.append(f"| {name} | `{flags}` | {us:.0f} | {us - off:+.0f} | {process['errors'][name]} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=400.0, help="open-loop calls/s (default: %(default)s)")
    p.add_argument("--duration", type=float, default=10.0, help="measured window, s (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up before it, s (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=3, help="(default: %(default)s)")
    p.add_argument(
        "--micro-calls", type=int, default=20_000, help="calls per micro run (default: %(default)s)"
    )
    p.add_argument("--micro-only", action="store_true", help="skip the process runs (no Go needed)")
    p.add_argument("--out-dir", type=pathlib.Path, default=RESULTS, help="(default: bench/results)")
    a = p.parse_args(argv)
    if a.rate <= 0 or a.duration <= 0 or a.repeat < 1 or a.micro_calls < 10:
        p.error("--rate and --duration must be positive, --repeat >= 1, --micro-calls >= 10")
    return Options(a.rate, a.duration, a.warmup, a.repeat, a.micro_calls, a.micro_only, a.out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    micro = run_micro(opts.micro_calls, opts.repeat)
    process = None
    if not opts.micro_only:
        with tempfile.TemporaryDirectory(prefix="bench-observability-") as d:
            tmp = pathlib.Path(d)
            payload_path = tmp / "request.bin"
            payload_path.write_bytes(payload())
            process = run_process(opts, payload_path, tmp)
    tables = markdown(micro, process, opts)
    print(tables)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    out = opts.out_dir / f"observability-{started:%Y%m%dT%H%M%SZ}.json"
    doc = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": machine(),
        "options": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in asdict(opts).items()},
        "micro_us_per_call": micro,
        "process": process,
        "markdown": tables,
        "cpus": os.cpu_count(),
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
