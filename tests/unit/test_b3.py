import pytest

from sidecar.telemetry import b3
from sidecar.telemetry.b3 import B3, Sampling

TRACE = "463ac35c9f6413ad48485a3953bb6124"
TRACE64 = "a3ce929d0e0e4736"
SPAN = "0020000000000001"
PARENT = "00f067aa0ba902b7"


def test_single_header_with_every_field():
    expected = B3(int(TRACE, 16), int(SPAN, 16), Sampling.ACCEPT)
    assert b3.parse({"b3": f"{TRACE}-{SPAN}-1-{PARENT}"}) == expected


def test_single_header_sampling_states():
    assert b3.parse({"b3": f"{TRACE}-{SPAN}-0"}) == B3(int(TRACE, 16), int(SPAN, 16), Sampling.DENY)
    assert b3.parse({"b3": f"{TRACE}-{SPAN}-d"}) == B3(int(TRACE, 16), int(SPAN, 16), Sampling.ACCEPT, True)
    # No sampling state: the receiver decides.
    assert b3.parse({"b3": f"{TRACE}-{SPAN}"}) == B3(int(TRACE, 16), int(SPAN, 16), Sampling.DEFER)


def test_a_64_bit_trace_id_is_left_padded():
    found = b3.parse({"b3": f"{TRACE64}-{SPAN}-1"})
    assert found is not None and found.trace_id is not None
    assert f"{found.trace_id:032x}" == "0" * 16 + TRACE64


@pytest.mark.parametrize(
    ("value", "sampling"), [("0", Sampling.DENY), ("1", Sampling.ACCEPT), ("d", Sampling.ACCEPT)]
)
def test_single_header_with_only_a_sampling_state(value, sampling):
    found = b3.parse({"b3": value})
    assert found is not None
    assert (found.trace_id, found.span_id, found.sampling) == (None, None, sampling)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "2",
        f"{TRACE}",
        f"{TRACE[:-1]}-{SPAN}-1",  # 31 hex digits
        f"{TRACE}-{SPAN[:-1]}-1",
        f"{TRACE}-{SPAN}-2",
        f"{TRACE}-{SPAN}-1-zz",
        f"{TRACE}-{SPAN}-1-{PARENT}-extra",
        f"{'0' * 32}-{SPAN}-1",
        f"{TRACE}-{'0' * 16}-1",
    ],
)
def test_a_malformed_single_header_is_ignored(value):
    assert b3.parse({"b3": value}) is None


def test_a_malformed_single_header_falls_back_to_the_multi_headers():
    found = b3.parse({"b3": "garbage", "x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-sampled": "1"})
    assert found == B3(int(TRACE, 16), int(SPAN, 16), Sampling.ACCEPT)


def test_the_single_header_wins_over_the_multi_headers():
    found = b3.parse({"b3": f"{TRACE}-{SPAN}-0", "x-b3-traceid": TRACE64, "x-b3-spanid": PARENT})
    assert found == B3(int(TRACE, 16), int(SPAN, 16), Sampling.DENY)


def test_multi_headers():
    headers = {"x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-parentspanid": PARENT, "x-b3-sampled": "1"}
    assert b3.parse(headers) == B3(int(TRACE, 16), int(SPAN, 16), Sampling.ACCEPT)


@pytest.mark.parametrize(
    ("extra", "sampling", "debug"),
    [
        ({"x-b3-sampled": "0"}, Sampling.DENY, False),
        ({"x-b3-sampled": "true"}, Sampling.ACCEPT, False),
        ({"x-b3-sampled": "false"}, Sampling.DENY, False),
        ({}, Sampling.DEFER, False),
        ({"x-b3-sampled": "maybe"}, Sampling.DEFER, False),
        ({"x-b3-flags": "1"}, Sampling.ACCEPT, True),
        ({"x-b3-flags": "1", "x-b3-sampled": "0"}, Sampling.ACCEPT, True),  # debug implies accept
    ],
)
def test_multi_header_sampling_states(extra, sampling, debug):
    found = b3.parse({"x-b3-traceid": TRACE, "x-b3-spanid": SPAN, **extra})
    assert found == B3(int(TRACE, 16), int(SPAN, 16), sampling, debug)


def test_multi_headers_with_a_sampling_state_but_no_ids():
    assert b3.parse({"x-b3-sampled": "0"}) == B3(None, None, Sampling.DENY)
    assert b3.parse({"x-b3-flags": "1"}) == B3(None, None, Sampling.ACCEPT, True)


def test_multi_headers_with_bad_ids_and_no_sampling_state_carry_nothing():
    assert b3.parse({"x-b3-traceid": "nothex", "x-b3-spanid": SPAN}) is None
    assert b3.parse({"x-b3-traceid": TRACE}) is None
    assert b3.parse({}) is None


def test_upper_case_hex_is_accepted():
    found = b3.parse({"b3": f"{TRACE.upper()}-{SPAN}-1"})
    assert found is not None and found.trace_id == int(TRACE, 16)
