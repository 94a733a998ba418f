"""Instructions per call under valgrind's callgrind: a cost that other load on the machine does not move.

Starts the digits model natively, then each target under `valgrind --tool=callgrind`, and for
each repeat runs the Go load generator (bench/loadgen) open loop for a fixed number of calls,
evenly spaced at a fixed rate. Callgrind's counters are zeroed when the generator's measured
window opens and dumped when it closes (`callgrind_control -z` / `-d`, on every process of the
target's tree), so a count holds exactly the window: the instructions the target's processes
executed in user space. An idle window as long comes first; `net` is the window's count less
the idle rate's, divided by the calls answered. Prints one markdown table of medians and keeps
the dumps (for `callgrind_annotate`) and a JSON record under bench/results/callgrind-<UTC time>/.

    python bench/callgrind.py        # every target, 10 calls/s, 300 calls, 3 repeats
    python bench/callgrind.py --targets compiled,pure --calls 200 --repeat 1
    python bench/callgrind.py --targets compiled,relay-capture-0.01,relay-capture-1   # capture's cost

The targets: `compiled`, the relay data plane on its compiled twins (sidecar/h2/build.py; the
run fails if the tree's build would not be chosen: bash scripts/build-extensions.sh builds it);
`pure`, the same relay forced onto its pure-Python modules (SIDECAR_NO_EXTENSIONS=1); `tcp`,
bench/tcp_relay.py, bytes copied on uvloop with no HTTP/2 (the floor for a relay in Python); and
`nginx` (bench/nginx_proxy.py, grpc_pass, one worker). The table gives each target's ratio to
the TCP floor and to nginx, issue 16's two yardsticks.

What it counts and what not: user-space instructions of the target (interpreter, libraries,
libuv), not the kernel's work for its syscalls, and not time. Valgrind runs a process some
50 times slower, so the rate is kept low enough that calls never overlap; the count per call
then depends on the code, not on how busy the machine is. Each call is alone, so work a proxy
batches across calls under load (one write for several calls) shows up at its unbatched cost.
A new target is one entry in TARGETS: a function that starts it with the valgrind command in
front of its argv.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import os
import pathlib
import shutil
import signal
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
import nginx_proxy  # noqa: E402
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
STARTUP_TIMEOUT_S = 120.0
PAUSE_S = 1.0


@dataclass(frozen=True, slots=True)
class Options:
    targets: tuple[str, ...]
    rate: float
    calls: int
    warmup_s: float
    repeat: int
    retries: int
    seed: int
    out_dir: pathlib.Path
    headers: tuple[tuple[str, str], ...] = ()  # metadata sent with every call


def start_compiled(model_port: int, wrapper: list[str], log: pathlib.Path) -> Proc:
    """The relay on its compiled twins; refused if this tree's build would not run."""
    code = "from sidecar.h2 import build; c = build.choice(); print(c.compiled, build.describe())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    compiled, _, described = done.stdout.strip().partition(" ")
    if done.returncode or compiled != "True":
        raise RuntimeError(f"the compiled relay would not run here: {described or done.stderr}")
    return start_relay(model_port, wrapper, log, {})


def start_pure(model_port: int, wrapper: list[str], log: pathlib.Path) -> Proc:
    """The relay on its pure-Python modules, as SIDECAR_NO_EXTENSIONS=1 forces them."""
    return start_relay(model_port, wrapper, log, {"SIDECAR_NO_EXTENSIONS": "1"})


def start_relay(
    model_port: int,
    wrapper: list[str],
    log: pathlib.Path,
    extra: dict[str, str],
    flags: dict[str, str] | None = None,
) -> Proc:
    """The sidecar with the relay data plane and its default filters, as `ai-sidecar run` starts it;
    `extra`: environment variables added, `flags`: more of its settings (`--name value`)."""
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
        # A probe every 2 s: under valgrind the first one can fail. Probes, like any work the
        # target does without calls, are measured in an idle window and taken out (`net`).
        "probe-interval": "2",
        "probe-timeout": "30",
        **(flags or {}),
    }
    argv = [*wrapper, sys.executable, "-m", "sidecar", "run"]
    for key, value in settings.items():
        argv += [f"--{key}", str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")} | extra
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


def start_nginx(model_port: int, wrapper: list[str], log: pathlib.Path) -> Proc:
    """nginx's grpc_pass, one worker: the reference proxy. The worker keeps the master's user, so
    callgrind_control (run as that user) reaches it and it can write its counts where the others go."""
    del log  # nginx keeps its own
    return nginx_proxy.start_nginx(model_port, STARTUP_TIMEOUT_S, wrapper, user=getpass.getuser())


def capturing(ratio: float) -> Callable[[int, list[str], pathlib.Path], Proc]:
    """The relay capturing every model's calls at `ratio` to a file sink beside the log (its I/O is
    a buffered write: what capture adds on the call path and in the sink task, nearly all)."""

    def start(model_port: int, wrapper: list[str], log: pathlib.Path) -> Proc:
        policy = log.with_suffix(".policy.yaml")
        events = log.with_suffix(".events.jsonl")
        capture = {"sinks": [{"file": {"path": str(events)}}], "rules": [{"model": "*", "ratio": ratio}]}
        policy.write_text(json.dumps({"capture": capture}))
        return start_relay(model_port, wrapper, log, {}, {"inference-policy-file": str(policy)})

    return start


TARGETS: dict[str, Callable[[int, list[str], pathlib.Path], Proc]] = {
    "compiled": start_compiled,
    "pure": start_pure,
    "relay-capture-0.01": capturing(0.01),
    "relay-capture-1": capturing(1.0),
    "tcp": start_tcp,
    "nginx": start_nginx,
}


class Counters:
    """Callgrind's counters of one target's process tree: zeroed and dumped together."""

    def __init__(self, root: int, out_dir: pathlib.Path, name: str) -> None:
        self._root = root
        self._out_dir = out_dir
        self._name = name
        self._pids: list[int] = []
        self._instrumented: set[int] = set()

    def instrument(self) -> None:
        """Start counting: the target started uninstrumented, at a few times its native speed. A
        process of the tree forked later (nginx's worker forks after its master listens) starts
        as uninstrumented as its parent was, so each zero() instruments the newcomers too."""
        for pid in procstat.tree(self._root):
            if pid not in self._instrumented and _control("--instr=on", pid):
                self._instrumented.add(pid)

    def zero(self) -> None:
        self.instrument()
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
    p.add_argument(
        "--targets", default="relay,tcp", help=f"a subset of {','.join(TARGETS)} (default: %(default)s)"
    )
    p.add_argument("--rate", type=float, default=10.0, help="open-loop calls/s (default: %(default)s)")
    p.add_argument(
        "--calls", type=int, default=300, help="calls in each measured window (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=float, default=5.0, help="load before each window, s (default: %(default)s)"
    )
    p.add_argument("--repeat", type=int, default=3, help="windows per target (default: %(default)s)")
    p.add_argument(
        "--retries", type=int, default=2, help="re-runs of a window whose calls overlap (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=1, help="arrival process seed (default: %(default)s)")
    p.add_argument("--out-dir", type=pathlib.Path, default=RESULTS, help="(default: bench/results)")
    a = p.parse_args(argv)
    targets = tuple(t for t in a.targets.split(",") if t)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        p.error(f"--targets: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}")
    if a.rate <= 0 or a.calls < 1 or a.repeat < 1 or a.warmup < 0:
        p.error("--rate must be > 0, --calls and --repeat >= 1, --warmup >= 0")
    return Options(targets, a.rate, a.calls, a.warmup, a.repeat, a.retries, a.seed, a.out_dir)


def measure(
    opts: Options,
    binary: pathlib.Path,
    payload: pathlib.Path,
    model_port: int,
    out: pathlib.Path,
    targets: dict[str, Callable[[int, list[str], pathlib.Path], Proc]] = TARGETS,
) -> dict[str, Any]:
    """Each target started under callgrind in turn; its windows' instructions per call."""
    results: dict[str, Any] = {}
    for name in opts.targets:
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out / name}.%p",
            "--trace-children=yes",  # a target that execs (a shim, nginx's workers) stays counted
            # Started uninstrumented: Python and grpcio start up in seconds, not minutes, and the
            # sidecar's first probe of the model (slowed down 50 times, it can fail) succeeds.
            "--instr-atstart=no",
        ]
        with running(targets[name](model_port, wrapper, out / f"{name}.log")) as proc:
            counters = Counters(proc.pid, out, name)
            counters.instrument()
            window(opts, binary, payload, proc, counters, 0)  # unrecorded: a fresh process is slower
            runs: list[dict[str, Any]] = []
            discarded: list[dict[str, Any]] = []
            for r in range(1, opts.repeat + 1):
                for attempt in range(opts.retries + 1):
                    run = window(opts, binary, payload, proc, counters, r)
                    # A call that took longer than the spacing overlapped the next: the two shared
                    # reads and writes, and the window counts fewer instructions than calls alone
                    # do. One such call in a window changes little; one in a hundred is re-run.
                    overlapped = run["p99_ms"] >= 1000 / opts.rate
                    last = attempt == opts.retries
                    note = " (calls overlapped: " + ("kept, out of retries)" if last else "again)")
                    print(
                        f"[{r}/{opts.repeat}] {name:<6} {run['calls']} calls"
                        f"  {run['net_per_call'] / 1e6:.3f} M instr/call net,"
                        f" {run['per_call'] / 1e6:.3f} M gross,"
                        f" idle {run['idle_per_s'] / 1e6:.2f} M/s, p99 {run['p99_ms']:.0f} ms"
                        + (note if overlapped else ""),
                        file=sys.stderr,
                    )
                    if not overlapped or last:
                        runs.append({**run, "overlapped": overlapped})
                        break
                    discarded.append(run)
        clean = [r for r in runs if not r["overlapped"]] or runs  # the medians leave out a kept overlap
        results[name] = {
            "runs": runs,
            "discarded_runs": discarded,
            "median_net_per_call": statistics.median(r["net_per_call"] for r in clean),
            "median_per_call": statistics.median(r["per_call"] for r in clean),
            "median_idle_per_s": statistics.median(r["idle_per_s"] for r in clean),
        }
    return results


def window(
    opts: Options, binary: pathlib.Path, payload: pathlib.Path, proc: Proc, counters: Counters, r: int
) -> dict[str, Any]:
    """An idle window, then a measured one: what the target executed in each."""
    time.sleep(PAUSE_S)
    idle_s = opts.calls / opts.rate
    counters.zero()
    started = time.monotonic()
    time.sleep(idle_s)
    idle = counters.dump() / (time.monotonic() - started)  # instructions per second
    spec = loadgen_run.LoadSpec(
        address=f"{HOST}:{proc.ports['grpc']}",
        payload=payload,
        warmup_s=opts.warmup_s if r else 2 * opts.warmup_s,
        duration_s=opts.calls / opts.rate,
        rate=opts.rate,
        # One call every 1/rate, not Poisson: calls do not overlap, so none shares a read or a
        # write with another and the count per call does not depend on the machine's speed.
        arrivals="uniform",
        seed=opts.seed + r,
        timeout_s=30.0,
        headers=opts.headers,
    )
    counted: list[int] = []

    def on_event(event: str) -> None:
        if event == "window-start":
            counters.zero()
        elif event == "window-end":
            counted.append(counters.dump())

    result = loadgen_run.run(binary, spec, {}, on_event=on_event)
    report = result.report
    if report["errors"] or report["skipped"]:
        raise RuntimeError(f"not every call succeeded: {report['errors']}, skipped {report['skipped']}")
    calls = int(report["ok_in_window"])
    return {
        "instructions": counted[0],
        "calls": calls,
        "idle_per_s": idle,
        "per_call": counted[0] / calls,
        "net_per_call": (counted[0] - idle * result.window_s) / calls,
        "p50_ms": report["p50_ms"],
        "p99_ms": report["p99_ms"],
        "max_ms": report["max_ms"],
    }


def markdown(results: dict[str, Any], opts: Options) -> str:
    """One row per target: its median, its windows, and its ratio to each yardstick measured."""
    yardsticks = [y for y in ("tcp", "nginx") if y in results]
    lines = [
        f"Callgrind, {opts.rate:g} calls/s open loop, {opts.calls} calls per window,"
        f" medians of {opts.repeat}; net: less what the target does in an idle window as long:",
        "",
        "| target | instructions/call, net | runs, net (M) | gross | idle, per s |"
        + "".join(f" net x {y} |" for y in yardsticks),
        "|---|--:|---|--:|--:|" + "--:|" * len(yardsticks),
    ]
    for name, result in results.items():
        each = (f"{r['net_per_call'] / 1e6:.3f}" + "*" * r["overlapped"] for r in result["runs"])
        row = (
            f"| {name} | {result['median_net_per_call'] / 1e6:.3f} M | {', '.join(each)}"
            f" | {result['median_per_call'] / 1e6:.3f} M | {result['median_idle_per_s'] / 1e6:.2f} M |"
        )
        for y in yardsticks:
            row += f" {result['median_net_per_call'] / results[y]['median_net_per_call']:.2f} |"
        lines.append(row)
    if any(r["overlapped"] for result in results.values() for r in result["runs"]):
        lines += ["", "\\* 1 % of its calls or more overlapped, after all retries; left out of the median."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    # Stopped by a signal, the targets and the model are stopped too (the `running` blocks unwind).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
