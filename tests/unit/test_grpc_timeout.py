"""grpc-timeout values (gRPC over HTTP/2): parsed from callers, written for the next hop."""

import pytest

from sidecar.core.deadline import grpc_timeout, grpc_timeout_value


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1H", 3600.0), ("2M", 120.0), ("5S", 5.0), ("500m", 0.5), ("250u", 250e-6), ("7n", 7e-9),
     ("0m", 0.0), ("99999999S", 99999999.0)],
)  # fmt: skip
def test_well_formed_values(value, seconds):
    assert grpc_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["", "S", "5", "5s", "5 S", "-5S", "+5S", "1.5S", "123456789m", "\u0663S", "5SS"]
)
def test_malformed_values_are_none(value):
    assert grpc_timeout(value) is None


@pytest.mark.parametrize(
    ("seconds", "value"),
    [(0.0, "0n"), (-1.0, "0n"), (0.0999, "99900000n"), (0.5, "500000u"), (2.5, "2500000u"),
     (150.0, "150000m"), (10**6, "1000000S"), (10**9, "16666666M"), (10**13, "99999999H")],
)  # fmt: skip
def test_values_written_use_the_finest_unit_that_fits(seconds, value):
    assert grpc_timeout_value(seconds) == value


@pytest.mark.parametrize("seconds", [0.001, 0.123456, 1.0, 59.9, 3600.0, 86400.0 * 30])
def test_written_values_read_back_no_longer_than_given(seconds):
    back = grpc_timeout(grpc_timeout_value(seconds))
    assert back is not None and back <= seconds and back == pytest.approx(seconds, rel=1e-6)
