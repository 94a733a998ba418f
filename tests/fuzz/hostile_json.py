"""Hypothesis strategies for hostile OIP REST inference bodies: what a careless or malicious client sends.

Each drawn Request says which kind of hostility it is (`why` starts with one of KINDS):
nesting, odd numbers, duplicate keys, encodings, truncation, sizes beyond limits, wrong types
at every field, and broken binary tensor extension framing. Bodies start from a valid request
for the digits model (INPUT0 FP32 [n, 64]), so the hostility is what makes them wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

KINDS = ("nesting", "numbers", "duplicate", "encoding", "truncation", "size", "wrong-type", "binary")
# Beyond the sidecar's max_message_bytes in test_rest_fuzz.py (256 KiB).
OVER_LIMIT = 300 * 1024


@dataclass(frozen=True)
class Request:
    why: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def valid(rows: int = 1) -> dict[str, Any]:
    return {
        "id": "fuzz",
        "inputs": [{"name": "INPUT0", "shape": [rows, 64], "datatype": "FP32", "data": [1.0] * (rows * 64)}],
        "outputs": [{"name": "LABEL"}],
        "parameters": {"p": 1},
    }


def _text(value: Any) -> bytes:
    return json.dumps(value).encode()


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def nesting(draw: st.DrawFn) -> Request:
    depth = draw(st.sampled_from([2, 64, 1023, 1024, 1025, 5000, 100_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(["top", "data", "shape", "parameters"]))
    if where == "top":
        return Request(f"nesting: {depth} at the top", nested.encode())
    body = valid()
    marker = "__NESTED__"
    if where == "data":
        body["inputs"][0]["data"] = marker
    elif where == "shape":
        body["inputs"][0]["shape"] = [marker, 64]
    else:
        body["parameters"] = {"x": marker}
    return Request(f"nesting: {depth} in {where}", _text(body).replace(b'"__NESTED__"', nested.encode()))


ODD_NUMBERS = [
    "1e400", "-1e400", "1e-400", "-0", "-0.0", "1E+308", "3.5e38", "-3.5e38", "4.9e-324",
    "123456789012345678901234567890", "18446744073709551616", "-9223372036854775809",
    "0.1000000000000000055511151231257827", "01", "1.", ".5", "+1", "NaN", "Infinity",
    "-Infinity", "0x10", "1e", "--1", "1_000", "\u0661",
]


@st.composite
def numbers(draw: st.DrawFn) -> Request:
    odd = draw(st.sampled_from(ODD_NUMBERS))
    where = draw(st.sampled_from(["data", "shape", "parameter", "binary_data_size"]))
    body = valid()
    marker = "__ODD__"
    if where == "data":
        k = draw(st.integers(0, 63))
        body["inputs"][0]["data"][k] = marker
    elif where == "shape":
        body["inputs"][0]["shape"][draw(st.integers(0, 1))] = marker
    elif where == "parameter":
        body["parameters"]["p"] = marker
    else:
        body["inputs"][0]["parameters"] = {"binary_data_size": marker}
        del body["inputs"][0]["data"]
    return Request(f"numbers: {odd} in {where}", _text(body).replace(b'"__ODD__"', odd.encode()))


@st.composite
def duplicate(draw: st.DrawFn) -> Request:
    keys = ["inputs", "id", "outputs", "parameters", "name", "shape", "datatype", "data"]
    key = draw(st.sampled_from(keys))
    other = draw(JSON_VALUES)
    text = _text(valid()).decode()
    needle = f'"{key}": '
    at = text.index(needle)
    duplicated = text[:at] + needle + json.dumps(other) + ", " + text[at:]
    return Request(f"duplicate: {key}", duplicated.encode())


@st.composite
def encoding(draw: st.DrawFn) -> Request:
    text = json.dumps(valid(), ensure_ascii=False).replace('"fuzz"', '"fü✓zz"')
    how = draw(
        st.sampled_from(
            ["utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig", "invalid-utf8", "lone-surrogate",
             "nul", "overlong"]
        )
    )
    if how == "invalid-utf8":
        body = text.encode().replace("ü".encode(), b"\xff\xfe")
    elif how == "lone-surrogate":
        body = text.replace("fü✓zz", "\\ud800").encode()
    elif how == "nul":
        body = text.encode().replace(b'"fu', b'"\x00u').replace("ü".encode(), b"\x00")
    elif how == "overlong":
        body = text.encode().replace(b'"id"', b'"\xc0\xa9d"')
    else:
        body = text.encode(how, errors="replace")
    return Request(f"encoding: {how}", body)


@st.composite
def truncation(draw: st.DrawFn) -> Request:
    body = _text(valid(draw(st.integers(1, 3))))
    cut = draw(st.integers(0, len(body) - 1))
    return Request(f"truncation: at {cut} of {len(body)}", body[:cut])


@st.composite
def size(draw: st.DrawFn) -> Request:
    how = draw(st.sampled_from(["huge-shape", "product-overflow", "over-limit", "many-inputs", "long-name",
                                "many-dims", "big-count-empty-data", "zero-rows"]))
    body = valid()
    tensor = body["inputs"][0]
    if how == "huge-shape":
        tensor["shape"] = [2**62, 64]
    elif how == "product-overflow":
        tensor["shape"] = [2**40, 2**40, 2**40]
    elif how == "over-limit":
        return Request("size: over the limit", b'{"inputs": [' + b" " * OVER_LIMIT + b"]}")
    elif how == "many-inputs":
        body["inputs"] = [dict(tensor, name=f"in{i}") for i in range(draw(st.sampled_from([100, 2000])))]
    elif how == "long-name":
        tensor["name"] = "n" * draw(st.sampled_from([1000, 100_000]))
    elif how == "many-dims":
        tensor["shape"] = [1] * draw(st.sampled_from([64, 10_000]))
        tensor["data"] = [1.0]
    elif how == "big-count-empty-data":
        tensor["shape"] = [10**6, 64]
        tensor["data"] = []
    else:
        tensor["shape"] = [0, 64]
        tensor["data"] = []
    return Request(f"size: {how}", _text(body))


# Every field of a valid request, as a path of keys and indices.
FIELDS: list[tuple[Any, ...]] = [
    (), ("id",), ("inputs",), ("outputs",), ("parameters",), ("parameters", "p"),
    ("inputs", 0), ("inputs", 0, "name"), ("inputs", 0, "shape"), ("inputs", 0, "shape", 0),
    ("inputs", 0, "datatype"), ("inputs", 0, "data"), ("inputs", 0, "data", 0), ("inputs", 0, "parameters"),
    ("outputs", 0), ("outputs", 0, "name"), ("outputs", 0, "parameters"),
]


@st.composite
def wrong_type(draw: st.DrawFn) -> Request:
    path = draw(st.sampled_from(FIELDS))
    replacement = draw(JSON_VALUES)
    if not path:
        return Request("wrong-type: the body", _text(replacement))
    body = valid()
    if path[-1] == "parameters" and path[0] != "parameters":
        body["inputs"][0]["parameters"] = {}
        body["outputs"][0]["parameters"] = {}
    parent: Any = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    return Request(f"wrong-type: {'.'.join(map(str, path))}", _text(body))


@st.composite
def binary(draw: st.DrawFn) -> Request:
    rows = draw(st.integers(0, 2))
    declared = draw(st.sampled_from([rows * 256, rows * 256 + 4, max(rows * 256 - 4, 0), 0, 2**62]))
    header = {
        "inputs": [{"name": "INPUT0", "shape": [rows, 64], "datatype": "FP32",
                    "parameters": {"binary_data_size": declared}}],
        "parameters": {"binary_data_output": draw(st.sampled_from([True, False, 1, "yes"]))},
    }
    text = _text(header)
    tail = b"\x00" * draw(st.sampled_from([rows * 256, rows * 256 + 1, max(rows * 256 - 1, 0), 0]))
    length = draw(
        st.sampled_from([str(len(text)), str(len(text) + 1), str(len(text) - 1), "0", "-1", "x", "1e3",
                         str(len(text) + len(tail) + 10), " " + str(len(text)), "99999999999999999999999"])
    )
    return Request(f"binary: size {declared}, tail {len(tail)}, header {length!r}", text + tail,
                   {"Inference-Header-Content-Length": length, "Content-Type": "application/octet-stream"})


def requests() -> st.SearchStrategy[Request]:
    return st.one_of(
        nesting(), numbers(), duplicate(), encoding(), truncation(), size(), wrong_type(), binary()
    )
