"""A sidecar's idle RSS, and what each library it imports costs of it.

Two measurements:

- **live**: a sidecar in front of the digits model (relay data plane, every setting at its
  default but the ports: metrics on, tracing off, access log off, no Eureka), started, left
  idle for `--settle` seconds once ready, then its VmRSS (and the anonymous and file-backed
  parts) read from /proc; median of `--repeat` starts. One more start runs with
  PYTHONPROFILEIMPORTTIME=1 (`python -X importtime`), which lists every module it imported.
- **imports**: the packages that list names, imported step by step in a fresh interpreter per
  step (each step on top of the ones before it), with RSS and the step's import time; and
  tracemalloc's count of what each step's Python code allocated, from one more interpreter.
  Packages the live sidecar did not import are measured on top of all the others: what they
  would add.

    python bench/idle_rss.py                       # 3 starts, 3 s idle each
    python bench/idle_rss.py --flags --dataplane grpcio

Prints markdown tables. Imports the sidecar of the tree it sits in (copy it into another tree
to measure that one).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "examples" / "python"))

from local_stack import Proc, running, start_model, start_sidecar  # noqa: E402

MIB = 1024 * 1024
# local_stack probes the model every 0.2 s for quick tests; the sidecar's defaults, as shipped.
DEFAULTS = ("--probe-interval", "2s", "--probe-timeout", "1s", "--drain-delay", "auto")

# Step name, modules it imports, and the package that says whether the sidecar loads it.
STEPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("interpreter (`python -c pass`, site and .pth hooks)", (), ""),
    ("asyncio (with ssl) + uvloop", ("asyncio", "uvloop"), "uvloop"),
    ("aiohttp, client and web", ("aiohttp", "aiohttp.web"), "aiohttp"),
    ("grpcio (grpc, grpc.aio)", ("grpc", "grpc.aio"), "grpc"),
    (
        "protobuf + stubs (inference, grpc.health.v1)",
        ("google.protobuf.message", "inference.grpc_service_pb2", "inference.grpc_service_pb2_grpc",
         "grpc_health.v1.health_pb2"),
        "inference",
    ),
    ("prometheus_client", ("prometheus_client",), "prometheus_client"),
    ("hpack", ("hpack",), "hpack"),
    ("yaml (PyYAML)", ("yaml",), "yaml"),
    ("tenacity", ("tenacity",), "tenacity"),
    (
        "opentelemetry API + SDK + propagators",
        ("opentelemetry.trace", "opentelemetry.sdk.trace", "opentelemetry.sdk.trace.export",
         "opentelemetry.propagators.b3"),
        "opentelemetry",
    ),
    ("grpc.health.v1 servicer", ("grpc_health.v1.health",), "grpc_health.v1.health"),
    ("the sidecar's own modules (sidecar.cli, sidecar.app)", ("sidecar.cli", "sidecar.app"), "sidecar"),
)  # fmt: skip

_MEASURE = """
import importlib, json, sys, time, tracemalloc
trace = sys.argv[1] == "trace"
if trace:
    tracemalloc.start()
def status():
    d = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile"):
            d[k] = int(v.split()[0]) * 1024
    return d
out = []
for step in json.loads(sys.argv[2]):
    t = time.perf_counter()
    for m in step:
        importlib.import_module(m)
    out.append({"seconds": time.perf_counter() - t, **status(),
                "traced": tracemalloc.get_traced_memory()[0] if trace else 0})
print(json.dumps(out))
"""


@dataclass(frozen=True, slots=True)
class Usage:
    rss: float
    anon: float
    file: float


@dataclass(frozen=True, slots=True)
class Row:
    step: str
    rss: float  # after this step and the ones before it
    added: float
    anon: float  # of `added`
    file: float
    traced: float  # bytes tracemalloc saw the step's imports allocate
    seconds: float


def _status(pid: int) -> Usage:
    d = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            d[key] = int(value.split()[0]) * 1024
    return Usage(d["VmRSS"], d["RssAnon"], d["RssFile"])


def live(flags: tuple[str, ...], repeat: int, settle: float) -> tuple[Usage, list[Usage], set[str]]:
    """The idle sidecar's median usage, every start's, and the modules it imported."""
    runs = []
    with running(start_model()) as model:
        for _ in range(repeat):
            with running(start_sidecar(model.ports["grpc"], *DEFAULTS, *flags)) as proc:
                time.sleep(settle)
                runs.append(_status(proc.pid))
        env = {"PYTHONPROFILEIMPORTTIME": "1"}
        with running(start_sidecar(model.ports["grpc"], *DEFAULTS, *flags, env=env)) as proc:
            modules = _imported(proc)
    median = Usage(*(statistics.median(getattr(u, f) for u in runs) for f in ("rss", "anon", "file")))
    return median, runs, modules


def _imported(proc: Proc) -> set[str]:
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.log(), re.MULTILINE))


def _loaded(package: str, modules: set[str]) -> bool:
    return not package or any(m == package or m.startswith(package + ".") for m in modules)


def _measure(steps: list[tuple[str, ...]], trace: bool) -> list[dict[str, float]]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, "trace" if trace else "rss", json.dumps(steps)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    result: list[dict[str, float]] = json.loads(out.stdout)
    return result


def imports(modules: set[str]) -> tuple[list[Row], list[tuple[str, float]]]:
    """Per step the sidecar takes: cumulative RSS, what the step added, its allocations and import time;
    then the steps it does not take, each with what it adds on top of all the others."""
    taken = [s for s in STEPS if _loaded(s[2], modules)]
    skipped = [s for s in STEPS if not _loaded(s[2], modules)]
    rows: list[Row] = []
    before: dict[str, float] = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    traced = _measure([s[1] for s in taken], trace=True)
    for i, (name, _, _) in enumerate(taken):
        # A fresh interpreter per step, without tracemalloc (whose own records take memory).
        now = _measure([s[1] for s in taken[: i + 1]], trace=False)[-1]
        rows.append(
            Row(
                step=name,
                rss=now["VmRSS"],
                added=now["VmRSS"] - before["VmRSS"],
                anon=now["RssAnon"] - before["RssAnon"],
                file=now["RssFile"] - before["RssFile"],
                traced=traced[i]["traced"] - (traced[i - 1]["traced"] if i else 0),
                seconds=now["seconds"],
            )
        )
        before = now
    base = rows[-1].rss
    extra = []
    for name, step, _ in skipped:
        with_it = _measure([*(s[1] for s in taken), step], trace=False)[-1]["VmRSS"]
        extra.append((name, with_it - base))
    return rows, extra


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="sidecar starts; the median is shown [3]")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle after ready [3]")
    parser.add_argument("--flags", nargs=argparse.REMAINDER, default=[], help="more `run` flags, last")
    args = parser.parse_args()
    usage, runs, modules = live(tuple(args.flags), args.repeat, args.settle)
    rows, extra = imports(modules)
    print(f"tree {REPO}, flags {' '.join(args.flags) or '(defaults)'}, {len(modules)} modules imported")
    print(
        f"\nIdle sidecar: VmRSS {usage.rss / MIB:.1f} MiB (anonymous {usage.anon / MIB:.1f}, "
        f"file-backed {usage.file / MIB:.1f}); the {len(runs)} starts: "
        + ", ".join(f"{u.rss / MIB:.1f}" for u in runs)
    )
    print(
        "\n| step (cumulative, fresh interpreter each) | RSS MiB | added MiB | of it anon / file |"
        " Python allocations MiB (tracemalloc) | import ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r.step} | {r.rss / MIB:.1f} | +{r.added / MIB:.1f} | {r.anon / MIB:.1f} / {r.file / MIB:.1f}"
            f" | {r.traced / MIB:.1f} | {r.seconds * 1000:.0f} |"
        )
    print(
        f"| at run time: threads, sockets, channels, buffers (idle sidecar - imports) | {usage.rss / MIB:.1f}"
        f" | +{(usage.rss - rows[-1].rss) / MIB:.1f} | | | |"
    )
    if extra:
        print("\nNot imported by this sidecar; what each would add on top of the above:\n")
        print("| package | would add MiB |")
        print("| --- | ---: |")
        for name, added in extra:
            print(f"| {name} | +{added / MIB:.1f} |")

if __name__ == "__main__":
    main()
