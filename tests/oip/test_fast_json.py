"""Unit tests for sidecar.oip.fast_json: strict parsing, and no non-finite number written as null."""

from __future__ import annotations

import pytest

from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.oip import fast_json


def blame(message: str) -> SidecarError:
    return SidecarError(Code.INVALID_ARGUMENT, message)


@pytest.mark.parametrize(
    "text",
    [b"", b"[1,", b"[NaN]", b"[Infinity]", b'"\\ud800"', b'"\xff"', b"[1e400]",
     b"[" * 1025 + b"]" * 1025,
     # orjson 3.8 read this without complaint, and crashed the process at 10^6.
     b"[" * 100_000 + b"]" * 100_000],
)
def test_what_is_not_strict_json_is_the_callers_error(text):
    with pytest.raises(SidecarError) as e:
        fast_json.loads(text, blame)
    assert e.value.code is Code.INVALID_ARGUMENT and "not valid JSON" in e.value.message


def test_loads_takes_a_view_and_keeps_the_last_duplicate():
    assert fast_json.loads(memoryview(b'xx{"a": 1, "a": 2}')[2:], blame) == {"a": 2}


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"outputs": [{"data": [1.0, float("nan")]}]}, "outputs[0].data[1]"),
        ({"outputs": [{"data": [[0.5], [float("-inf")]]}]}, "outputs[0].data[1][0]"),
        ({"parameters": {"p": float("inf")}}, "parameters.p"),
    ],
)
def test_a_non_finite_number_is_refused_by_where_it_is(value, where):
    with pytest.raises(SidecarError) as e:
        fast_json.dumps_finite(value, "ask for binary")
    assert e.value.code is Code.UNIMPLEMENTED
    assert e.value.message.startswith(where + " is not a finite number")
    assert "ask for binary" in e.value.message


def test_a_null_that_is_text_is_no_alarm():
    value: dict[str, object] = {"id": "null", "outputs": [{"data": ["null", 1.5]}]}
    assert fast_json.dumps_finite(value, "") == b'{"id":"null","outputs":[{"data":["null",1.5]}]}'
