"""bench/soak_verdicts.py: a leak fails whatever the warm-up; a plateau reached during it passes."""

import importlib.util
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PATH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "soak_verdicts.py"
_spec = importlib.util.spec_from_file_location("soak_verdicts", PATH)
assert _spec is not None and _spec.loader is not None
soak_verdicts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak_verdicts)

RUN, WARMUP, WINDOW = 1800, 600, 300


def run(rss_at: Callable[[int], float], fds_at: Callable[[int], int] = lambda t: 30) -> list[dict[str, Any]]:
    return [{"t": float(t), "p": {"rss_mib": rss_at(t), "fds": fds_at(t)}} for t in range(0, RUN + 1, 10)]


def judged(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = soak_verdicts.verdicts(samples, ["p"], WARMUP, WINDOW)["p"]
    return out


def test_a_plateau_reached_during_the_warm_up_passes_though_it_grew_from_the_start():
    # The high-water mark of the first bursts and restarts: +15 % by minute 8, flat after.
    v = judged(run(lambda t: 60.0 + min(t, 480) / 480 * 9.0))
    assert v["rss_ok"], v
    assert v["rss_growth"] == 0.0 and abs(v["rss_trend"]) < 1e-9
    assert v["rss_growth_from_2min"] > 0.05  # what the soak judged before the warm-up was stated


def test_a_steady_leak_fails_on_its_trend_even_where_the_windows_after_warm_up_show_under_5_percent():
    v = judged(run(lambda t: 60.0 + t / RUN * 6.0))  # +10 % per half hour, linear
    assert v["rss_growth"] < 0.05, v  # the window medians alone would let it through
    assert v["rss_trend"] > 0.05 and not v["rss_ok"], v


def test_growth_after_the_warm_up_fails():
    v = judged(run(lambda t: 60.0 if t < 1400 else 64.0))  # a late step of +6.7 %, then flat
    assert v["rss_growth"] > 0.05 and not v["rss_ok"], v


def test_descriptors_that_grow_fail_and_fewer_pass():
    assert not judged(run(lambda t: 60.0, lambda t: 30 + t // 120))["fds_ok"]  # one per restart
    assert not judged(run(lambda t: 60.0, lambda t: 30 if t < 1200 else 31))["fds_ok"]  # one, for good
    assert judged(run(lambda t: 60.0, lambda t: 31 if t < 900 else 30))["fds_ok"]


def test_a_descriptor_open_or_closed_now_and_then_is_no_growth():
    # A registry fetch or a reconnect under way at the moment of a sample: 31 in every third sample
    # late in the run, none in the first window.
    v = judged(run(lambda t: 60.0, lambda t: 31 if t > 1200 and (t // 10) % 3 == 0 else 30))
    assert v["fds_ok"] and (v["fds_first"], v["fds_last"]) == (30, 30), v
    # A connection closed and not yet opened again, once in the first window.
    v = judged(run(lambda t: 60.0, lambda t: 29 if t == 700 else 30))
    assert v["fds_ok"] and (v["fds_first"], v["fds_last"]) == (30, 30), v


@dataclass
class Call:
    at: float
    took: float


def test_call_windows_count_the_most_calls_in_flight_and_the_p99_of_each_interval():
    samples: list[dict[str, Any]] = [{"t": float(t)} for t in range(0, 40, 10)]
    calls = [Call(100.0 + 12 + i * 0.01, 0.5) for i in range(100)]  # 50 at once from t=12.5 s
    calls.append(Call(100.0 + 25, 3.0))  # one slow call ending at t=28 s
    soak_verdicts.call_windows(calls, samples, 100.0)
    assert [s["calls"]["peak_in_flight"] for s in samples] == [0, 0, 50, 1]
    assert [s["calls"]["done"] for s in samples] == [0, 0, 100, 1]
    assert samples[2]["calls"]["p99_ms"] == 500.0 and samples[3]["calls"]["p99_ms"] == 3000.0
