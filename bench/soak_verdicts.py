"""The soak's verdicts on memory and descriptors over time, and the calls behind each sample. Knows
nothing about processes, the sidecar or how the samples were taken.

A sample is `{"t": seconds since the measured load began, NAME: {"rss_mib": ..., "fds": ...}, ...}`.

Why RSS is judged after a warm-up, and on a trend as well:

- A CPython + grpc process's RSS is the allocator's high-water mark, not its live data. glibc keeps
  freed chunks in its arenas, and pymalloc frees a 1 MiB arena only when every object in it is
  gone, so a burst of calls in flight (on a loaded machine, a stall of a second or two at 200
  calls/s) raises RSS to a level that then stays, although the calls, their buffers and their
  tasks are gone. Those levels are reached early, on the first bursts and the first restarts
  (new channels, the first drain, code paths first taken), and later bursts reuse them. A burst
  later in the run that is larger than any before raises RSS again, and the verdict counts that as
  growth: RSS alone cannot tell it from a leak (bench/memprobe.py's bytes in use can).
- So the baseline is the median RSS of a window that starts after `warmup` (the soak's default:
  10 minutes of a 30-minute run, 5 restarts), against the median of the run's last window. That
  asks what the issue means: does memory keep growing in a process that has seen its working set?
- A leak does not hide behind the warm-up: it grows with calls or restarts, so it grows all
  through the run. The least-squares slope over the measured part, taken over the whole run's
  length, is judged too (the "trend"); a steady 10 % per half hour fails it even where the
  window medians after warm-up show under 5 %.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from typing import Any, Protocol

LIMIT = 0.05  # RSS growth allowed, issue 13


class CallRecord(Protocol):
    @property
    def at(self) -> float: ...
    @property
    def took(self) -> float: ...


def growth(samples: list[dict[str, Any]], name: str, start: float, window: float) -> dict[str, Any]:
    """RSS from the median of the window that starts at `start` to the median of the run's last window."""
    end = samples[-1]["t"]
    first = [s[name]["rss_mib"] for s in samples if start <= s["t"] < start + window]
    last = [s[name]["rss_mib"] for s in samples if s["t"] > end - window]
    a, b = statistics.median(first), statistics.median(last)
    return {"from": start, "first_mib": a, "last_mib": b, "growth": round(b / a - 1, 4)}


def verdicts(samples: list[dict[str, Any]], names: list[str], warmup: float, window: float) -> dict[str, Any]:
    measured = [s for s in samples if s["t"] >= warmup]
    end = samples[-1]["t"]
    out: dict[str, Any] = {}
    for name in names:
        after = growth(samples, name, warmup, window)
        # The least-squares trend over the measured part, as growth over the whole run: a leak that
        # grows with calls or restarts grows steadily, so it shows here whatever the warm-up.
        fit = statistics.linear_regression([s["t"] for s in measured], [s[name]["rss_mib"] for s in measured])
        trend = fit.slope * end / after["first_mib"]
        # The median of each window: a socket open at the moment of a sample (a registry fetch, a
        # reconnect) adds one now and then, one between a close and the next open takes one away,
        # while a leaked descriptor raises every later sample.
        fd_start = statistics.median_low([s[name]["fds"] for s in measured if s["t"] < warmup + window])
        fd_end = statistics.median_low([s[name]["fds"] for s in measured if s["t"] > end - window])
        out[name] = {
            "rss_first_mib": after["first_mib"], "rss_last_mib": after["last_mib"],
            "rss_growth": after["growth"], "rss_trend": round(trend, 4),
            "rss_slope_mib_per_10min": round(fit.slope * 600, 3),
            "rss_ok": after["growth"] < LIMIT and trend < LIMIT,
            "rss_peak_mib": max(s[name]["rss_mib"] for s in samples),
            # The same growth measured from the end of the first restart's window, as the soak did before
            # the warm-up was stated: for comparison, not judged.
            "rss_growth_from_2min": growth(samples, name, 120, window)["growth"],
            "fds_first": fd_start, "fds_last": fd_end, "fds_ok": fd_end <= fd_start,
        }  # fmt: skip
    return out


def call_windows(records: Sequence[CallRecord], samples: list[dict[str, Any]], t0: float) -> None:
    """Adds to each sample the calls of the interval since the one before: the most in flight at once
    (from the load generator's side: due time to answer) and p99 latency. The allocator's high-water
    mark follows the first; the machine's other load drives it through the second."""
    events = sorted([(r.at - t0, 1) for r in records] + [(r.at + r.took - t0, -1) for r in records])
    bounds = [s["t"] for s in samples]
    peaks = [0] * len(samples)
    i = in_flight = 0
    for at, step in events:
        while i < len(bounds) - 1 and at > bounds[i]:
            i += 1
        in_flight += step
        peaks[i] = max(peaks[i], in_flight)
    by_end = sorted(records, key=lambda r: r.at + r.took)
    ends = [r.at + r.took - t0 for r in by_end]
    for n, s in enumerate(samples):
        lo = bisect.bisect_right(ends, bounds[n - 1]) if n else 0
        took = sorted(r.took for r in by_end[lo : bisect.bisect_right(ends, s["t"])])
        s["calls"] = {
            "peak_in_flight": peaks[n], "done": len(took),
            "p99_ms": round(1000 * took[min(len(took) - 1, int(len(took) * 0.99))], 1) if took else None,
        }  # fmt: skip
