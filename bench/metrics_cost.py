"""What the metrics filter costs per call, in CPU time and in instructions (callgrind), in-process.

Times three paths over N calls (median of repeats), the chain driven by hand (no event loop, so
nothing but the code under test is on the clock):

- **chain**: the filter chain around a terminal that answers at once, no filter: the baseline;
- **filter**: the same chain with the MetricsFilter in it (in-flight count, clock, record);
- **observe**: `SidecarMetrics.observe` alone, the record path as the public API takes it.

"filter - chain" is what the metrics filter adds to a call. The calls cycle through a few
(method, model, code) combinations, as a real mix would. With `--callgrind` each path also runs
under `valgrind --tool=callgrind` twice, with N calls and with none, and the difference in
instructions ÷ N is its instructions per call: a figure that does not move with other load.

    python bench/metrics_cost.py                        # 10^5 calls, 5 repeats
    python bench/metrics_cost.py --callgrind            # plus instructions per call (about a minute)
    python bench/metrics_cost.py --calls 10000 --repeat 1   # smoke run

To compare with another tree (e.g. main before a change), copy this file into that tree's
bench/ and run it there: it imports the sidecar from the tree it sits in.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this tree's sidecar, whatever the editable install points at

from sidecar.core.call import Call, Outcome  # noqa: E402
from sidecar.core.status import Code  # noqa: E402
from sidecar.filters.chain import Filter, Next, build_chain  # noqa: E402
from sidecar.filters.metrics import MetricsFilter  # noqa: E402
from sidecar.oip import contract  # noqa: E402
from sidecar.telemetry.names import BoundedNames, MethodLabels  # noqa: E402
from sidecar.telemetry.prometheus import SidecarMetrics  # noqa: E402

PATHS = ("chain", "filter", "observe")
# One cycle of the call mix: mostly successful inference, a refused one, a readiness call.
MIX = (
    *[(contract.MODEL_INFER, "digits", Code.OK)] * 6,
    (contract.MODEL_INFER, "digits", Code.NOT_FOUND),
    (contract.MODEL_READY, "", Code.OK),
)


def _metrics() -> SidecarMetrics:
    return SidecarMetrics(MethodLabels(contract.METHODS), BoundedNames(["digits"]))


def _terminals() -> list[Next]:
    outcomes = [Outcome(code) for _, _, code in MIX]

    def answer(outcome: Outcome) -> Next:
        async def terminal(call: Call) -> Outcome:
            return outcome

        return terminal

    return [answer(o) for o in outcomes]


def _runner(path: str) -> Callable[[int], None]:
    """A function making `n` calls down `path`; all set-up done before it is returned."""
    calls = [Call(method=m, metadata=[], deadline=None, protocol="grpc", model=model) for m, model, _ in MIX]
    if path == "observe":
        metrics = _metrics()
        observe = metrics.observe
        mix = [(m, model, code) for m, model, code in MIX]

        def run_observe(n: int) -> None:
            k = len(mix)
            for i in range(n):
                method, model, code = mix[i % k]
                observe("ingress", method, model, code, 0.0042)

        return run_observe
    filters: list[Filter] = [MetricsFilter(_metrics(), direction="ingress")] if path == "filter" else []
    chains = [build_chain(filters, t) for t in _terminals()]
    pairs = list(zip(chains, calls, strict=True))

    def run_chain(n: int) -> None:
        k = len(pairs)
        for i in range(n):
            chain, call = pairs[i % k]
            coro: Coroutine[Any, Any, Outcome] = chain(call)  # type: ignore[assignment]
            try:
                coro.send(None)
            except StopIteration:
                continue
            raise AssertionError("the terminal answers at once: the chain must not suspend")

    return run_chain


def cpu_ns_per_call(path: str, calls: int, repeat: int) -> float:
    run = _runner(path)
    run(calls // 10)  # warm-up: caches, admitted labels, series
    samples = []
    for _ in range(repeat):
        started = time.process_time_ns()
        run(calls)
        samples.append((time.process_time_ns() - started) / calls)
    return statistics.median(samples)


def instructions_per_call(path: str, calls: int) -> float:
    """Instructions of `calls` calls down `path` under callgrind, less those of set-up alone."""

    def collected(n: int) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                 sys.executable, __file__, "--inner", path, "--calls", str(n)],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
            )  # fmt: skip
        found = re.search(r"Collected : (\d+)", out.stderr)
        if found is None:
            raise RuntimeError(f"no callgrind total in: {out.stderr[-500:]}")
        return int(found.group(1))

    return (collected(calls) - collected(0)) / calls


def _inner(path: str, calls: int) -> None:
    """Under callgrind: the same set-up and warm-up whatever `calls` is, then `calls` calls."""
    run = _runner(path)
    run(len(MIX) * 10)
    run(calls)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000, help="calls per timed run [100000]")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per path; the median is shown [5]")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per call")
    parser.add_argument("--callgrind-calls", type=int, default=20_000, help="calls per callgrind run [20000]")
    parser.add_argument("--inner", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        _inner(args.inner, args.calls)
        return
    cpu = {path: cpu_ns_per_call(path, args.calls, args.repeat) for path in PATHS}
    print(f"{args.calls} calls x {args.repeat} repeats, median CPU per call; tree {REPO}")
    print("| path | CPU ns/call |" + (" instructions/call |" if args.callgrind else ""))
    print("| --- | ---: |" + (" ---: |" if args.callgrind else ""))
    instr: dict[str, float] = {}
    if args.callgrind:
        instr = {path: instructions_per_call(path, args.callgrind_calls) for path in PATHS}
    for path in PATHS:
        print(f"| {path} | {cpu[path]:.0f} |" + (f" {instr[path]:.0f} |" if instr else ""))
    added = f"| filter - chain (what the metrics filter adds) | {cpu['filter'] - cpu['chain']:.0f} |"
    print(added + (f" {instr['filter'] - instr['chain']:.0f} |" if instr else ""))


if __name__ == "__main__":
    main()
