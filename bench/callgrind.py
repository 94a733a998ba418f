"""Instructions per call under valgrind's callgrind: a cost that other load on the machine does not move.

Starts the digits model natively, then each target under `valgrind --tool=callgrind`, and for
each repeat runs the Go load generator (bench/loadgen) open loop at a fixed rate for a fixed
number of calls. Callgrind's counters are zeroed when the generator's measured window opens and
dumped when it closes (`callgrind_control -z` / `-d`, on every process of the target's tree), so
a count holds exactly the window: the instructions the target's processes executed in user
space, divided by the calls answered in it. Prints one markdown table of medians and keeps the
dumps (for `callgrind_annotate`) and a JSON record under bench/results/callgrind-<UTC time>/.

    python bench/callgrind.py        # relay and the TCP floor, 20 calls/s, 400 calls, 3 repeats
    python bench/callgrind.py --targets relay --calls 200 --repeat 1

What it counts and what not: user-space instructions of the target (interpreter, libraries,
libuv), not the kernel's work for its syscalls, and not time. Valgrind runs a process some
50 times slower, so the rate is kept low enough that the target is never the bottleneck; the
count per call then depends on the code, not on how busy the machine is. Calls are isolated at
such a rate, so work a proxy batches across calls under load (one write for several calls)
shows up here at its unbatched cost. A new target is one entry in TARGETS: a function that
starts it with the valgrind command in front of its argv.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "examples" / "python"))

import ingress  # noqa: E402
import loadgen_run  # noqa: E402
import procstat  # noqa: E402

from local_stack import (  # noqa: E402
    HOST,
    Proc,
    free_port,
    running,
    start_listening,
    start_model,
    wait_http,
)

RESULTS = BENCH / "results"
STARTUP_TIMEOUT_S = 300.0  # python + grpcio + protobuf imported under valgrind take a while
PAUSE_S = 1.0


@dataclass(frozen=True, slots=True)
class Options:
    targets: tuple[str, ...]
    rate: float
    calls: int
    warmup_s: float
    repeat: int
    seed: int
    out_dir: pathlib.Path


def start_relay(model_port: int, wrapper: list[str], log: pathlib.Path) -> Proc:
    """The sidecar with the relay data plane and its default filters, as `ai-sidecar run` starts it."""
    ports = {name: free_port() for name in ("grpc", "http", "admin", "egress_grpc", "egress_http")}
    settings = {
        "app-name": "digits",
        "model-address": f"{HOST}:{model_port}",
        "listen-host": HOST,
        "grpc-port": ports["grpc"],
        "http-port": ports["http"],
        "admin-port": ports["admin"],
        "egress-grpc-port": ports["egress_grpc"],
        "egress-http-port": ports["egress_http"],
        "dataplane": "relay",
        "drain-delay": "0",
        # Once ready, a probe per minute: the count is the relay's, not the prober's, and a
        # probe slowed down by valgrind must not time out and take readiness away.
        "probe-interval": "60",
        "probe-timeout": "30",
    }
    argv = [*wrapper, sys.executable, "-m", "sidecar", "run"]
    for key, value in settings.items():
        argv += [f"--{key}", str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    with log.open("ab") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=out, cwd=REPO, env=env)
    proc = Proc(popen, log, ports)
    try:
        wait_http(proc, "/readyz", STARTUP_TIMEOUT_S)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_tcp(model_port: int, wrapper: list[str], log: pathlib.Path) -> Proc:
    """bench/tcp_relay.py: bytes copied on uvloop, no HTTP/2: the floor for a relay in Python."""
    del log  # start_listening keeps its own
    argv = [*wrapper, sys.executable, str(BENCH / "tcp_relay.py"), "--target", f"{HOST}:{model_port}"]
    return start_listening(
        argv, name="tcp-relay", ready_prefix="tcp relay listening on ", startup_timeout=STARTUP_TIMEOUT_S
    )


TARGETS: dict[str, Callable[[int, list[str], pathlib.Path], Proc]] = {
    "relay": start_relay,
    "tcp": start_tcp,
}


class Counters:
    """Callgrind's counters of one target's process tree: zeroed and dumped together."""

    def __init__(self, root: int, out_dir: pathlib.Path, name: str) -> None:
        self._root = root
        self._out_dir = out_dir
        self._name = name
        self._pids: list[int] = []

    def zero(self) -> None:
        self._pids = procstat.tree(self._root)
        for pid in self._pids:
            _control("-z", pid)

    def dump(self) -> int:
        """The instructions executed since zero() by the tree's callgrind processes."""
        total = 0
        for pid in self._pids:
            before = set(self._out_dir.glob(f"{self._name}.{pid}.*"))
            if not _control("-d", pid):
                continue
            new = sorted(set(self._out_dir.glob(f"{self._name}.{pid}.*")) - before)
            for path in new:
                total += _summary(path)
        return total


def _control(flag: str, pid: int) -> bool:
    """callgrind_control on one pid; it returns once the process has done it. False: not callgrind's."""
    done = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and "OK" in done.stdout


def _summary(path: pathlib.Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"{path}: no summary line")


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--targets", default=",".join(TARGETS), help="subset of %(default)s")
    p.add_argument("--rate", type=float, default=20.0, help="open-loop calls/s (default: %(default)s)")
    p.add_argument(
        "--calls", type=int, default=400, help="calls in each measured window (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=float, default=5.0, help="load before each window, s (default: %(default)s)"
    )
    p.add_argument("--repeat", type=int, default=3, help="windows per target (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="arrival process seed (default: %(default)s)")
    p.add_argument("--out-dir", type=pathlib.Path, default=RESULTS, help="(default: bench/results)")
    a = p.parse_args(argv)
    targets = tuple(t for t in a.targets.split(",") if t)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        p.error(f"--targets: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}")
    if a.rate <= 0 or a.calls < 1 or a.repeat < 1 or a.warmup < 0:
        p.error("--rate must be > 0, --calls and --repeat >= 1, --warmup >= 0")
    return Options(targets, a.rate, a.calls, a.warmup, a.repeat, a.seed, a.out_dir)


def measure(
    opts: Options, binary: pathlib.Path, payload: pathlib.Path, model_port: int, out: pathlib.Path
) -> dict[str, Any]:
    """Each target started under callgrind in turn; its windows' instructions per call."""
    results: dict[str, Any] = {}
    for name in opts.targets:
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out / name}.%p",
            "--trace-children=yes",  # a target that execs (a shim, nginx's workers) stays counted
        ]
        with running(TARGETS[name](model_port, wrapper, out / f"{name}.log")) as proc:
            counters = Counters(proc.pid, out, name)
            runs: list[dict[str, Any]] = []
            for r in range(opts.repeat + 1):  # the first is unrecorded: a fresh process is slower
                time.sleep(PAUSE_S)
                spec = loadgen_run.LoadSpec(
                    address=f"{HOST}:{proc.ports['grpc']}",
                    payload=payload,
                    warmup_s=opts.warmup_s if r else 2 * opts.warmup_s,
                    duration_s=opts.calls / opts.rate,
                    rate=opts.rate,
                    seed=opts.seed + r,
                    timeout_s=30.0,
                )
                counted: list[int] = []

                def on_event(event: str, counters: Counters = counters, counted: list[int] = counted) -> None:
                    if event == "window-start":
                        counters.zero()
                    elif event == "window-end":
                        counted.append(counters.dump())

                result = loadgen_run.run(binary, spec, {}, on_event=on_event)
                report = result.report
                if report["errors"] or report["skipped"]:
                    raise RuntimeError(
                        f"{name}: not every call succeeded: {report['errors']}, skipped {report['skipped']}"
                    )
                if not r:
                    continue
                calls = int(report["ok_in_window"])
                run = {
                    "instructions": counted[0],
                    "calls": calls,
                    "per_call": counted[0] / calls,
                    "p50_ms": report["p50_ms"],
                }
                print(
                    f"[{r}/{opts.repeat}] {name:<6} {calls} calls  {run['per_call'] / 1e6:.3f} M instr/call"
                    f"  p50 {report['p50_ms']:.1f} ms",
                    file=sys.stderr,
                )
                runs.append(run)
        results[name] = {"runs": runs, "median_per_call": statistics.median(r["per_call"] for r in runs)}
    return results


def markdown(results: dict[str, Any], opts: Options) -> str:
    lines = [
        f"Callgrind, {opts.rate:g} calls/s open loop, {opts.calls} calls per window,"
        f" medians of {opts.repeat}:",
        "",
        "| target | instructions/call | runs (M) |" + (" x tcp |" if "tcp" in results else ""),
        "|---|--:|---|" + ("--:|" if "tcp" in results else ""),
    ]
    for name, result in results.items():
        row = (
            f"| {name} | {result['median_per_call'] / 1e6:.3f} M"
            f" | {', '.join(format(r['per_call'] / 1e6, '.3f') for r in result['runs'])} |"
        )
        if "tcp" in results:
            row += f" {result['median_per_call'] / results['tcp']['median_per_call']:.2f} |"
        lines.append(row)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("callgrind: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    out = opts.out_dir / f"callgrind-{started:%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    binary = loadgen_run.build()
    host = ingress.machine()
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        payload = pathlib.Path(tmp) / "request.bin"
        payload.write_bytes(ingress.payload())
        with running(start_model()) as model:
            results = measure(opts, binary, payload, model.ports["grpc"], out)
    table = markdown(results, opts)
    print(table)
    doc = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": host,
        "options": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in asdict(opts).items()},
        "results": results,
        "markdown": table,
    }
    (out / "callgrind.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
