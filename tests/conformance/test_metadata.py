"""ServerMetadata and ModelMetadata: present, and consistent with the contract's vocabulary."""

from __future__ import annotations

import pytest

from tests.conformance.client import CallFailed, Client, Status
from tests.conformance.contract import UNKNOWN_MODEL, metadata_problems


def test_server_metadata_has_name_and_version(client: Client) -> None:
    meta = client.server_metadata()
    assert meta.name, "ServerMetadata has an empty name"
    assert meta.version, "ServerMetadata has an empty version"


def test_model_metadata_is_consistent(client: Client, model: str) -> None:
    problems = metadata_problems(client.model_metadata(model), model)
    assert not problems, "\n".join(problems)


def test_unknown_model_metadata_is_not_found(client: Client) -> None:
    try:
        meta = client.model_metadata(UNKNOWN_MODEL)
    except CallFailed as error:
        assert error.status is Status.NOT_FOUND, (
            f'ModelMetadata("{UNKNOWN_MODEL}") should be NOT_FOUND/404, but {error}'
        )
    else:
        pytest.fail(f'ModelMetadata("{UNKNOWN_MODEL}") answered {meta}; it should be NOT_FOUND/404')
