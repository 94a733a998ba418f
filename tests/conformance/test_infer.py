"""ModelInfer with valid inputs built from ModelMetadata: outputs, requested outputs, id, batch sizes."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from tests.conformance.client import Client, Encoding
from tests.conformance.contract import ModelMeta, batchable, output_problems

if TYPE_CHECKING:
    from tests.conformance.conftest import Requests

BATCHES = (1, 2, 7, 64)


def test_outputs_match_metadata(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    result = client.infer(requests.valid(), encoding)
    problems = output_problems(meta, result, batch=1)
    assert not problems, "\n".join(problems)


def test_requested_output_alone_is_returned(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    wanted = (meta.outputs[-1].name,)
    result = client.infer(requests.valid(outputs=wanted), encoding)
    problems = output_problems(meta, result, batch=1, requested=wanted)
    assert not problems, "\n".join(problems)


def test_id_is_echoed(client: Client, requests: Requests, encoding: Encoding) -> None:
    request_id = f"conformance-{uuid.uuid4()}"
    result = client.infer(requests.valid(id=request_id), encoding)
    assert result.id == request_id, f"the response's id is {result.id!r}, the request's was {request_id!r}"


@pytest.mark.parametrize("batch", BATCHES)
def test_batch_size(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding, batch: int
) -> None:
    if batch > 1 and not batchable(meta):
        pytest.skip(
            "not every input's first dimension is -1, so the batch size is the model's, not the kit's"
        )
    result = client.infer(requests.valid(batch), encoding)
    problems = output_problems(meta, result, batch=batch)
    assert not problems, "\n".join(problems)
