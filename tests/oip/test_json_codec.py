"""Unit tests for sidecar.oip.json_codec: OIP REST JSON ⇄ protobuf, every datatype, every error."""

from __future__ import annotations

import json
import math
import struct
import time
from typing import Any, cast

import pytest

import inference.grpc_service_pb2 as pb
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.oip.json_codec import (
    DATATYPES,
    infer_request_from_json,
    infer_response_to_json,
    model_metadata_to_json,
    parameters_from_json,
    parameters_to_json,
    server_metadata_to_json,
)

# struct format per datatype: an encoder independent of the codec's array-based one.
FMT = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}

# Four values per datatype, all exactly representable, including the extremes.
SAMPLES: dict[str, list[Any]] = {
    "BOOL": [True, False, False, True],
    "UINT8": [0, 1, 254, 255],
    "UINT16": [0, 1, 65534, 65535],
    "UINT32": [0, 1, 2**32 - 2, 2**32 - 1],
    "UINT64": [0, 1, 2**64 - 2, 2**64 - 1],
    "INT8": [-128, -1, 0, 127],
    "INT16": [-(2**15), -1, 0, 2**15 - 1],
    "INT32": [-(2**31), -1, 0, 2**31 - 1],
    "INT64": [-(2**63), -1, 0, 2**63 - 1],
    "FP16": [0.0, -1.5, 65504.0, 2.0**-14],
    "FP32": [0.0, -1.5, 3.4028234663852886e38, 1.100000023841858],
    "FP64": [0.0, -1.5, 1e300, 0.1],
    "BF16": [0.0, -1.5, 3.0, 256.0],
    "BYTES": ["", "hello", "ünïcødé ✓", "a\x00b"],
}

TYPED_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def reference_raw(datatype: str, values: list[Any]) -> bytes:
    """Little-endian wire bytes built with struct, to check the codec against."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(b)) + b for b in (s.encode("utf-8") for s in values))
    if datatype == "BF16":
        # The samples are exact in bfloat16, so the top half of the float32 is the value.
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack(f"<{len(values)}{FMT[datatype]}", *values)


def encode(body: object) -> pb.ModelInferRequest:
    return infer_request_from_json(body, "mymodel", "1")


def tensor_body(datatype: str, shape: list[int], data: Any, name: str = "x") -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


def bad_request(body: object) -> str:
    with pytest.raises(SidecarError) as info:
        encode(body)
    assert info.value.code is Code.INVALID_ARGUMENT
    return info.value.message


def bad_response(resp: pb.ModelInferResponse, code: Code = Code.INTERNAL) -> str:
    with pytest.raises(SidecarError) as info:
        infer_response_to_json(resp)
    assert info.value.code is code
    return info.value.message


def outputs_of(doc: dict[str, object]) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], doc["outputs"])


def response(datatype: str, shape: list[int], name: str = "y") -> pb.ModelInferResponse:
    resp = pb.ModelInferResponse(model_name="mymodel")
    resp.outputs.add(name=name, datatype=datatype, shape=shape)
    return resp


# ---- the spec's own examples ---------------------------------------------------------------

# KServe docs/predict-api/v2/required_api.md, "Inference Request Examples", verbatim.
SPEC_REQUEST: dict[str, Any] = {
    "id": "42",
    "inputs": [
        {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
        {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]},
    ],
    "outputs": [{"name": "output0"}],
}


def test_spec_request_example_as_printed_is_rejected_for_its_typo() -> None:
    # The spec's input1 declares shape [3] but carries one element.
    assert bad_request(SPEC_REQUEST) == (
        'inputs[1] ("input1"): shape [3] holds 3 elements, data has 1'
    )


def test_spec_request_example_with_consistent_shape() -> None:
    body = json.loads(json.dumps(SPEC_REQUEST))
    body["inputs"][1]["shape"] = [1]
    req = encode(body)
    assert req.model_name == "mymodel"
    assert req.model_version == "1"
    assert req.id == "42"
    assert [(t.name, t.datatype, list(t.shape)) for t in req.inputs] == [
        ("input0", "UINT32", [2, 2]),
        ("input1", "BOOL", [1]),
    ]
    assert list(req.raw_input_contents) == [struct.pack("<4I", 1, 2, 3, 4), b"\x01"]
    assert not req.inputs[0].HasField("contents")
    assert [o.name for o in req.outputs] == ["output0"]


def test_spec_response_example() -> None:
    resp = pb.ModelInferResponse(model_name="mymodel", id="42")
    out = resp.outputs.add(name="output0", datatype="FP32", shape=[3, 2])
    out.contents.fp32_contents.extend([1.0, 1.1, 2.0, 2.1, 3.0, 3.1])
    doc = infer_response_to_json(resp)
    assert doc["id"] == "42"
    assert doc["model_name"] == "mymodel"
    assert "model_version" not in doc  # the spec: unversioned servers leave it out
    (o,) = outputs_of(doc)
    assert (o["name"], o["shape"], o["datatype"]) == ("output0", [3, 2], "FP32")
    # JSON numbers that round-trip to the very float32 the model sent.
    sent = struct.pack("<6f", 1.0, 1.1, 2.0, 2.1, 3.0, 3.1)
    assert struct.pack("<6f", *json.loads(json.dumps(o["data"]))) == sent


def test_bytes_example_text_inputs() -> None:
    # The shape KServe's text (Hugging Face) examples send.
    body = tensor_body("BYTES", [2], ["Hello, my dog is cute", "I am feeling sad"], "input-0")
    req = encode(body)
    assert req.raw_input_contents[0] == (
        b"\x15\x00\x00\x00Hello, my dog is cute" + b"\x10\x00\x00\x00I am feeling sad"
    )


def test_parameters_example_every_json_type() -> None:
    body = {
        "parameters": {"flag": True, "n": -3, "big": 2**64 - 1, "t": 0.5, "s": "str"},
        "inputs": [
            {
                "name": "x",
                "shape": [1],
                "datatype": "FP32",
                "parameters": {"binary_data": False},
                "data": [1.0],
            }
        ],
        "outputs": [{"name": "y", "parameters": {"classification": 2}}],
    }
    req = encode(body)
    p = req.parameters
    assert p["flag"].WhichOneof("parameter_choice") == "bool_param"
    assert p["n"].int64_param == -3
    assert p["big"].uint64_param == 2**64 - 1
    assert p["t"].double_param == 0.5
    assert p["s"].string_param == "str"
    assert parameters_to_json(req.parameters) == body["parameters"]
    assert parameters_to_json(req.inputs[0].parameters) == {"binary_data": False}
    assert parameters_to_json(req.outputs[0].parameters) == {"classification": 2}


def test_parameters_to_json_leaves_out_unset_values() -> None:
    resp = pb.ModelInferResponse()
    resp.parameters["empty"].SetInParent()
    resp.parameters["k"].int64_param = 0
    assert parameters_to_json(resp.parameters) == {"k": 0}


def test_parameters_from_json_into_any_map() -> None:
    req = pb.ModelInferRequest()
    parameters_from_json({"a": "b"}, req.parameters)
    assert req.parameters["a"].string_param == "b"


# ---- request: every datatype ---------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_request_encodes_every_datatype_as_raw(datatype: str) -> None:
    values = SAMPLES[datatype]
    req = encode(tensor_body(datatype, [2, 2], values))
    assert req.inputs[0].datatype == datatype
    assert list(req.inputs[0].shape) == [2, 2]
    assert req.raw_input_contents[0] == reference_raw(datatype, values)
    assert not req.inputs[0].contents.ListFields()


@pytest.mark.parametrize("datatype", DATATYPES)
def test_request_to_response_round_trip(datatype: str) -> None:
    values = SAMPLES[datatype]
    req = encode(tensor_body(datatype, [2, 2], values))
    resp = response(datatype, [2, 2])
    resp.raw_output_contents.append(req.raw_input_contents[0])
    (o,) = outputs_of(infer_response_to_json(resp))
    assert o["data"] == values
    assert [type(v) for v in o["data"]] == [type(v) for v in values]


def test_every_input_is_raw_when_one_needs_it() -> None:
    body = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "INT32", "data": [1, -1]},
            {"name": "b", "shape": [1], "datatype": "FP16", "data": [0.5]},
            {"name": "c", "shape": [1], "datatype": "BYTES", "data": ["z"]},
        ]
    }
    req = encode(body)
    assert list(req.raw_input_contents) == [
        struct.pack("<2i", 1, -1),
        struct.pack("<e", 0.5),
        b"\x01\x00\x00\x00z",
    ]
    assert all(not t.contents.ListFields() for t in req.inputs)


def test_floats_accept_json_integers() -> None:
    req = encode(tensor_body("FP32", [3], [1, 2.5, -3]))
    assert req.raw_input_contents[0] == struct.pack("<3f", 1, 2.5, -3)


def test_fp32_beyond_range_becomes_infinity_like_a_float32_cast() -> None:
    req = encode(tensor_body("FP32", [1], [1e300]))
    assert struct.unpack("<f", req.raw_input_contents[0]) == (math.inf,)


def test_bf16_rounds_to_nearest_even_and_keeps_nan() -> None:
    # 1 + 2^-8 is halfway between 1.0 and 1.0078125: ties go to the even mantissa (1.0);
    # 1 + 3 * 2^-8 is halfway between 1.0078125 and 1.015625: ties go to 1.015625.
    req = encode(tensor_body("BF16", [4], [1.00390625, 1.01171875, math.nan, -math.inf]))
    raw = req.raw_input_contents[0]
    assert struct.unpack("<4H", raw)[:2] == (0x3F80, 0x3F82)
    resp = response("BF16", [4])
    resp.raw_output_contents.append(raw)
    data = outputs_of(infer_response_to_json(resp))[0]["data"]
    assert data[:2] == [1.0, 1.015625]
    assert math.isnan(data[2])
    assert data[3] == -math.inf


def test_url_model_name_and_version_win_and_unknown_fields_are_ignored() -> None:
    body = tensor_body("INT64", [1], [7])
    body.update(model_name="other", model_version="9", future_field={"x": 1})
    req = encode(body)
    assert (req.model_name, req.model_version) == ("mymodel", "1")


def test_outputs_are_optional_and_empty_inputs_allowed() -> None:
    req = encode({"inputs": []})
    assert not req.inputs
    assert not req.outputs
    assert not req.raw_input_contents


# ---- request: nested data ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "nested", "flat"),
    [
        ([2, 3], [[1, 2, 3], [4, 5, 6]], [1, 2, 3, 4, 5, 6]),
        ([2, 2, 2], [[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [1, 2, 3, 4, 5, 6, 7, 8]),
        ([1, 64], [list(range(64))], list(range(64))),
        ([3, 1], [[1], [2], [3]], [1, 2, 3]),
        ([2, 0], [[], []], []),
    ],
)
def test_nested_and_flat_data_encode_the_same(
    shape: list[int], nested: list[Any], flat: list[int]
) -> None:
    a = encode(tensor_body("INT16", shape, nested))
    b = encode(tensor_body("INT16", shape, flat))
    assert a == b
    assert a.raw_input_contents[0] == struct.pack(f"<{len(flat)}h", *flat)


def test_nested_bytes() -> None:
    req = encode(tensor_body("BYTES", [2, 1], [["a"], ["bc"]]))
    assert req.raw_input_contents[0] == reference_raw("BYTES", ["a", "bc"])


def test_scalar_shape_holds_one_element() -> None:
    req = encode(tensor_body("FP64", [], [2.5]))
    assert req.raw_input_contents[0] == struct.pack("<d", 2.5)


# ---- request: every error, each naming its field -------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "the request body must be a JSON object, got [1, 2]"),
        ({}, 'missing required field "inputs"'),
        ({"inputs": {"a": 1}}, "inputs must be a list, got an object"),
        ({"inputs": ["x"]}, 'inputs[0] must be an object, got "x"'),
        ({"inputs": [{}]}, 'inputs[0]: missing required field "name"'),
        ({"inputs": [{"name": 3}]}, "inputs[0].name must be a string, got 3"),
        ({"inputs": [{"name": "x"}]}, 'inputs[0]: missing required field "shape"'),
        (
            {"inputs": [{"name": "x", "shape": [1]}]},
            'inputs[0]: missing required field "datatype"',
        ),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]},
            'inputs[0]: missing required field "data"',
        ),
        ({"id": 42, "inputs": []}, "id must be a string, got 42"),
        ({"inputs": [], "outputs": "y"}, 'outputs must be a list, got "y"'),
        ({"inputs": [], "outputs": [3]}, "outputs[0] must be an object, got 3"),
        ({"inputs": [], "outputs": [{}]}, 'outputs[0]: missing required field "name"'),
        (
            {"inputs": [], "outputs": [{"name": "y", "parameters": {"p": None}}]},
            "outputs[0].parameters.p must be a string, number or boolean, got null",
        ),
        ({"parameters": [1], "inputs": []}, "parameters must be an object, got [1]"),
        (
            {"parameters": {"k": [1]}, "inputs": []},
            "parameters.k must be a string, number or boolean, got [1]",
        ),
        (
            {"parameters": {"k": 2**64}, "inputs": []},
            f"parameters.k is out of the int64/uint64 range, got {2**64}",
        ),
        (
            {"parameters": {"k": -(2**63) - 1}, "inputs": []},
            f"parameters.k is out of the int64/uint64 range, got {-(2**63) - 1}",
        ),
    ],
)
def test_request_structure_errors(body: object, message: str) -> None:
    assert bad_request(body) == message


def test_duplicate_input_names() -> None:
    body = {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "FP32", "data": [1]},
            {"name": "b", "shape": [1], "datatype": "FP32", "data": [1]},
            {"name": "a", "shape": [1], "datatype": "FP32", "data": [1]},
        ]
    }
    assert bad_request(body) == 'inputs[2].name "a" repeats inputs[0].name'


def test_input_parameters_error_names_its_path() -> None:
    body = tensor_body("FP32", [1], [1.0])
    body["inputs"][0]["parameters"] = {"p": {"nested": 1}}
    assert bad_request(body) == (
        "inputs[0].parameters.p must be a string, number or boolean, got an object"
    )


@pytest.mark.parametrize("shape", ["abc", [-1], [1.5], [True], [2**63], None])
def test_shape_errors(shape: object) -> None:
    message = bad_request(tensor_body("FP32", cast(list[int], shape), [1.0]))
    assert message == (
        f"inputs[0].shape must be a list of non-negative integers, got {json.dumps(shape)}"
    )


def test_datatype_errors() -> None:
    assert bad_request(tensor_body("FLOAT", [1], [1.0])) == (
        'inputs[0].datatype "FLOAT" is not an OIP datatype (BOOL, UINT8, UINT16, UINT32, '
        "UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES, BF16)"
    )
    # All strings are case-sensitive (the spec, HTTP/REST section).
    assert bad_request(tensor_body("fp32", [1], [1.0])).startswith(
        'inputs[0].datatype "fp32" is not an OIP datatype'
    )
    assert bad_request(tensor_body(cast(str, 32), [1], [1.0])) == (
        "inputs[0].datatype must be a string, got 32"
    )


def test_element_count_mismatch_names_input_and_counts() -> None:
    body = tensor_body("FP32", [1, 64], [0.0] * 63, "INPUT0")
    assert bad_request(body) == 'inputs[0] ("INPUT0"): shape [1, 64] holds 64 elements, data has 63'


def test_data_must_be_a_list() -> None:
    assert bad_request(tensor_body("FP32", [1], 1.0)) == "inputs[0].data must be a list, got 1.0"


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        (
            [2, 2],
            [[1, 2], [3, 4, 5]],
            "inputs[0].data[1] must be a list of 2 items to match shape [2, 2], got a list of 3",
        ),
        (
            [2, 2],
            [[1, 2], 3],
            "inputs[0].data[1] must be a list of 2 items to match shape [2, 2], got 3",
        ),
        (
            [2, 2],
            [[1, 2], [3, 4], [5, 6]],
            "inputs[0].data must be a list of 2 items to match shape [2, 2], got a list of 3",
        ),
        (
            [2, 2, 2],
            [[[1, 2], [3, 4]], [[5, 6], [7]]],
            "inputs[0].data[1][1] must be a list of 2 items to match shape [2, 2, 2], "
            "got a list of 1",
        ),
        (
            [2, 2, 1],
            [[1, 2], [3, 4]],  # one level too shallow
            "inputs[0].data[0][0] must be a list of 1 item to match shape [2, 2, 1], got 1",
        ),
        (
            [2, 1],
            [[[1]], [[2]]],  # one level too deep
            "inputs[0].data[0][0] is not a number, got [1]",
        ),
        (
            [1, 1],
            [[[list(range(10**5))]]],  # far too deep, and never dumped whole
            "inputs[0].data[0][0] is not a number, got a list of 1 item",
        ),
        (
            [4],
            [1, 2, [3], 4],  # flat with a stray list
            "inputs[0].data[2] is not a number, got [3]",
        ),
    ],
)
def test_nested_shape_errors(shape: list[int], data: list[Any], message: str) -> None:
    assert bad_request(tensor_body("FP32", shape, data)) == message


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("FP32", [1.0, 2.0, 3.0, "x"], 'inputs[0].data[3] is not a number, got "x"'),
        ("FP64", [1.0, None, 3.0, 4.0], "inputs[0].data[1] is not a number, got null"),
        ("FP32", [1.0, True, 3.0, 4.0], "inputs[0].data[1] is not a number, got true"),
        ("BOOL", [True, 1, False, True], "inputs[0].data[1] is not a boolean, got 1"),
        ("INT32", [1, 2, 3.0, 4], "inputs[0].data[2] is not an integer, got 3.0"),
        ("UINT8", [1, False, 3, 4], "inputs[0].data[1] is not an integer, got false"),
        ("BYTES", ["a", "b", 5, "d"], "inputs[0].data[2] is not a string, got 5"),
        (
            "UINT8",
            [1, 2, 300, 4],
            "inputs[0].data[2] is out of range for UINT8 (0 to 255), got 300",
        ),
        (
            "INT8",
            [-129, 0, 0, 0],
            "inputs[0].data[0] is out of range for INT8 (-128 to 127), got -129",
        ),
        (
            "UINT64",
            [0, 0, 0, -1],
            f"inputs[0].data[3] is out of range for UINT64 (0 to {2**64 - 1}), got -1",
        ),
        (
            "INT64",
            [0, 2**63, 0, 0],
            f"inputs[0].data[1] is out of range for INT64 ({-(2**63)} to {2**63 - 1}), got {2**63}",
        ),
        (
            "UINT32",
            [0, 0, 2**32, 0],
            f"inputs[0].data[2] is out of range for UINT32 (0 to {2**32 - 1}), got {2**32}",
        ),
        (
            "FP16",
            [1.0, 70000.0, 0.0, 0.0],
            "inputs[0].data[1] is out of range for FP16 (max 65504), got 70000.0",
        ),
        (
            "FP64",
            [0, 0, 10**400, 0],
            "inputs[0].data[2] is out of range for FP64, got " + json.dumps(10**400)[:57] + "...",
        ),
        (
            "BYTES",
            ["a", "\ud800", "c", "d"],
            "inputs[0].data[1] cannot be encoded as UTF-8 (lone surrogate)",
        ),
    ],
)
def test_element_errors_name_the_element(datatype: str, data: list[Any], message: str) -> None:
    assert bad_request(tensor_body(datatype, [4], data)) == message


def test_element_errors_in_nested_data_use_nested_indices() -> None:
    body = tensor_body("UINT16", [2, 3], [[1, 2, 3], [4, 70000, 6]], "INPUT0")
    assert bad_request(body) == (
        "inputs[0].data[1][1] is out of range for UINT16 (0 to 65535), got 70000"
    )


def test_error_messages_never_dump_a_whole_tensor() -> None:
    message = bad_request(tensor_body("FP32", cast(list[int], ["a"] * 100), [1.0]))
    assert message == (
        "inputs[0].shape must be a list of non-negative integers, got a list of 100 items"
    )
    message = bad_request(tensor_body("FP32", [1] * 100, [1.0, 2.0]))
    assert message == (
        'inputs[0] ("x"): shape [1, 1, 1, 1, 1, 1, 1, 1, ... (100 dimensions)] holds 1 elements, '
        "data has 2"
    )


# ---- response: every datatype, typed and raw -----------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_response_raw_every_datatype(datatype: str) -> None:
    values = SAMPLES[datatype]
    resp = response(datatype, [2, 2])
    resp.raw_output_contents.append(reference_raw(datatype, values))
    (o,) = outputs_of(infer_response_to_json(resp))
    assert o == {"name": "y", "shape": [2, 2], "datatype": datatype, "data": values}


@pytest.mark.parametrize("datatype", list(TYPED_FIELD))
def test_response_typed_contents_every_datatype(datatype: str) -> None:
    values = SAMPLES[datatype]
    resp = response(datatype, [2, 2])
    wire = [v.encode("utf-8") for v in values] if datatype == "BYTES" else values
    getattr(resp.outputs[0].contents, TYPED_FIELD[datatype]).extend(wire)
    (o,) = outputs_of(infer_response_to_json(resp))
    assert o == {"name": "y", "shape": [2, 2], "datatype": datatype, "data": values}


def test_response_header_fields_and_parameters() -> None:
    resp = pb.ModelInferResponse(model_name="m", model_version="3", id="abc")
    resp.parameters["sequence_end"].bool_param = True
    out = resp.outputs.add(name="y", datatype="INT32", shape=[1])
    out.parameters["scale"].double_param = 0.25
    out.contents.int_contents.append(5)
    assert infer_response_to_json(resp) == {
        "model_name": "m",
        "model_version": "3",
        "id": "abc",
        "parameters": {"sequence_end": True},
        "outputs": [
            {
                "name": "y",
                "shape": [1],
                "datatype": "INT32",
                "parameters": {"scale": 0.25},
                "data": [5],
            }
        ],
    }


def test_response_with_several_raw_outputs_and_an_empty_one() -> None:
    resp = pb.ModelInferResponse(model_name="m")
    resp.outputs.add(name="a", datatype="FP16", shape=[0])
    resp.outputs.add(name="b", datatype="UINT8", shape=[3])
    resp.raw_output_contents.extend([b"", b"\x01\x02\x03"])
    assert [o["data"] for o in outputs_of(infer_response_to_json(resp))] == [[], [1, 2, 3]]


def test_response_fp16_without_raw_is_fine_when_empty() -> None:
    resp = response("FP16", [0, 4])
    assert outputs_of(infer_response_to_json(resp))[0]["data"] == []


# ---- response: every inconsistency, each naming the output ---------------------------------


def test_response_raw_count_differs_from_outputs() -> None:
    resp = response("FP32", [1])
    resp.raw_output_contents.extend([b"\0\0\0\0", b"\0\0\0\0"])
    assert bad_response(resp) == "the model sent 2 raw_output_contents for 1 outputs"


def test_response_raw_length_differs_from_shape() -> None:
    resp = response("FP32", [3, 2], "probabilities")
    resp.raw_output_contents.append(b"\0" * 20)
    assert bad_response(resp) == (
        'output "probabilities" (FP32 [3, 2]) needs 24 raw bytes, the model sent 20'
    )


def test_response_unknown_datatype() -> None:
    resp = response("FLOAT32", [1])
    assert bad_response(resp) == 'output "y": datatype "FLOAT32" is not an OIP datatype'


def test_response_negative_dimension() -> None:
    resp = response("FP32", [-1, 4])
    assert bad_response(resp) == 'output "y": shape [-1, 4] has a negative dimension'


def test_response_typed_count_differs_from_shape() -> None:
    resp = response("INT64", [2, 2])
    resp.outputs[0].contents.int64_contents.extend([1, 2, 3])
    assert bad_response(resp) == 'output "y" (INT64 [2, 2]) needs 4 elements, int64_contents has 3'


def test_response_typed_contents_in_the_wrong_field() -> None:
    resp = response("FP32", [2])
    resp.outputs[0].contents.fp64_contents.extend([1.0, 2.0])
    assert bad_response(resp) == 'output "y" (FP32 [2]) needs 2 elements, fp32_contents has 0'


def test_response_fp16_must_be_raw() -> None:
    resp = response("FP16", [2])
    assert bad_response(resp) == (
        'output "y" (FP16 [2]) has no typed contents field; it travels only as raw'
    )


def test_response_mixing_typed_and_raw() -> None:
    resp = response("INT32", [1])
    resp.outputs[0].contents.int_contents.append(1)
    resp.raw_output_contents.append(struct.pack("<i", 1))
    assert bad_response(resp) == 'output "y" has both typed contents and raw_output_contents'


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x01\x00\x00\x00a\x01\x00", ": raw BYTES end inside a length prefix at byte 5"),
        (b"\x01\x00\x00\x00a\x05\x00\x00\x00bc", ": raw BYTES element 1 overruns the buffer"),
        (b"\x01\x00\x00\x00a", " needs 2 elements, the model sent 1"),
    ],
)
def test_response_malformed_raw_bytes(raw: bytes, message: str) -> None:
    resp = response("BYTES", [2])
    resp.raw_output_contents.append(raw)
    assert bad_response(resp) == 'output "y" (BYTES [2])' + message


@pytest.mark.parametrize("typed", [False, True])
def test_response_bytes_that_are_not_utf8_are_unimplemented(typed: bool) -> None:
    resp = response("BYTES", [2])
    items = [b"ok", b"\xff\xd8\xff"]  # the start of a JPEG
    if typed:
        resp.outputs[0].contents.bytes_contents.extend(items)
    else:
        resp.raw_output_contents.append(b"".join(struct.pack("<I", len(b)) + b for b in items))
    assert bad_response(resp, Code.UNIMPLEMENTED) == (
        'output "y" (BYTES [2]): element 1 is not UTF-8 text, which the JSON binding cannot '
        "carry (use the gRPC endpoint)"
    )


# ---- metadata ------------------------------------------------------------------------------


def test_server_metadata() -> None:
    resp = pb.ServerMetadataResponse(name="ai-sidecar", version="0.1.0", extensions=["x"])
    assert server_metadata_to_json(resp) == {
        "name": "ai-sidecar",
        "version": "0.1.0",
        "extensions": ["x"],
    }


def test_model_metadata() -> None:
    resp = pb.ModelMetadataResponse(name="digits", versions=["1"], platform="sklearn_pickle")
    resp.inputs.add(name="pixels", datatype="FP32", shape=[-1, 64])
    resp.outputs.add(name="label", datatype="INT64", shape=[-1])
    assert model_metadata_to_json(resp) == {
        "name": "digits",
        "versions": ["1"],
        "platform": "sklearn_pickle",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
    }


# ---- speed ---------------------------------------------------------------------------------


def test_100k_fp32_both_ways_is_fast() -> None:
    n = 100_000
    values = [i / 7 for i in range(n)]
    start = time.perf_counter()
    req = encode(tensor_body("FP32", [1, n], values))
    resp = response("FP32", [1, n])
    resp.raw_output_contents.append(req.raw_input_contents[0])
    data = outputs_of(infer_response_to_json(resp))[0]["data"]
    elapsed = time.perf_counter() - start
    assert len(data) == n
    assert data[7] == 1.0
    assert elapsed < 0.5, f"100k FP32 request + response took {elapsed:.3f} s"


def test_100k_nested_fp32_is_fast() -> None:
    rows = [[float(c) for c in range(64)] for _ in range(1563)]  # ~100k elements
    start = time.perf_counter()
    req = encode(tensor_body("FP32", [1563, 64], rows))
    elapsed = time.perf_counter() - start
    assert len(req.raw_input_contents[0]) == 1563 * 64 * 4
    assert elapsed < 0.5, f"100k nested FP32 took {elapsed:.3f} s"
