"""The gRPC ingress benchmark: the digits model called directly, through ai-sidecar, through nginx.

Starts the digits model, an ai-sidecar and nginx (grpc_pass, one worker) on
loopback ports, then for each repeat, each rate and each target (in an order
rotated per repeat) runs the Go open-loop load generator for a fixed window,
measuring the proxy's (and the model's) CPU time and RSS over exactly that
window; then a closed-loop saturation run per target. Prints markdown tables
of the medians over repeats and writes every run as JSON under bench/results/.

    bash bench/setup.sh                       # nginx, if missing
    python bench/ingress.py                   # 500 and 1000 RPS, 10 s + 2 s warm-up, 3 repeats
    python bench/ingress.py --rates 200 --repeat 1 --duration 3 --saturate-workers 0

See bench/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pathlib
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "examples" / "python"))

import grpc  # noqa: E402
import loadgen_run  # noqa: E402
import nginx_proxy  # noqa: E402
import procstat  # noqa: E402
from procstat import MIB, Usage  # noqa: E402

from inference import grpc_service_pb2 as pb  # noqa: E402
from local_stack import HOST, Proc, running, start_listening, start_model, start_sidecar  # noqa: E402

TARGETS = ("direct", "sidecar", "relay", "nginx", "tcp")
# sidecar: --dataplane grpcio; relay: --dataplane relay; tcp: bench/tcp_relay.py, the floor
RESULTS = BENCH / "results"
BATCH = 4  # rows of 64 FP32 features: 4 * 64 * 4 bytes = 1 KiB of raw_input_contents
FEATURES = 64
PAUSE_S = 1.0  # between runs, so one run's connection teardown does not land in the next window
QUIET_WAIT_S = 30.0  # at most this long before each run for other processes to calm down


@dataclass(frozen=True, slots=True)
class Options:
    rates: tuple[float, ...]
    duration_s: float
    warmup_s: float
    repeat: int
    targets: tuple[str, ...]
    saturate_workers: int
    saturate_duration_s: float
    saturate_warmup_s: float
    connections: int
    seed: int
    prime_s: float
    max_others: float
    retries: int
    out_dir: pathlib.Path


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    port: int
    proxy_pid: int | None  # None for the model called directly


@dataclass(slots=True)
class Run:
    """One load generator run against one target, with what the processes used in its window."""

    repeat: int
    target: str
    mode: str  # "open" or "saturate"
    load: int  # the rate (open) or the number of workers (saturate)
    report: dict[str, Any]
    window_s: float
    usage: dict[str, Usage] = field(default_factory=dict)
    machine_busy_s: float = 0.0
    steal_s: float = 0.0

    def cpu_us_per_call(self, who: str) -> float | None:
        """CPU time in the window per successful response received in it."""
        used, calls = self.usage.get(who), int(self.report["ok_in_window"])
        return None if used is None or calls == 0 else used.cpu_s / calls * 1e6

    def cpu_share(self, who: str) -> float | None:
        """CPU time over wall time in the window: 1.0 is one core kept busy."""
        used = self.usage.get(who)
        return None if used is None else used.cpu_s / self.window_s

    def other_cpu_share(self) -> float:
        """Busy CPU in the window that none of the measured processes used (the driver, other
        processes on the machine, the kernel) plus stolen time, over wall time: interference."""
        ours = sum(u.cpu_s for u in self.usage.values())
        return max(0.0, self.machine_busy_s - ours + self.steal_s) / self.window_s

    def to_json(self) -> dict[str, Any]:
        return {
            "repeat": self.repeat,
            "target": self.target,
            "mode": self.mode,
            "load": self.load,
            "window_s": self.window_s,
            "loadgen": self.report,
            "usage": {k: asdict(v) for k, v in self.usage.items()},
            "cpu_us_per_call": {k: self.cpu_us_per_call(k) for k in self.usage},
            "cpu_share": {k: self.cpu_share(k) for k in self.usage},
            "machine_busy_s": self.machine_busy_s,
            "steal_s": self.steal_s,
            "other_cpu_share": self.other_cpu_share(),
        }


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--rates", default="500,1000", help="open-loop rates, calls/s (default: %(default)s)"
    )
    p.add_argument(
        "--duration", type=float, default=10.0, help="measured window, s (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=float, default=2.0, help="warm-up before it, s (default: %(default)s)"
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="times the whole matrix runs (default: %(default)s)"
    )
    p.add_argument(
        "--targets", default=",".join(TARGETS), help="subset of %(default)s, always with direct"
    )
    p.add_argument(
        "--saturate-workers",
        type=int,
        default=32,
        help="closed-loop workers of the saturation run; 0 skips it (default: %(default)s)",
    )
    p.add_argument("--saturate-duration", type=float, default=5.0, help="(default: %(default)s)")
    p.add_argument("--saturate-warmup", type=float, default=1.0, help="(default: %(default)s)")
    p.add_argument(
        "--connections",
        type=int,
        default=1,
        help="HTTP/2 connections from the generator (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=1, help="arrival process seed (default: %(default)s)"
    )
    p.add_argument(
        "--prime",
        type=float,
        default=3.0,
        help="unrecorded load on each target before the first repeat, s (default: %(default)s)",
    )
    p.add_argument(
        "--max-others",
        type=float,
        default=0.15,
        help="share of a core that processes other than the measured ones may use in a run;"
        " a run over it is discarded and retried, and each run first waits up to"
        f" {QUIET_WAIT_S:g} s for the machine to be that quiet; 0 turns this off"
        " (default: %(default)s)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times a disturbed run is retried before it is kept anyway (default: %(default)s)",
    )
    p.add_argument("--out-dir", type=pathlib.Path, default=RESULTS, help="(default: bench/results)")
    a = p.parse_args(argv)
    targets = tuple(t for t in a.targets.split(",") if t)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        p.error(f"--targets: unknown {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    rates = tuple(float(r) for r in a.rates.split(",") if r)
    if not rates or min(rates) <= 0:
        p.error(f"--rates: want positive calls/s, got {a.rates!r}")
    if a.repeat < 1 or a.duration <= 0 or a.warmup < 0:
        p.error("--repeat must be >= 1, --duration > 0 and --warmup >= 0")
    return Options(
        rates=rates,
        duration_s=a.duration,
        warmup_s=a.warmup,
        repeat=a.repeat,
        targets=("direct", *(t for t in TARGETS[1:] if t in targets)),
        saturate_workers=a.saturate_workers,
        saturate_duration_s=a.saturate_duration,
        saturate_warmup_s=a.saturate_warmup,
        connections=a.connections,
        seed=a.seed,
        prime_s=a.prime,
        max_others=a.max_others,
        retries=a.retries,
        out_dir=a.out_dir,
    )


def payload() -> bytes:
    """A ModelInferRequest for "digits": INPUT0 FP32 [4,64] as 1 KiB of raw_input_contents."""
    rng = random.Random(0)  # pixel intensities 0..16, as in scikit-learn's digits
    pixels = [float(rng.randrange(17)) for _ in range(BATCH * FEATURES)]
    request = pb.ModelInferRequest(
        model_name="digits",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="INPUT0", datatype="FP32", shape=[BATCH, FEATURES]
            )
        ],
        raw_input_contents=[struct.pack(f"<{len(pixels)}f", *pixels)],
    )
    return request.SerializeToString()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    # Before the processes start: the commit and tree they load are what this run measures.
    host = machine()
    binary = loadgen_run.build()
    planned = opts.repeat * (
        len(opts.rates) * len(opts.targets) * (opts.warmup_s + opts.duration_s + PAUSE_S)
        + (
            len(opts.targets) * (opts.saturate_warmup_s + opts.saturate_duration_s + PAUSE_S)
            if opts.saturate_workers
            else 0
        )
    )
    print(
        f"ingress bench: {opts.repeat} repeat(s), about {planned / 60:.1f} min of load"
        " (more if runs wait for, or are re-run after, other load on the machine)",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="bench-ingress-") as tmp:
        payload_path = pathlib.Path(tmp) / "request.bin"
        payload_path.write_bytes(payload())
        with contextlib.ExitStack() as stack:
            model = stack.enter_context(running(start_model()))
            procs: dict[str, Proc] = {"model": model}
            targets = [Target("direct", model.ports["grpc"], None)]
            if "sidecar" in opts.targets:
                procs["sidecar"] = stack.enter_context(
                    running(start_sidecar(model.ports["grpc"], "--dataplane", "grpcio"))
                )
                targets.append(
                    Target("sidecar", procs["sidecar"].ports["grpc"], procs["sidecar"].pid)
                )
            if "relay" in opts.targets:
                procs["relay"] = stack.enter_context(
                    running(start_sidecar(model.ports["grpc"], "--dataplane", "relay"))
                )
                targets.append(Target("relay", procs["relay"].ports["grpc"], procs["relay"].pid))
            if "nginx" in opts.targets:
                nginx = nginx_proxy.start_nginx(model.ports["grpc"])
                # Registered first so it runs after nginx has stopped (the stack unwinds LIFO).
                stack.callback(shutil.rmtree, nginx.log_path.parent, True)
                procs["nginx"] = stack.enter_context(running(nginx))
                targets.append(Target("nginx", procs["nginx"].ports["grpc"], procs["nginx"].pid))
            if "tcp" in opts.targets:
                target = f"{HOST}:{model.ports['grpc']}"
                argv = [sys.executable, str(BENCH / "tcp_relay.py"), "--target", target]
                tcp = start_listening(argv, name="tcp-relay", ready_prefix="tcp relay listening on ")
                procs["tcp"] = stack.enter_context(running(tcp))
                targets.append(Target("tcp", procs["tcp"].ports["grpc"], procs["tcp"].pid))
            idle_rss_mib = {
                t.name: procstat.rss_bytes(t.proxy_pid) / MIB
                for t in targets
                if t.proxy_pid is not None
            }
            runs, discarded = run_matrix(opts, binary, payload_path, targets, model.pid)
            logs = {name: str(p.log_path) for name, p in procs.items() if name != "nginx"}
            complaints = {name: complaints_in(p.log()) for name, p in procs.items()}
    for name, lines in complaints.items():
        if lines:
            print(f"{name} logged {len(lines)} warning(s)/error(s), e.g.:", file=sys.stderr)
            for line in lines[:5]:
                print(f"  {line}", file=sys.stderr)
    summary = summarise(runs, opts)
    tables = markdown(summary, opts)
    print(tables)
    if discarded:
        print(
            f"\n{len(discarded)} run(s) were discarded because other processes used more than"
            f" {opts.max_others * 100:.0f}% of a core meanwhile, and run again.",
        )
    idle = ", ".join(f"{name} {mib:.1f} MiB" for name, mib in idle_rss_mib.items())
    print(f"\nProxy RSS after start-up, before any load: {idle or '-'}.")
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    out = opts.out_dir / f"ingress-{started:%Y%m%dT%H%M%SZ}.json"
    doc = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": host,
        "options": {
            k: str(v) if isinstance(v, pathlib.Path) else v for k, v in asdict(opts).items()
        },
        "idle_rss_mib": idle_rss_mib,
        "summary": summary,
        "markdown": tables,
        "runs": [r.to_json() for r in runs],
        "discarded_runs": [r.to_json() for r in discarded],
        "logs": logs,
        "log_complaints": complaints,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}", file=sys.stderr)
    return 0


def complaints_in(log: str) -> list[str]:
    """Lines of a process log that report a warning or an error (sidecar, model or nginx)."""
    marks = (" WARNING ", " ERROR ", " CRITICAL ", "[warn]", "[error]", "[crit]", "Traceback")
    return [line for line in log.splitlines() if any(m in line for m in marks)]


def wait_quiet(max_share: float, ours: list[int]) -> None:
    """Wait (up to QUIET_WAIT_S) for one second in which processes other than `ours` use less
    than `max_share` of a core, so that a run does not start in the middle of someone's build."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while time.monotonic() < deadline:
        busy0, steal0 = procstat.machine_cpu_seconds()
        own0 = sum(procstat.cpu_seconds(pid) for pid in ours)
        time.sleep(1.0)
        busy1, steal1 = procstat.machine_cpu_seconds()
        own1 = sum(procstat.cpu_seconds(pid) for pid in ours)
        if (busy1 - busy0) + (steal1 - steal0) - (own1 - own0) < max_share:
            return
    print(f"machine still busy after {QUIET_WAIT_S:g} s; running anyway", file=sys.stderr)


def run_matrix(
    opts: Options,
    binary: pathlib.Path,
    payload_path: pathlib.Path,
    targets: list[Target],
    model_pid: int,
) -> tuple[list[Run], list[Run]]:
    """The kept runs, and those discarded because something else used the machine meanwhile."""
    runs: list[Run] = []
    discarded: list[Run] = []
    # The driver itself counts as "other"; its own CPU (mostly idle) is too small to matter.
    all_pids = [model_pid, *(t.proxy_pid for t in targets if t.proxy_pid is not None)]

    def one(r: int, target: Target, spec: loadgen_run.LoadSpec, mode: str, load: int) -> None:
        watch = {"model": model_pid}
        if target.proxy_pid is not None:
            watch["proxy"] = target.proxy_pid
        for attempt in range(opts.retries + 1):
            time.sleep(PAUSE_S)
            if opts.max_others > 0:
                wait_quiet(opts.max_others, all_pids)
            result = loadgen_run.run(binary, spec, watch)
            run = Run(
                r,
                target.name,
                mode,
                load,
                result.report,
                result.window_s,
                result.usage,
                result.machine_busy_s,
                result.steal_s,
            )
            disturbed = opts.max_others > 0 and run.other_cpu_share() > opts.max_others
            last = attempt == opts.retries
            note = " (disturbed: retrying)" if disturbed and not last else ""
            note = " (disturbed: kept, out of retries)" if disturbed and last else note
            print(progress(run, opts.repeat) + note, file=sys.stderr)
            if not disturbed or last:
                runs.append(run)
                return
            discarded.append(run)

    if opts.prime_s > 0:
        # A freshly started Python process answers its first calls more slowly (lazy imports,
        # caches, the allocator growing); without this the first run of repeat 1 pays for it.
        for target in targets:
            spec = loadgen_run.LoadSpec(
                address=f"{HOST}:{target.port}",
                payload=payload_path,
                warmup_s=0.0,
                duration_s=opts.prime_s,
                rate=min(opts.rates),
                connections=opts.connections,
            )
            loadgen_run.run(binary, spec, {})
    for r in range(1, opts.repeat + 1):
        # Rotate the order each repeat so no target always runs first or right after another.
        order = targets[(r - 1) % len(targets) :] + targets[: (r - 1) % len(targets)]
        for rate in opts.rates:
            for target in order:
                spec = loadgen_run.LoadSpec(
                    address=f"{HOST}:{target.port}",
                    payload=payload_path,
                    warmup_s=opts.warmup_s,
                    duration_s=opts.duration_s,
                    rate=rate,
                    connections=opts.connections,
                    # The same arrival sequence for every target within a repeat.
                    seed=opts.seed + r,
                )
                one(r, target, spec, "open", int(rate))
        if opts.saturate_workers:
            for target in order:
                spec = loadgen_run.LoadSpec(
                    address=f"{HOST}:{target.port}",
                    payload=payload_path,
                    warmup_s=opts.saturate_warmup_s,
                    duration_s=opts.saturate_duration_s,
                    saturate_workers=opts.saturate_workers,
                    connections=opts.connections,
                )
                one(r, target, spec, "saturate", opts.saturate_workers)
    return runs, discarded


def progress(run: Run, repeats: int) -> str:
    rep = run.report
    errors = sum(rep["errors"].values()) + rep["skipped"]
    proxy = run.cpu_us_per_call("proxy")
    cpu = "" if proxy is None else f", proxy {proxy:.0f} µs/call"
    cpu += f", others {run.other_cpu_share() * 100:.0f}% core"
    what = f"{run.load}/s" if run.mode == "open" else f"saturate x{run.load}"
    return (
        f"[{run.repeat}/{repeats}] {run.target:<7} {what:<12} {rep['achieved_rps']:8.1f} rps"
        f"  p50 {rep['p50_ms']:7.2f} ms  p99 {rep['p99_ms']:7.2f} ms  not ok {errors}{cpu}"
    )


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[Run], opts: Options) -> list[dict[str, Any]]:
    """Medians over repeats per (mode, load, target), errors summed, and ratios to direct."""
    rows: list[dict[str, Any]] = []
    keys = sorted({(r.mode, r.load) for r in runs}, key=lambda k: (k[0] != "open", k[1]))
    for mode, load in keys:
        direct: dict[str, Any] | None = None
        for target in opts.targets:
            group = [r for r in runs if (r.mode, r.load, r.target) == (mode, load, target)]
            if not group:
                continue
            errors: Counter[str] = Counter()
            for r in group:
                errors.update(r.report["errors"])

            def med(get: Callable[[Run], float | None], group: list[Run] = group) -> float | None:
                return _median(get(r) for r in group)

            row: dict[str, Any] = {
                "mode": mode,
                "load": load,
                "target": target,
                "runs": len(group),
                "achieved_rps": med(lambda r: r.report["achieved_rps"]),
                "p50_ms": med(lambda r: r.report["p50_ms"]),
                "p90_ms": med(lambda r: r.report["p90_ms"]),
                "p99_ms": med(lambda r: r.report["p99_ms"]),
                "p999_ms": med(lambda r: r.report["p999_ms"]),
                "max_ms": med(lambda r: r.report["max_ms"]),
                "errors": dict(errors),
                "skipped": sum(r.report["skipped"] for r in group),
                "sent": sum(r.report["sent"] for r in group),
                "p99_send_lag_ms": med(lambda r: r.report["p99_send_lag_ms"]),
                "response_bytes": sorted({r.report["response_bytes"] for r in group}),
                "proxy_cpu_us_per_call": med(lambda r: r.cpu_us_per_call("proxy")),
                "proxy_cpu_share": med(lambda r: r.cpu_share("proxy")),
                "model_cpu_us_per_call": med(lambda r: r.cpu_us_per_call("model")),
                "loadgen_cpu_us_per_call": med(lambda r: r.cpu_us_per_call("loadgen")),
                "other_cpu_share": med(lambda r: r.other_cpu_share()),
                "other_cpu_share_max": max(r.other_cpu_share() for r in group),
                "proxy_rss_peak_mib": med(
                    lambda r: r.usage["proxy"].rss_peak_bytes / MIB if "proxy" in r.usage else None
                ),
                "proxy_rss_end_mib": med(
                    lambda r: r.usage["proxy"].rss_end_bytes / MIB if "proxy" in r.usage else None
                ),
            }
            if target == "direct":
                direct = row
            if direct is not None:
                row["p50_added_ms"] = row["p50_ms"] - direct["p50_ms"]
                row["p99_ratio"] = row["p99_ms"] / direct["p99_ms"] if direct["p99_ms"] else None
                row["rps_ratio"] = (
                    row["achieved_rps"] / direct["achieved_rps"] if direct["achieved_rps"] else None
                )
            rows.append(row)
    return rows


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _errors(row: dict[str, Any]) -> str:
    parts = [f"{code} {n}" for code, n in sorted(row["errors"].items())]
    if row["skipped"]:
        parts.append(f"skipped {row['skipped']}")
    return ", ".join(parts) or "0"


def _others(row: dict[str, Any]) -> str:
    """Median and worst interference in % of a core, e.g. "3 (max 41)"."""
    return f"{row['other_cpu_share'] * 100:.0f} (max {row['other_cpu_share_max'] * 100:.0f})"


def markdown(summary: list[dict[str, Any]], opts: Options) -> str:
    """The medians as two markdown tables: open loop, then saturation."""
    n = opts.repeat
    lines = [
        f"Open loop, Poisson arrivals, {opts.duration_s:g} s measured after {opts.warmup_s:g} s"
        f" warm-up; medians of {n} run(s); errors summed over all runs.",
        "",
        "| target | rate/s | achieved/s | p50 ms | p99 ms | p50 added ms | p99 x direct | errors"
        " | proxy CPU µs/call | proxy CPU % core | model CPU µs/call | proxy RSS MiB peak / end"
        " | gen lag p99 ms | others % core |",
        "|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in summary:
        if row["mode"] != "open":
            continue
        direct = row["target"] == "direct"
        share = row["proxy_cpu_share"]
        lines.append(
            f"| {row['target']} | {row['load']} | {_f(row['achieved_rps'], '.0f')}"
            f" | {_f(row['p50_ms'], '.2f')} | {_f(row['p99_ms'], '.2f')}"
            f" | {'-' if direct else _f(row.get('p50_added_ms'), '+.2f')}"
            f" | {'-' if direct else _f(row.get('p99_ratio'), '.2f')}"
            f" | {_errors(row)} | {_f(row['proxy_cpu_us_per_call'], '.0f')}"
            f" | {'-' if share is None else format(share * 100, '.0f')}"
            f" | {_f(row['model_cpu_us_per_call'], '.0f')}"
            f" | {_f(row['proxy_rss_peak_mib'], '.1f')} / {_f(row['proxy_rss_end_mib'], '.1f')}"
            f" | {_f(row['p99_send_lag_ms'], '.1f')} | {_others(row)} |"
        )
    saturation = [row for row in summary if row["mode"] == "saturate"]
    if saturation:
        lines += [
            "",
            f"Saturation: {opts.saturate_workers} closed-loop workers,"
            f" {opts.saturate_duration_s:g} s measured after {opts.saturate_warmup_s:g} s warm-up;"
            f" medians of {n} run(s).",
            "",
            "| target | throughput/s | x direct | p50 ms | p99 ms | errors | proxy CPU µs/call"
            " | proxy CPU % core | model CPU µs/call | others % core |",
            "|---|--:|--:|--:|--:|---|--:|--:|--:|--:|",
        ]
        for row in saturation:
            share = row["proxy_cpu_share"]
            lines.append(
                f"| {row['target']} | {_f(row['achieved_rps'], '.0f')}"
                f" | {_f(row.get('rps_ratio'), '.2f')}"
                f" | {_f(row['p50_ms'], '.2f')} | {_f(row['p99_ms'], '.2f')} | {_errors(row)}"
                f" | {_f(row['proxy_cpu_us_per_call'], '.0f')}"
                f" | {'-' if share is None else format(share * 100, '.0f')}"
                f" | {_f(row['model_cpu_us_per_call'], '.0f')} | {_others(row)} |"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def output(*cmd: str) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=REPO)
        except OSError as e:
            return f"unavailable: {e}"
        return (done.stdout or done.stderr).strip()

    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "go": output(loadgen_run.go_binary(), "version"),
        "nginx": nginx_proxy.version(),
        "git_commit": output("git", "rev-parse", "HEAD"),
        "git_dirty": bool(output("git", "status", "--porcelain", "--untracked-files=no")),
    }


if __name__ == "__main__":
    sys.exit(main())
