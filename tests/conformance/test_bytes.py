"""BYTES tensors: elements of any length, empty, with NUL, multi-byte UTF-8 and (where the encoding
carries bytes rather than text) not UTF-8 at all, go in and come back as whole elements.

Runs for a model with a BYTES input (in the built-in matrix: each example's "echo"); skips
for the others, saying so. JSON carries a BYTES element as a string, so over REST JSON only
UTF-8 elements are sent; raw gRPC, typed gRPC contents and REST's binary extension carry any bytes.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from tests.conformance.client import CallFailed, Client, Encoding, Status
from tests.conformance.contract import InferRequest, ModelMeta, Tensor, concrete_shape, output_problems

if TYPE_CHECKING:
    from tests.conformance.conftest import Requests

TEXT = (b"", b"a", b"a\x00b", "é✓ünï".encode(), b"x" * 4096)
NOT_TEXT = (b"\xff", b"\xc0\xaf", b"\x00\xfe\xff\x00", bytes(range(256)))


def _bytes_request(meta: ModelMeta, requests: Requests, elements: tuple[bytes, ...]) -> InferRequest:
    """A valid request with every BYTES input holding `elements` (repeated to fill its shape)."""
    names = [spec.name for spec in meta.inputs if spec.datatype == "BYTES"]
    if not names:
        pytest.skip("the model has no BYTES input (of the examples' models, \"echo\" has one)")
    base = requests.valid()
    inputs = []
    for tensor in base.inputs:
        if tensor.datatype == "BYTES":
            spec = next(s for s in meta.inputs if s.name == tensor.name)
            shape = tuple(len(elements) if d == -1 else d for d in spec.shape[:1]) + concrete_shape(
                spec.shape[1:], 1
            )
            count = math.prod(shape)
            values = tuple(elements[k % len(elements)] for k in range(count))
            tensor = Tensor(tensor.name, "BYTES", shape, values)
        inputs.append(tensor)
    return replace(base, inputs=tuple(inputs))


def _batch(request: InferRequest) -> int:
    return request.inputs[0].shape[0] if request.inputs[0].shape else 1


def test_bytes_elements_of_every_length_come_back_whole(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    request = _bytes_request(meta, requests, TEXT)
    result = client.infer(request, encoding)
    problems = output_problems(meta, result, batch=_batch(request))
    assert not problems, "\n".join(problems)


def test_bytes_that_are_not_utf8_come_back_whole(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    if encoding == "json":
        pytest.skip("REST JSON carries a BYTES element as a string, so only UTF-8 text")
    request = _bytes_request(meta, requests, NOT_TEXT)
    try:
        result = client.infer(request, encoding)
    except CallFailed as error:
        if error.status is not Status.UNIMPLEMENTED:
            raise
        # The contract's word for "not supported here": e.g. a REST model without the binary
        # extension, behind a sidecar, can be sent BYTES as JSON text only.
        pytest.skip(f"the endpoint cannot carry BYTES that are not UTF-8: {error.message}")
    problems = output_problems(meta, result, batch=_batch(request))
    assert not problems, "\n".join(problems)
