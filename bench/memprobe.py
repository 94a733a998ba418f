"""Bench-only: runs a sidecar with memory probes a signal triggers, and compares tracemalloc snapshots.

    python bench/memprobe.py wrap --out DIR [--frames 8] -- run --app-name ...   # a probed sidecar
    python bench/memprobe.py diff DIR/snap-0001.tm DIR/snap-0009.tm [--top 25]   # what grew

`wrap` starts tracemalloc (unless `--frames 0`) before the sidecar's modules are imported, then runs
`ai-sidecar` with the remaining arguments, unchanged. On SIGUSR1 it appends one JSON line to
DIR/probe.jsonl and dumps a tracemalloc snapshot to DIR/snap-NNNN.tm; SIGUSR2 does the same and then
calls glibc's `malloc_trim(0)` and records the resident memory it gave back. A line holds:

- `status`: VmRSS, RssAnon, RssFile from /proc/self/status (MiB); `smaps`: bench/smaps.py's breakdown;
- `mallinfo`: glibc's mallinfo2 over all arenas (MiB): `in_use` (uordblks + hblkhd: what malloc
  handed out and is still held), `free_held` (fordblks: freed, kept by the arenas), `arenas` from
  malloc_info; what is resident but neither in use nor freed is pymalloc's or another mmap's;
- `pymalloc`: pymalloc's arenas (allocated, reclaimed, high-water, current) and the MiB in their
  used and free blocks, from sys._debugmallocstats(); `gc`: the collector's counts and stats;
- `traced`: tracemalloc's current and peak of Python's allocations (its own overhead apart);
- `objects`: gc-tracked objects in all and the counts of types whose names hint at per-endpoint or
  per-call state (channels, calls, tasks, breakers, endpoint stats), and the loop's tasks.

Nothing here is imported by the sidecar: this is a stand-in for `python -m sidecar` that the soak
(`bench/soak.py --probe`) passes to local_stack as the sidecar's command.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import gc
import json
import os
import pathlib
import re
import signal
import sys
import threading
import time
import tracemalloc
from types import FrameType
from typing import Any

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from smaps import breakdown  # noqa: E402

MIB = 1024 * 1024
# Type names counted in each probe: state a leak per departed endpoint or per call would pile up.
WATCHED_TYPES = re.compile(
    r"Channel|Call$|Task$|Breaker|EndpointStats|Endpoint$|Route$|Snapshot|_Record|Held|Span|Future"
)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost",
    )]  # fmt: skip


_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.mallinfo2.restype = _Mallinfo2
_libc.malloc_trim.argtypes = [ctypes.c_size_t]
_libc.fopen.restype = ctypes.c_void_p
_libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libc.fclose.argtypes = [ctypes.c_void_p]
_libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]


def _status() -> dict[str, float]:
    out: dict[str, float] = {}
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 2)
    return out


def _mallinfo(scratch: pathlib.Path) -> dict[str, float]:
    mi = _libc.mallinfo2()
    fp = _libc.fopen(str(scratch).encode(), b"w")
    _libc.malloc_info(0, fp)
    _libc.fclose(fp)
    xml = scratch.read_text()
    return {
        "in_use": round((mi.uordblks + mi.hblkhd) / MIB, 2),
        "mmapped": round(mi.hblkhd / MIB, 2),
        "free_held": round(mi.fordblks / MIB, 2),
        "arenas": len(re.findall(r"<heap nr=", xml)),
    }


_PYMALLOC_FIELDS = {
    "# arenas allocated total": "arenas_allocated_total",
    "# arenas reclaimed": "arenas_reclaimed",
    "# arenas highwater mark": "arenas_highwater",
    "# arenas allocated current": "arenas_current",
    "# bytes in allocated blocks": "allocated_mib",
    "# bytes in available blocks": "available_mib",
}


def _pymalloc(scratch: pathlib.Path) -> dict[str, float]:
    """pymalloc's arenas (1 MiB each) and the bytes in their blocks, from sys._debugmallocstats(),
    which writes to C's stderr: fd 2 points at `scratch` meanwhile."""
    saved = os.dup(2)
    try:
        with scratch.open("w") as f:
            os.dup2(f.fileno(), 2)
            sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    out: dict[str, float] = {}
    for line in scratch.read_text().splitlines():
        key, _, value = line.partition("=")
        name = _PYMALLOC_FIELDS.get(key.strip())
        if name:
            n = int(value.strip().replace(",", ""))
            out[name] = round(n / MIB, 2) if name.endswith("_mib") else n
    return out


def _objects(loop: asyncio.AbstractEventLoop | None) -> dict[str, Any]:
    counts: collections.Counter[str] = collections.Counter()
    objs = gc.get_objects()
    for o in objs:
        name = type(o).__name__
        if WATCHED_TYPES.search(name):
            counts[f"{type(o).__module__}.{name}"] += 1
    out: dict[str, Any] = {"gc_objects": len(objs), "watched": dict(sorted(counts.items()))}
    del objs
    if loop is not None:
        out["loop_tasks"] = len(asyncio.all_tasks(loop))
    out["threads"] = threading.active_count()
    out["os_threads"] = len(os.listdir("/proc/self/task"))
    out["fds"] = len(os.listdir("/proc/self/fd"))
    return out


class Probe:
    def __init__(self, out: pathlib.Path) -> None:
        self._out = out
        self._n = 0
        self._t0 = time.monotonic()

    def install(self) -> None:
        signal.signal(signal.SIGUSR1, self._on_signal)
        signal.signal(signal.SIGUSR2, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between two bytecodes of whatever the loop was doing, so the loop
        # (if one runs) is this thread's running loop; the probe stalls it for a moment.
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.probe(trim=signum == signal.SIGUSR2, loop=loop)

    def probe(self, *, trim: bool, loop: asyncio.AbstractEventLoop | None) -> None:
        self._n += 1
        row: dict[str, Any] = {"n": self._n, "t": round(time.monotonic() - self._t0, 1)}
        row["objects"] = _objects(loop)
        # No gc.collect() here: the probe reads and never frees, so a probed run's RSS is the
        # sidecar's own. The collector's own counts say whether cyclic garbage piles up.
        row["gc"] = {"counts": list(gc.get_count()), "stats": gc.get_stats(), "garbage": len(gc.garbage)}
        row["pymalloc"] = _pymalloc(self._out / "pymalloc.txt")
        row["status"] = _status()
        row["smaps"] = breakdown(os.getpid())
        row["mallinfo"] = _mallinfo(self._out / "malloc_info.xml")
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            row["traced"] = {
                "current": round(current / MIB, 2), "peak": round(peak / MIB, 2),
                "overhead": round(tracemalloc.get_tracemalloc_memory() / MIB, 2),
            }  # fmt: skip
            snap = tracemalloc.take_snapshot()
            snap.dump(str(self._out / f"snap-{self._n:04d}.tm"))
            del snap
        if trim:
            before = _status()["VmRSS"]
            _libc.malloc_trim(0)
            after = _status()
            row["trim"] = {
                "rss_before": before, "rss_after": after["VmRSS"],
                "released": round(before - after["VmRSS"], 2), "smaps_after": breakdown(os.getpid()),
            }  # fmt: skip
        with (self._out / "probe.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")


def wrap(args: argparse.Namespace, rest: list[str]) -> None:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.frames:
        tracemalloc.start(args.frames)
    Probe(out).install()
    sys.path.insert(0, str(REPO))
    from sidecar.cli import main as sidecar_main

    sidecar_main(rest)


def diff(args: argparse.Namespace) -> None:
    """What grew between two snapshots: by line, and the top growers' tracebacks."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]  # fmt: skip
    a = tracemalloc.Snapshot.load(args.a).filter_traces(ignore)
    b = tracemalloc.Snapshot.load(args.b).filter_traces(ignore)
    total = sum(s.size_diff for s in b.compare_to(a, "filename"))
    print(f"traced Python memory: {total / 1024:+.1f} KiB from {args.a} to {args.b}\n")
    print(f"top {args.top} by line (size diff, count diff):")
    for stat in b.compare_to(a, "lineno")[: args.top]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d}  {frame.filename}:{frame.lineno}")
    print(f"\ntop {args.tracebacks} by traceback:")
    for stat in b.compare_to(a, "traceback")[: args.tracebacks]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d}")
        for line in stat.traceback.format(limit=args.frames):
            print(f"      {line}")


def main() -> None:
    argv = sys.argv[1:]
    rest: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, rest = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("wrap", help="run ai-sidecar with the arguments after --, probed on signals")
    w.add_argument("--out", required=True, help="directory for probe.jsonl and snapshots")
    w.add_argument("--frames", type=int, default=8, help="tracemalloc frames per trace; 0: no tracemalloc")
    d = sub.add_parser("diff", help="compare two tracemalloc snapshots")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--top", type=int, default=25)
    d.add_argument("--tracebacks", type=int, default=8)
    d.add_argument("--frames", type=int, default=8)
    args = parser.parse_args(argv)
    if args.command == "wrap":
        wrap(args, rest)
    else:
        diff(args)


if __name__ == "__main__":
    main()
