"""The relay's bounds in one place (sidecar/h2/limits.py): defaults, validation, and that they are applied."""

import dataclasses

import pytest

from sidecar.h2 import frames as f
from sidecar.h2 import limits
from sidecar.h2.limits import Limits
from sidecar.h2.reader import FrameReader
from sidecar.ingress.relay.health import LocalHealth


def test_each_default_is_its_named_constant():
    for field in dataclasses.fields(Limits):
        assert getattr(Limits(), field.name) == getattr(limits, field.name.upper()), field.name


@pytest.mark.parametrize("value", [0, -1])
def test_a_bound_that_is_not_positive_is_refused_by_name(value):
    with pytest.raises(ValueError, match=r"Limits\.max_block must be positive"):
        Limits(max_block=value)


def test_a_smaller_block_bound_is_the_one_applied():
    raw = f.frame(f.HEADERS, 0, 3, b"abc") + f.frame(f.CONTINUATION, f.END_HEADERS, 3, b"x" * 100)

    def read(max_block: int = limits.MAX_BLOCK) -> None:
        FrameReader(
            up=range(256), counters={}, forward=lambda b: None, handle=lambda fr: None,
            credit=lambda n: None, max_frame=16384, max_block=max_block,
        ).read(raw)  # fmt: skip

    read()
    with pytest.raises(f.ConnectionError_, match="too large"):
        read(max_block=100)


def test_the_health_bounds_are_the_ones_given():
    local = LocalHealth(frozenset({""}), max_request=4, max_streams=2)
    assert local.open(1, "/grpc.health.v1.Health/Check") and local.open(3, "/grpc.health.v1.Health/Check")
    assert not local.open(5, "/grpc.health.v1.Health/Check")
    local.data(1, b"1234")
    with pytest.raises(f.ConnectionError_, match="too large"):
        local.data(1, b"5")


def test_limit_hits_count_by_kind_and_a_snapshot_is_a_copy():
    hits = limits.LimitHits()
    assert hits.snapshot() == {}
    hits.hit("rapid_reset")
    hits.hit("rapid_reset")
    hits.hit("ping_flood")
    seen = hits.snapshot()
    assert seen == {"rapid_reset": 2, "ping_flood": 1}
    hits.hit("ping_flood")
    assert seen["ping_flood"] == 1 and hits.snapshot()["ping_flood"] == 2


def test_a_budget_allows_its_limit_per_window_and_starts_again_in_the_next():
    budget = limits.Budget(3, 1.0)
    assert [budget.spend(0.0) for _ in range(4)] == [True, True, True, False]
    assert not budget.spend(0.99)  # still the first window
    assert [budget.spend(1.0) for _ in range(4)] == [True, True, True, False]
    assert budget.spend(5.0)
