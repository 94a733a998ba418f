"""CPU time and resident memory of a process tree from /proc. Knows nothing about the processes.

CPU time is utime + stime of every thread of every live process in the tree
(/proc/PID/stat fields 14 and 15, in clock ticks: 10 ms at the usual 100 Hz,
which over a 10 s window of thousands of calls is well under 1 µs per call).
A process that exits inside a window takes its CPU time with it; the
proxies measured here keep theirs alive.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def tree(root: int) -> list[int]:
    """`root` and its live descendants, found through /proc/PID/task/TID/children."""
    pids: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in pids:
            continue
        pids.append(pid)
        try:
            tasks = list((PROC / str(pid) / "task").iterdir())
        except OSError:  # gone since its parent listed it
            continue
        for task in tasks:
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the tree rooted at `pid`, in seconds."""
    ticks = 0
    for p in tree(pid):
        try:
            stat = (PROC / str(p) / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces or ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return ticks / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Sum of VmRSS over the tree rooted at `pid`, in bytes (shared pages counted per process)."""
    total = 0
    for p in tree(pid):
        try:
            lines = (PROC / str(p) / "status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU time all cores spent running processes, and stolen by the hypervisor, since boot.

    From /proc/stat's first line: user nice system idle iowait irq softirq steal guest
    guest_nice. Interrupt time is left out: loopback traffic is mostly softirq work that no
    process is charged for, so counting it would blame "others" for the benchmark's own calls.
    Guest time is already inside user and nice.
    """
    first = (PROC / "stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system) / CLOCK_TICKS, steal / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class Usage:
    """What one tree used over a window."""

    cpu_s: float
    rss_peak_bytes: int
    rss_end_bytes: int


class Window:
    """Measures trees between start() and stop(): CPU time used, and VmRSS sampled for its peak.

    Also the whole machine's busy and stolen CPU time, so that load from anything else that ran
    in the window (another process, the hypervisor) can be told apart from the measured trees.
    """

    def __init__(self, pids: dict[str, int], sample_interval: float = 0.05) -> None:
        self._pids = pids
        self._interval = sample_interval
        self._cpu0: dict[str, float] = {}
        self._peak = dict.fromkeys(pids, 0)
        self._machine0 = (0.0, 0.0)
        self.machine_busy_s = 0.0
        self.steal_s = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self.started = False

    def start(self) -> None:
        self._cpu0 = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._machine0 = machine_cpu_seconds()
        self.started = True
        self._sampler.start()

    def stop(self) -> dict[str, Usage]:
        cpu1 = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        busy1, steal1 = machine_cpu_seconds()
        self.machine_busy_s, self.steal_s = busy1 - self._machine0[0], steal1 - self._machine0[1]
        self._stop.set()
        self._sampler.join()
        usage: dict[str, Usage] = {}
        for name, pid in self._pids.items():
            end = rss_bytes(pid)
            usage[name] = Usage(cpu1[name] - self._cpu0[name], max(self._peak[name], end), end)
        return usage

    def _sample(self) -> None:
        while True:
            for name, pid in self._pids.items():
                self._peak[name] = max(self._peak[name], rss_bytes(pid))
            if self._stop.wait(self._interval):
                return
