"""Refusals: bad inputs are INVALID_ARGUMENT/400 with a message, an unknown model NOT_FOUND/404; deadlines."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.conformance import contract
from tests.conformance.client import CallFailed, Client, Encoding, GrpcClient, Status
from tests.conformance.contract import InferRequest, ModelMeta, batchable

if TYPE_CHECKING:
    from tests.conformance.conftest import Requests

DEADLINE = 0.001
QUICKLY = 1.0  # seconds a call with a 1 ms deadline may take to end, scheduling included
DEADLINE_ATTEMPTS = 3
DEADLINE_BATCHES = (64, 256, 1024, 4096)
DEADLINE_MAX_ELEMENTS = 2**20  # elements per request at most, however small the model's rows


def _refused(client: Client, request: InferRequest, encoding: Encoding, what: str) -> CallFailed:
    try:
        client.infer(request, encoding)
    except CallFailed as error:
        return error
    pytest.fail(f"ModelInfer with {what} succeeded; it should be refused")


BAD_INPUTS: dict[str, Callable[[InferRequest, ModelMeta], InferRequest]] = {
    "wrong-datatype": lambda r, m: contract.with_wrong_datatype(r),
    "wrong-shape": contract.with_wrong_shape,
    "wrong-input-name": lambda r, m: contract.with_unknown_input_name(r),
    "missing-input": lambda r, m: contract.without_last_input(r),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
def test_bad_input_is_invalid_argument(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding, bad: str
) -> None:
    request = BAD_INPUTS[bad](requests.valid(), meta)
    shown = ", ".join(f'"{t.name}" {t.datatype} {list(t.shape)}' for t in request.inputs) or "no inputs"
    error = _refused(client, request, encoding, f"{bad} ({shown})")
    assert error.status is Status.INVALID_ARGUMENT, (
        f"{bad} ({shown}) should be INVALID_ARGUMENT/400, but {error}"
    )
    assert error.message.strip(), f"{bad} was refused with {error.code} but an empty message"


def test_unknown_model_is_not_found(client: Client, requests: Requests, encoding: Encoding) -> None:
    request = InferRequest(contract.UNKNOWN_MODEL, requests.valid().inputs)
    error = _refused(client, request, encoding, f'model "{contract.UNKNOWN_MODEL}"')
    assert error.status is Status.NOT_FOUND, f"an unknown model should be NOT_FOUND/404, but {error}"
    assert error.message.strip(), f"an unknown model was refused with {error.code} but an empty message"


def test_deadline_ends_the_call(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    # Over REST the deadline travels in grpc-timeout (as grpc-gateway reads it; ai-sidecar does),
    # and the kit's socket does not enforce it: a server that ignores the header answers 200.
    over_grpc = isinstance(client, GrpcClient)
    # A fast server can answer before a 1 ms timer fires, so the batch grows until the deadline
    # wins, within a bound on the request's size.
    rows = sum(math.prod(contract.concrete_shape(spec.shape, 1)) for spec in meta.inputs)
    batches = [b for b in DEADLINE_BATCHES if b * rows <= DEADLINE_MAX_ELEMENTS] if batchable(meta) else []
    tried = batches or [1]
    for batch in tried:
        request = requests.valid(batch)
        for _ in range(DEADLINE_ATTEMPTS):
            started = time.monotonic()
            try:
                client.infer(request, encoding, timeout=DEADLINE)
            except CallFailed as error:
                took = time.monotonic() - started
                # A server may enforce the deadline itself and reset the stream (grpc-java sends
                # RST_STREAM CANCEL when it passes); a client that sees the reset before its own
                # timer fires reports CANCELLED. Either way the deadline ended the call.
                reset_at_deadline = (
                    error.code == "CANCELLED" and "RST_STREAM" in error.message and took >= DEADLINE
                )
                assert error.status is Status.DEADLINE_EXCEEDED or reset_at_deadline, (
                    f"a call with a 1 ms deadline should end DEADLINE_EXCEEDED, but {error}"
                )
                assert took < QUICKLY, f"a call with a 1 ms deadline took {took:.3f} s to end"
                # The abandoned call must not have hurt the server: the next one succeeds.
                client.infer(requests.valid(), encoding)
                return
            took = time.monotonic() - started
            if over_grpc:
                assert took < QUICKLY, f"a call with a 1 ms deadline succeeded after {took:.3f} s"
    ignored = "" if over_grpc else (
        ", or the server ignores grpc-timeout (the OIP REST binding has no standard deadline header; "
        "ai-sidecar reads grpc-timeout, as grpc-gateway does)"
    )
    pytest.skip(
        f"all {DEADLINE_ATTEMPTS * len(tried)} calls (batch up to {tried[-1]}) were answered before their "
        f"1 ms deadline fired{ignored}; the deadline could not be observed"
    )
