"""The relay's bounds in one place (sidecar/h2/limits.py): defaults, validation, and that they are applied."""

import dataclasses

import pytest

from sidecar.h2 import frames as f
from sidecar.h2 import limits
from sidecar.h2.limits import Limits
from sidecar.h2.reader import header_block
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
    assert header_block(raw, 0, f.HEADER_LEN + 3, 16384) is not None
    with pytest.raises(f.ConnectionError_, match="too large"):
        header_block(raw, 0, f.HEADER_LEN + 3, 16384, max_block=100)


def test_the_health_bounds_are_the_ones_given():
    local = LocalHealth(frozenset({""}), max_request=4, max_streams=2)
    assert local.open(1, "/grpc.health.v1.Health/Check") and local.open(3, "/grpc.health.v1.Health/Check")
    assert not local.open(5, "/grpc.health.v1.Health/Check")
    local.data(1, b"1234")
    with pytest.raises(f.ConnectionError_, match="too large"):
        local.data(1, b"5")
