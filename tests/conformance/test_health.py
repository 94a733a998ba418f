"""Liveness and readiness: ServerLive, ServerReady, ModelReady, and grpc.health.v1 where it is served."""

from __future__ import annotations

import pytest

from tests.conformance.client import CallFailed, Client, GrpcClient, Status
from tests.conformance.contract import UNKNOWN_MODEL


def test_server_is_live(client: Client) -> None:
    assert client.server_live() is True, "ServerLive answered false"


def test_server_is_ready(client: Client) -> None:
    assert client.server_ready() is True, "ServerReady answered false"


def test_model_is_ready(client: Client, model: str) -> None:
    assert client.model_ready(model) is True, f'ModelReady("{model}") answered false'


def test_unknown_model_is_not_ready(client: Client) -> None:
    # Both answers are seen in the wild and neither breaks the contract.
    try:
        ready = client.model_ready(UNKNOWN_MODEL)
    except CallFailed as error:
        assert error.status is Status.NOT_FOUND, (
            f'ModelReady("{UNKNOWN_MODEL}") should answer false or NOT_FOUND/404, but {error}'
        )
    else:
        assert ready is False, f'ModelReady("{UNKNOWN_MODEL}") answered true for a model that does not exist'


def test_grpc_health_check_is_serving(client: Client) -> None:
    if not isinstance(client, GrpcClient):
        pytest.skip("grpc.health.v1 is a gRPC service; a REST endpoint has none")
    try:
        status = client.health_check()
    except CallFailed as error:
        if error.status is Status.UNIMPLEMENTED:
            pytest.skip("no health service (grpc.health.v1 Check is UNIMPLEMENTED)")
        raise
    assert status == "SERVING", f'grpc.health.v1 Check("") answered {status}'
