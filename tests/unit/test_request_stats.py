"""RequestStats and Recorder: buckets, sums and counts as plain numbers, labels bounded, the cache bounded."""

import math

import pytest

from sidecar.core.status import Code
from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.request_stats import RequestStats

INFER = "/inference.GRPCInferenceService/ModelInfer"
READY = "/inference.GRPCInferenceService/ModelReady"
BOUNDS = (0.005, 0.1, 1.0)


def make_stats(*, limit: int = 100, max_series: int = 2000) -> RequestStats:
    return RequestStats(
        MethodLabels([INFER, READY], limit=limit), BoundedNames(["digits"], limit=limit), BOUNDS,
        max_series=max_series,
    )  # fmt: skip


def table(stats: RequestStats) -> dict[tuple[str, ...], tuple[list[int], float]]:
    return {key: (buckets, total) for key, buckets, total in stats.snapshot()}


def test_a_duration_counts_in_the_first_bucket_whose_bound_it_does_not_exceed():
    stats = make_stats()
    record = stats.recorder("ingress")
    # On a bound counts in that bucket (Prometheus' `le`); past the last bound, in +Inf.
    for seconds in (0.0, 0.005, 0.0051, 0.1, 0.5, 1.0, 1.5, 60.0):
        record(INFER, "digits", Code.OK, seconds)
    key = ("ingress", "inference.GRPCInferenceService", "ModelInfer", "digits", "OK")
    buckets, total = table(stats)[key]
    assert buckets == [2, 2, 2, 2]
    assert total == pytest.approx(0.0 + 0.005 + 0.0051 + 0.1 + 0.5 + 1.0 + 1.5 + 60.0)
    assert stats.bounds == (*BOUNDS, math.inf)


def test_each_direction_method_model_and_code_is_its_own_series_in_the_order_first_seen():
    stats = make_stats()
    stats.recorder("ingress")(INFER, "digits", Code.OK, 0.01)
    stats.recorder("egress")(INFER, "digits", Code.OK, 0.01)
    stats.recorder("ingress")(INFER, "digits", Code.NOT_FOUND, 0.01)
    stats.recorder("ingress")(READY, "", Code.OK, 0.01)
    stats.recorder("ingress")("no-slash", "", Code.UNIMPLEMENTED, 0.01)
    stats.recorder("ingress")(INFER, "digits", Code.OK, 0.01)
    assert [key for key, _, _ in stats.snapshot()] == [
        ("ingress", "inference.GRPCInferenceService", "ModelInfer", "digits", "OK"),
        ("egress", "inference.GRPCInferenceService", "ModelInfer", "digits", "OK"),
        ("ingress", "inference.GRPCInferenceService", "ModelInfer", "digits", "NOT_FOUND"),
        ("ingress", "inference.GRPCInferenceService", "ModelReady", "", "OK"),
        ("ingress", "", "no-slash", "", "UNIMPLEMENTED"),
    ]
    assert [sum(b) for _, b, _ in stats.snapshot()] == [2, 1, 1, 1, 1]


def test_one_recorder_per_direction():
    stats = make_stats()
    assert stats.recorder("ingress") is stats.recorder("ingress")
    assert stats.recorder("ingress") is not stats.recorder("egress")


def test_hostile_names_fold_into_other_and_do_not_grow_the_cache():
    stats = make_stats()
    record = stats.recorder("ingress")
    for i in range(10_000):
        record(f"/evil.S{i}/M{i}", f"model-{i}", Code.UNIMPLEMENTED, 0.001)
    series = table(stats)
    # 100 admitted method names (each with the model admitted alongside it), then one "other" series.
    assert len(series) == 101
    assert series[("ingress", "other", "other", "other", "UNIMPLEMENTED")][0] == [9_900, 0, 0, 0]
    assert sum(sum(b) for b, _ in series.values()) == 10_000
    # Only admitted names are remembered: at most the 100 admitted ones, not the 9,900 others.
    assert len(record._cache) == 100


def test_a_name_refused_once_is_refused_every_time_and_an_admitted_one_keeps_its_label():
    stats = make_stats(limit=1)
    record = stats.recorder("ingress")
    record("/a.S/M", "", Code.OK, 0.01)  # the one name beyond the known ones
    record("/b.S/M", "", Code.OK, 0.01)  # no room left: "other"
    record("/b.S/M", "", Code.OK, 0.01)
    record("/a.S/M", "", Code.OK, 0.01)
    assert {key: sum(b) for key, b, _ in stats.snapshot()} == {
        ("ingress", "a.S", "M", "", "OK"): 2,
        ("ingress", "other", "other", "", "OK"): 2,
    }


def test_past_max_series_label_sets_share_one_other_series_per_direction_and_code():
    stats = make_stats(max_series=10)
    for i in range(50):
        for code in (Code.OK, Code.INTERNAL):
            stats.recorder("ingress")(INFER, f"m{i}", code, 0.001)
    stats.recorder("egress")(INFER, "digits", Code.OK, 0.001)
    # A label set that got its own series before the cap keeps it.
    stats.recorder("ingress")(INFER, "m0", Code.OK, 0.001)
    series = {key: sum(b) for key, b, _ in stats.snapshot()}
    assert len(series) == 13  # 10 kept apart, one "other" per code, and egress's "other"
    assert series[("ingress", "other", "other", "other", "OK")] == 45
    assert series[("ingress", "other", "other", "other", "INTERNAL")] == 45
    assert series[("egress", "other", "other", "other", "OK")] == 1
    assert series[("ingress", "inference.GRPCInferenceService", "ModelInfer", "m0", "OK")] == 2
    assert sum(series.values()) == 102


def test_a_snapshot_is_a_copy():
    stats = make_stats()
    record = stats.recorder("ingress")
    record(INFER, "digits", Code.OK, 0.01)
    ((key, buckets, total),) = stats.snapshot()
    record(INFER, "digits", Code.OK, 0.01)
    assert (buckets, total) == ([0, 1, 0, 0], 0.01)
    assert table(stats)[key] == ([0, 2, 0, 0], 0.02)


def test_bounds_must_be_sorted():
    with pytest.raises(ValueError, match="sorted"):
        RequestStats(MethodLabels(), BoundedNames(), (1.0, 0.5), max_series=10)
