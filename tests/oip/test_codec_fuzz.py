"""Fuzz the REST codecs directly: any input gives a result or a SidecarError of the right class, nothing else.

What the caller sends (REST bodies, with or without the binary extension) fails only with
INVALID_ARGUMENT; what the model sends (its protobuf answer, its REST answer) only with INTERNAL,
or UNIMPLEMENTED where the JSON binding cannot carry a value it produced. Runs in-process, no
sockets: SIDECAR_FUZZ_EXAMPLES raises the budget for a long run, as in tests/fuzz.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

import inference.grpc_service_pb2 as pb
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.oip import json_codec, rest_model_codec
from sidecar.oip.binary_tensors import OutputChoice, RestBody, infer_request_from_rest, infer_response_to_rest

EXAMPLES = int(os.environ.get("SIDECAR_FUZZ_EXAMPLES", "400"))
SEED = os.environ.get("SIDECAR_FUZZ_SEED")
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def BUDGET(test: Any) -> Any:
    """The budget, and SIDECAR_FUZZ_SEED's cases when it is set (derandomized otherwise)."""
    return _SETTINGS(seed(int(SEED))(test)) if SEED is not None else _SETTINGS(test)


DATATYPES = st.sampled_from([*json_codec.DATATYPES, "FP8", "", "fp32", "INT128"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(),
    st.text(max_size=6),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
SHAPES = st.lists(st.integers(min_value=-2, max_value=5), max_size=3)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, VALUES)


PARAMS = maybe(
    st.dictionaries(
        st.sampled_from(["binary_data_size", "binary_data", "binary_data_output", "x"]),
        maybe(st.one_of(st.integers(-4, 64), st.booleans())),
        max_size=3,
    )
)
TENSOR = st.fixed_dictionaries(
    {"name": maybe(st.sampled_from(["a", "b"])), "shape": maybe(SHAPES), "datatype": maybe(DATATYPES)},
    optional={"data": maybe(st.lists(SCALARS, max_size=8)), "parameters": PARAMS},
)
REQUEST = st.fixed_dictionaries(
    {"inputs": maybe(st.lists(maybe(TENSOR), max_size=3))},
    optional={
        "id": maybe(st.text(max_size=4)),
        "parameters": PARAMS,
        "outputs": maybe(st.lists(maybe(st.fixed_dictionaries({"name": maybe(st.text(max_size=2))},
                                                             optional={"parameters": PARAMS})), max_size=2)),
    },
)


@st.composite
def rest_bodies(draw: st.DrawFn) -> RestBody:
    """A body as a client or a model might send: a JSON header, maybe binary after it, maybe cut."""
    header = json.dumps(draw(REQUEST)).encode()
    tail = draw(st.binary(max_size=64))
    body = header + tail
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    length = draw(st.one_of(st.none(), st.just(len(header)), st.integers(-3, len(body) + 3)))
    if length is not None and length < 0:
        length = None
    return RestBody(body, length)



@given(rest_bodies(), st.text(max_size=3), st.text(max_size=2))
@BUDGET
def test_a_rest_request_decodes_or_is_invalid_argument(rest, model, version):
    try:
        request, choice = infer_request_from_rest(rest, model, version)
    except SidecarError as e:
        assert e.code is Code.INVALID_ARGUMENT, e
        assert e.message
        return
    assert isinstance(request, pb.ModelInferRequest)
    assert len(request.raw_input_contents) == len(request.inputs)
    request.SerializeToString()
    choice("any")


@given(VALUES)
@BUDGET
def test_any_json_value_decodes_or_is_invalid_argument(value):
    try:
        json_codec.infer_request_from_json(value, "m", "")
    except SidecarError as e:
        assert e.code is Code.INVALID_ARGUMENT, e


FIELD_TYPES = {
    "bool_contents": "BOOL", "int_contents": "INT32", "int64_contents": "INT64", "uint_contents": "UINT32",
    "uint64_contents": "UINT64", "fp32_contents": "FP32", "fp64_contents": "FP64", "bytes_contents": "BYTES",
}


@st.composite
def model_responses(draw: st.DrawFn) -> pb.ModelInferResponse:
    resp = pb.ModelInferResponse(model_name=draw(st.text(max_size=3)), id=draw(st.text(max_size=3)))
    for i in range(draw(st.integers(0, 3))):
        out = resp.outputs.add(name=f"o{i}", datatype=draw(DATATYPES), shape=draw(SHAPES))
        field = draw(st.sampled_from(["", "bool_contents", "int_contents", "int64_contents", "uint_contents",
                                      "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"]))
        if draw(st.booleans()):  # half the time the datatype fits the field, so values get through
            out.datatype = FIELD_TYPES.get(field, out.datatype)
        if field == "bytes_contents":
            getattr(out.contents, field).extend(draw(st.lists(st.binary(max_size=4), max_size=6)))
        elif field == "bool_contents":
            getattr(out.contents, field).extend(draw(st.lists(st.booleans(), max_size=6)))
        elif field in ("fp32_contents", "fp64_contents"):
            getattr(out.contents, field).extend(draw(st.lists(st.floats(width=32), max_size=6)))
        elif field:
            low = 0 if field.startswith("uint") else -(2**31)
            high = {"int_contents": 2**31 - 1, "uint_contents": 2**32 - 1}.get(field, 2**62)
            getattr(out.contents, field).extend(draw(st.lists(st.integers(low, high), max_size=6)))
        if draw(st.booleans()):  # and the shape fits the count
            out.shape[:] = [len(getattr(out.contents, field))] if field else [0]
        if draw(st.booleans()):
            out.parameters["p"].double_param = draw(st.floats())
    if draw(st.booleans()):
        resp.raw_output_contents.extend(draw(st.lists(st.binary(max_size=24), max_size=4)))
    return resp


@given(model_responses(), st.booleans(), st.dictionaries(st.sampled_from(["o0", "o1"]), st.booleans()))
@BUDGET
def test_a_model_response_encodes_or_is_the_models_fault(resp, default, named):
    try:
        rest = infer_response_to_rest(resp, OutputChoice(default, named))
    except SidecarError as e:
        assert e.code in (Code.INTERNAL, Code.UNIMPLEMENTED), e
        return
    if rest.header_length is None:
        json.loads(rest.body)
    else:
        assert 0 < rest.header_length <= len(rest.body)
        json.loads(rest.body[: rest.header_length])


@given(rest_bodies())
@BUDGET
def test_a_rest_models_answer_decodes_or_is_internal(rest):
    try:
        resp = rest_model_codec.infer_response_from_rest(rest)
    except SidecarError as e:
        assert e.code is Code.INTERNAL, e
        return
    assert len(resp.raw_output_contents) == len(resp.outputs)


NAN_OUTPUT = pb.ModelInferResponse(
    outputs=[pb.ModelInferResponse.InferOutputTensor(
        name="o0", datatype="FP32", shape=[1], contents=pb.InferTensorContents(fp32_contents=[float("nan")])
    )]
)


INT8_OUT_OF_RANGE = pb.ModelInferResponse(
    outputs=[pb.ModelInferResponse.InferOutputTensor(
        name="o0", datatype="INT8", shape=[1], contents=pb.InferTensorContents(int_contents=[128])
    )]
)


@given(model_responses(), st.booleans())
@example(NAN_OUTPUT, False)  # NaN once went to a JSON-only REST model as null
@example(INT8_OUT_OF_RANGE, False)  # found by the long run: int_contents 128 went out as INT8 data
@BUDGET
def test_a_grpc_request_for_a_rest_model_encodes_or_is_refused(resp, binary):
    # A request's inputs have the shape of a response's outputs: reuse the strategy.
    req = pb.ModelInferRequest(
        model_name="m",
        inputs=[pb.ModelInferRequest.InferInputTensor(name=o.name, datatype=o.datatype, shape=o.shape,
                                                      contents=o.contents) for o in resp.outputs],
        raw_input_contents=resp.raw_output_contents,
    )
    try:
        rest = rest_model_codec.infer_request_to_rest(req, binary=binary)
    except SidecarError as e:
        assert e.code in (Code.INVALID_ARGUMENT, Code.UNIMPLEMENTED), e
        return
    back, _ = infer_request_from_rest(rest, "m", "")
    assert len(back.inputs) == len(req.inputs)
