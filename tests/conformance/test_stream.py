"""ModelStreamInfer: bidirectional, several requests on one stream answered in order, errors mid-stream.

OIP's streaming call is gRPC's alone: the REST binding has none, so over REST these checks skip.
An error for one request is that answer's `error_message`, and the stream goes on, as the
contract's proto says; a server that ends the whole stream instead fails the check.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from tests.conformance import contract
from tests.conformance.client import Client, Encoding, GrpcClient, StreamAnswer
from tests.conformance.contract import InferRequest, InferResult, ModelMeta, output_problems

if TYPE_CHECKING:
    from tests.conformance.conftest import Requests

STREAMED = 5


def _grpc(client: Client) -> GrpcClient:
    if not isinstance(client, GrpcClient):
        pytest.skip("ModelStreamInfer is a gRPC call; the OIP REST binding has no streaming call")
    return client


def _result(answer: StreamAnswer, what: str) -> InferResult:
    assert isinstance(answer, InferResult), f"{what} was answered with error_message {answer!r}"
    return answer


def test_stream_answers_every_request_in_order(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    stream = [requests.valid(id=f"stream-{i}") for i in range(STREAMED)]
    answers = _grpc(client).stream_infer(stream, encoding)
    assert len(answers) == STREAMED, f"{STREAMED} requests on one stream got {len(answers)} answers"
    for i, answer in enumerate(answers):
        result = _result(answer, f"request {i}")
        assert result.id == f"stream-{i}", f"answer {i} has id {result.id!r}: answers must come in order"
        problems = output_problems(meta, result, batch=1)
        assert not problems, f"answer {i}: " + "\n".join(problems)


def test_an_error_mid_stream_answers_that_request_and_the_stream_goes_on(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    good = requests.valid(id="before")
    bad_model = InferRequest(contract.UNKNOWN_MODEL, good.inputs, id="unknown-model")
    bad_shape = replace(contract.with_wrong_shape(good, meta), id="wrong-shape")
    stream = [good, bad_model, bad_shape, replace(good, id="after")]
    answers = _grpc(client).stream_infer(stream, encoding)
    assert len(answers) == len(stream), f"{len(stream)} requests got {len(answers)} answers"
    assert _result(answers[0], "the first, valid request").id == "before"
    for i, what in ((1, "an unknown model"), (2, "a wrong shape")):
        assert isinstance(answers[i], str) and answers[i], (
            f"request {i} ({what}) should be answered with a non-empty error_message, got {answers[i]!r}"
        )
    after = _result(answers[3], "the valid request after two errors")
    assert after.id == "after"
    assert not output_problems(meta, after, batch=1)
