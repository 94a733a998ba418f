"""Batching's arithmetic: keys, merge along any dimension, split back, and each pass-through reason."""

import numpy as np
import pytest

from inference import grpc_service_pb2 as pb
from sidecar.batching import merge as m


def _request(
    x: np.ndarray, *, raw: bool = True, name: str = "INPUT0", dtype: str = "FP32", **kw
) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=dtype, shape=list(x.shape))
    req = pb.ModelInferRequest(model_name="digits", inputs=[tensor], **kw)
    tensor = req.inputs[0]  # the request holds a copy
    if raw:
        req.raw_input_contents.append(x.astype({"FP32": "<f4", "INT64": "<i8"}[dtype]).tobytes())
    elif dtype == "FP32":
        tensor.contents.fp32_contents.extend(x.ravel().tolist())
    else:
        tensor.contents.int64_contents.extend(x.ravel().tolist())
    return req


def _array(tensor_shape, data: bytes | list[float], dtype="<f4") -> np.ndarray:
    if isinstance(data, bytes):
        return np.frombuffer(data, dtype=dtype).reshape(tensor_shape)
    return np.asarray(data, dtype=dtype).reshape(tensor_shape)


@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("raw", [True, False])
def test_merge_then_split_gives_each_request_its_own_rows(dim, raw):
    rng = np.random.default_rng(dim)
    shapes = []
    for rows in (1, 3, 2):
        shape = [2, 3, 4]
        shape[dim] = rows
        shapes.append(shape)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    reqs = [_request(x, raw=raw, id=f"r{i}") for i, x in enumerate(xs)]
    keyed = [m.batchable(r, dim, 64) for r in reqs]
    assert all(isinstance(k, m.Rows) for k in keyed)
    assert len({k.key for k in keyed}) == 1  # type: ignore[union-attr]
    merged = m.merge(reqs, dim)
    want = np.concatenate(xs, axis=dim)
    assert list(merged.inputs[0].shape) == list(want.shape)
    got = merged.raw_input_contents[0] if raw else list(merged.inputs[0].contents.fp32_contents)
    np.testing.assert_array_equal(_array(want.shape, got), want)

    # The model answers the merged request: the input times two, as an output of the same shape.
    reply = pb.ModelInferResponse(model_name="digits", model_version="1")
    out = reply.outputs.add(name="OUT", datatype="FP32", shape=list(want.shape))
    if raw:
        reply.raw_output_contents.append((want * 2).astype("<f4").tobytes())
    else:
        out.contents.fp32_contents.extend((want * 2).ravel().tolist())
    answers = m.split(reply, reqs, [k.rows for k in keyed], dim)  # type: ignore[union-attr]
    assert isinstance(answers, list)
    for x, req, answer in zip(xs, reqs, answers, strict=True):
        assert answer.id == req.id and answer.model_version == "1"
        assert list(answer.outputs[0].shape) == list(x.shape)
        data = answer.raw_output_contents[0] if raw else list(answer.outputs[0].contents.fp32_contents)
        np.testing.assert_array_equal(_array(x.shape, data), x * 2)


def test_keys_differ_by_shape_outside_the_batch_dimension_form_and_parameters():
    a = m.batchable(_request(np.zeros((2, 64))), 0, 64)
    b = m.batchable(_request(np.zeros((5, 64))), 0, 64)
    c = m.batchable(_request(np.zeros((2, 32))), 0, 64)
    d = m.batchable(_request(np.zeros((2, 64)), raw=False), 0, 64)
    e = m.batchable(_request(np.zeros((2, 64)), parameters={"p": pb.InferParameter(int64_param=1)}), 0, 64)
    f = m.batchable(_request(np.zeros((2, 64)), model_version="2"), 0, 64)
    keys = [k.key for k in (a, b, c, d, e, f)]  # type: ignore[union-attr]
    assert keys[0] == keys[1]
    assert len(set(keys[1:])) == 5


@pytest.mark.parametrize(
    "request_, reason",
    [
        (pb.ModelInferRequest(model_name="m"), m.MALFORMED),
        (
            pb.ModelInferRequest(
                inputs=[pb.ModelInferRequest.InferInputTensor(name="t", datatype="BYTES", shape=[1])],
                raw_input_contents=[b"\x01\x00\x00\x00a"],
            ),
            m.BYTES,
        ),
        (
            pb.ModelInferRequest(
                inputs=[pb.ModelInferRequest.InferInputTensor(name="t", datatype="FP32", shape=[1])],
                raw_input_contents=[b"\0" * 4],
                outputs=[
                    pb.ModelInferRequest.InferRequestedOutputTensor(
                        name="o", parameters={"classification": pb.InferParameter(int64_param=3)}
                    )
                ],
            ),
            m.CLASSIFICATION,
        ),
        (_request(np.zeros((3,)), name="scalar_rows"), None),  # 1-D: rows along dim 0 are fine
        (
            pb.ModelInferRequest(
                inputs=[
                    pb.ModelInferRequest.InferInputTensor(name="a", datatype="FP32", shape=[2, 1]),
                    pb.ModelInferRequest.InferInputTensor(name="b", datatype="FP32", shape=[3, 1]),
                ],
                raw_input_contents=[b"\0" * 8, b"\0" * 12],
            ),
            m.SHAPE,
        ),
        (_request(np.zeros((65, 64))), m.TOO_LARGE),
        (
            pb.ModelInferRequest(
                inputs=[pb.ModelInferRequest.InferInputTensor(name="t", datatype="FP32", shape=[2, 2])],
                raw_input_contents=[b"\0" * 4],
            ),
            m.MALFORMED,
        ),
    ],
)
def test_requests_that_do_not_fit_say_why(request_, reason):
    got = m.batchable(request_, 0, 64)
    if reason is None:
        assert isinstance(got, m.Rows)
    else:
        assert isinstance(got, m.PassThrough) and got.reason == reason, got


def test_a_request_without_the_batch_dimension_passes_through():
    got = m.batchable(_request(np.zeros((4,))), 1, 64)
    assert isinstance(got, m.PassThrough) and got.reason == m.SHAPE


def test_a_reply_with_other_rows_than_the_batch_is_a_mismatch():
    reqs = [_request(np.zeros((2, 4))), _request(np.zeros((1, 4)))]
    reply = pb.ModelInferResponse()
    reply.outputs.add(name="OUT", datatype="FP32", shape=[2, 4])
    reply.raw_output_contents.append(b"\0" * 32)
    got = m.split(reply, reqs, [2, 1], 0)
    assert isinstance(got, m.PassThrough) and got.reason == m.REPLY_MISMATCH


def test_integer_outputs_split_in_contents_form():
    reqs = [
        _request(np.arange(4).reshape(2, 2), raw=False, dtype="INT64"),
        _request(np.arange(2).reshape(1, 2), raw=False, dtype="INT64"),
    ]
    reply = pb.ModelInferResponse()
    reply.outputs.add(name="LABEL", datatype="INT64", shape=[3]).contents.int64_contents.extend([7, 8, 9])
    answers = m.split(reply, reqs, [2, 1], 0)
    assert isinstance(answers, list)
    assert [list(a.outputs[0].contents.int64_contents) for a in answers] == [[7, 8], [9]]
