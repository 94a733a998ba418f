"""Unit tests for sidecar.oip.binary_tensors and rest_model_codec's binary side: the extension both ways."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

import inference.grpc_service_pb2 as pb
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.oip import rest_model_codec
from sidecar.oip.binary_tensors import (
    OutputChoice,
    RestBody,
    header_length,
    infer_request_from_rest,
    infer_response_to_rest,
    mentions_extension,
)


def body(header: dict[str, Any], *tails: bytes) -> RestBody:
    text = json.dumps(header).encode()
    return RestBody(text + b"".join(tails), len(text)) if tails else RestBody(text)


def split(rest: RestBody) -> tuple[dict[str, Any], bytes]:
    assert rest.header_length is not None
    return json.loads(rest.body[: rest.header_length]), rest.body[rest.header_length :]


def fp32(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def strings(*values: bytes) -> bytes:
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


def tensor(
    name: str, datatype: str, shape: list[int], size: int | None = None, **extra: object
) -> dict[str, Any]:
    t: dict[str, object] = {"name": name, "datatype": datatype, "shape": shape, **extra}
    if size is not None:
        t["parameters"] = {"binary_data_size": size}
    return t


def refused(rest: RestBody) -> str:
    with pytest.raises(SidecarError) as e:
        infer_request_from_rest(rest, "m", "")
    assert e.value.code is Code.INVALID_ARGUMENT
    return e.value.message


# ---- requests ---------------------------------------------------------------------------------


def test_binary_and_json_inputs_mix_in_order():
    rest = body(
        {
            "inputs": [
                tensor("a", "FP32", [1, 2], 8),
                tensor("b", "INT32", [2], data=[7, -7]),
                tensor("c", "BYTES", [2], 13),
                tensor("d", "BOOL", [3], 3),
            ],
            "parameters": {"binary_data_output": True, "keep": 1},
            "outputs": [{"name": "x", "parameters": {"binary_data": False}}, {"name": "y"}],
        },
        fp32(1.5, -2.0),
        strings(b"abc", b"\xff\x00"),
        b"\x01\x00\x01",
    )
    req, choice = infer_request_from_rest(rest, "m", "2")
    assert (req.model_name, req.model_version) == ("m", "2")
    assert list(req.raw_input_contents) == [
        fp32(1.5, -2.0), struct.pack("<2i", 7, -7), strings(b"abc", b"\xff\x00"), b"\x01\x00\x01"
    ]
    # The extension's parameters describe the body, not the call: the model never sees them.
    assert all("binary_data_size" not in t.parameters for t in req.inputs)
    assert dict(req.parameters) == {"keep": pb.InferParameter(int64_param=1)}
    assert all(not o.parameters for o in req.outputs)
    assert (choice("x"), choice("y"), choice("unnamed")) == (False, True, True)


def test_binary_data_on_an_output_overrides_the_default_both_ways():
    _, choice = infer_request_from_rest(
        body({"inputs": [], "outputs": [{"name": "x", "parameters": {"binary_data": True}}]}), "m", ""
    )
    assert (choice("x"), choice("y")) == (True, False)


def test_plain_json_is_plain_json():
    req, choice = infer_request_from_rest(body({"inputs": [tensor("a", "FP32", [1], data=[1])]}), "m", "")
    assert list(req.raw_input_contents) == [fp32(1)]
    assert choice == OutputChoice()
    assert not mentions_extension(body({"inputs": []}))
    assert mentions_extension(body({"inputs": [], "parameters": {"binary_data_output": True}}))
    assert mentions_extension(RestBody(b"{}", 2))


@pytest.mark.parametrize(
    ("rest", "words"),
    [
        (RestBody(b'{"inputs": []}', 99), ["Inference-Header-Content-Length is 99", "14 bytes"]),
        (RestBody(b'{"inputs": []}xx', 13), ["not valid JSON"]),
        (body({"inputs": [tensor("a", "FP32", [2], 8)]}, fp32(1)), ['inputs[0]', "is 8", "only 4 bytes"]),
        (body({"inputs": [tensor("a", "FP32", [2], 4)]}, fp32(1)), ['"a"', "is 4", "needs 8 bytes"]),
        (body({"inputs": [tensor("a", "FP32", [1], 4)]}, fp32(1, 2)), ["4 bytes of binary data follow"]),
        (body({"inputs": [tensor("a", "FP32", [1], -4)]}, fp32(1)), ["non-negative integer", "-4"]),
        (body({"inputs": [tensor("a", "FP32", [1], None, parameters={"binary_data_size": True})]}, b"x"),
         ["non-negative integer", "true"]),
        (body({"inputs": [tensor("a", "FP32", [1], None, parameters={"binary_data_size": "4"})]}, b"x"),
         ["non-negative integer"]),
        (body({"inputs": [tensor("a", "FP32", [1], 4, data=[1.0])]}, fp32(1)), ['"a"', 'both "data"']),
        (body({"inputs": [tensor("a", "FP32", [1], 4)]}), ["no binary data", "Inference-Header"]),
        (body({"inputs": [tensor("s", "BYTES", [2], 7)]}, strings(b"abc")), ['"s"', "1 item", "needs 2"]),
        (body({"inputs": [tensor("s", "BYTES", [1], 6)]}, strings(b"abc")[:6]), ['"s"', "not whole"]),
        (body({"inputs": [tensor("b", "BOOL", [2], 2)]}, b"\x01\x02"), ['"b"', "0 or 1"]),
        (body({"inputs": [], "parameters": {"binary_data_output": 1}}), ["binary_data_output", "boolean"]),
        (body({"inputs": [], "outputs": [{"name": "x", "parameters": {"binary_data": "yes"}}]}),
         ["outputs[0].parameters.binary_data", "boolean"]),
    ],
)
def test_every_size_and_flag_is_checked_and_named(rest, words):
    message = refused(rest)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("value", ["", "-1", "+5", " 5x", "1e3", "٣", "9" * 30])
def test_the_header_length_is_digits(value):
    with pytest.raises(SidecarError) as e:
        header_length(value)
    assert e.value.code is Code.INVALID_ARGUMENT and "Inference-Header-Content-Length" in e.value.message


def test_header_length_reads_digits():
    assert (header_length(None), header_length("0"), header_length(" 42 ")) == (None, 0, 42)


# ---- responses --------------------------------------------------------------------------------


def response(raw: bool = True) -> pb.ModelInferResponse:
    out = pb.ModelInferResponse(
        model_name="m",
        id="q",
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name="p", datatype="FP32", shape=[1, 2]),
            pb.ModelInferResponse.InferOutputTensor(name="l", datatype="INT64", shape=[1]),
            pb.ModelInferResponse.InferOutputTensor(name="s", datatype="BYTES", shape=[2]),
        ],
    )
    if raw:
        out.raw_output_contents.extend([fp32(0.25, 0.75), struct.pack("<q", 3), strings(b"x", b"yz")])
    else:
        out.outputs[0].contents.fp32_contents.extend([0.25, 0.75])
        out.outputs[1].contents.int64_contents.append(3)
        out.outputs[2].contents.bytes_contents.extend([b"x", b"yz"])
    return out


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "contents"])
def test_binary_outputs_follow_the_json_header(raw):
    rest = infer_response_to_rest(response(raw), OutputChoice(True, {"l": False}))
    assert rest.content_type == "application/octet-stream"
    header, tail = split(rest)
    p, lab, s = header["outputs"]
    assert p == {"name": "p", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
    assert lab == {"name": "l", "shape": [1], "datatype": "INT64", "data": [3]}
    assert s["parameters"] == {"binary_data_size": 11} and "data" not in s
    assert tail == fp32(0.25, 0.75) + strings(b"x", b"yz")


def test_all_json_output_has_no_header_length():
    rest = infer_response_to_rest(response(), OutputChoice())
    assert rest.header_length is None and rest.content_type == "application/json"
    assert json.loads(rest.body)["outputs"][0]["data"] == [0.25, 0.75]


def test_a_model_raw_output_of_the_wrong_size_is_the_models_fault():
    bad = response()
    bad.raw_output_contents[0] = fp32(1)
    with pytest.raises(SidecarError) as e:
        infer_response_to_rest(bad, OutputChoice(True))
    assert e.value.code is Code.INTERNAL and '"p"' in e.value.message and "8 raw bytes" in e.value.message
    bad = response()
    bad.raw_output_contents[2] = strings(b"x")
    with pytest.raises(SidecarError) as e:
        infer_response_to_rest(bad, OutputChoice(True))
    assert e.value.code is Code.INTERNAL and '"s"' in e.value.message


def test_a_non_finite_output_cannot_go_as_json_but_goes_as_binary():
    nan = response()
    nan.raw_output_contents[0] = fp32(float("nan"), 1.0)
    with pytest.raises(SidecarError) as e:
        infer_response_to_rest(nan, OutputChoice())
    assert e.value.code is Code.UNIMPLEMENTED and "outputs[0].data[0]" in e.value.message
    _, tail = split(infer_response_to_rest(nan, OutputChoice(True)))
    assert tail.startswith(fp32(float("nan"))[:4])


# ---- the REST model side: the sidecar as a client of a model that speaks the extension ---------


def test_a_request_to_a_binary_model_is_all_binary_and_reads_back_the_same():
    req = pb.ModelInferRequest(
        model_name="m",
        id="r",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="a", datatype="FP32", shape=[2]),
            pb.ModelInferRequest.InferInputTensor(
                name="t", datatype="BYTES", shape=[1],
                contents=pb.InferTensorContents(bytes_contents=[b"\x00\xfe"]),
            ),
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="o")],
    )
    req.inputs[0].contents.fp32_contents.extend([1, 2])
    rest = rest_model_codec.infer_request_to_rest(req, binary=True)
    header, tail = split(rest)
    assert header["parameters"] == {"binary_data_output": True}
    assert [t["parameters"]["binary_data_size"] for t in header["inputs"]] == [8, 6]
    assert tail == fp32(1, 2) + strings(b"\x00\xfe")
    back, choice = infer_request_from_rest(rest, "m", "")
    assert list(back.raw_input_contents) == [fp32(1, 2), strings(b"\x00\xfe")]
    assert choice("o") is True
    # Only the extension carries BYTES that are not UTF-8 to a REST model.
    with pytest.raises(SidecarError) as e:
        rest_model_codec.infer_request_to_rest(req, binary=False)
    assert e.value.code is Code.UNIMPLEMENTED and '"t"' in e.value.message
    req.inputs[1].contents.bytes_contents[0] = b"ok"
    assert rest_model_codec.infer_request_to_rest(req, binary=False).header_length is None


@pytest.mark.parametrize(
    "choice", [OutputChoice(True), OutputChoice(False), OutputChoice(True, {"p": False})]
)
def test_a_binary_models_answer_reads_back_as_the_response(choice):
    want = response()
    got = rest_model_codec.infer_response_from_rest(infer_response_to_rest(want, choice))
    assert list(got.raw_output_contents) == list(want.raw_output_contents)
    assert [(o.name, o.datatype, list(o.shape), dict(o.parameters)) for o in got.outputs] == [
        (o.name, o.datatype, list(o.shape), {}) for o in want.outputs
    ]


@pytest.mark.parametrize(
    ("rest", "words"),
    [
        (RestBody(b'{"outputs": []}', 40), ["40"]),
        (body({"outputs": [tensor("o", "FP32", [2], 8)]}, fp32(1)), ["outputs[0]", "only 4 bytes"]),
        (body({"outputs": [tensor("o", "FP32", [1], 4)]}, fp32(1, 2)), ["4 bytes of binary data follow"]),
    ],
)
def test_a_broken_answer_from_a_binary_model_is_internal(rest, words):
    with pytest.raises(SidecarError) as e:
        rest_model_codec.infer_response_from_rest(rest)
    assert e.value.code is Code.INTERNAL and "not valid OIP" in e.value.message
    for word in words:
        assert word in e.value.message, e.value.message


@pytest.mark.parametrize(
    ("datatype", "value"),
    [("INT8", 128), ("INT8", -129), ("INT16", 40000), ("UINT16", 65536), ("UINT8", 256)],
)
def test_typed_contents_out_of_the_datatypes_range_are_refused_both_ways(datatype, value):
    # int_contents and uint_contents are 32 bits wide; the datatype is narrower.
    field = "uint_contents" if datatype.startswith("UINT") else "int_contents"
    contents = pb.InferTensorContents(**{field: [value]})
    tensor = pb.ModelInferRequest.InferInputTensor(name="a", datatype=datatype, shape=[1], contents=contents)
    req = pb.ModelInferRequest(inputs=[tensor])
    for binary in (False, True):
        with pytest.raises(SidecarError) as e:
            rest_model_codec.infer_request_to_rest(req, binary=binary)
        assert e.value.code is Code.INVALID_ARGUMENT and '"a"' in e.value.message, e.value.message
    out = pb.ModelInferResponse.InferOutputTensor(name="o", datatype=datatype, shape=[1], contents=contents)
    resp = pb.ModelInferResponse(outputs=[out])
    with pytest.raises(SidecarError) as e:
        infer_response_to_rest(resp, OutputChoice())
    assert e.value.code is Code.INTERNAL and '"o"' in e.value.message and "out of range" in e.value.message
