"""Model versions: every version ModelMetadata lists answers ModelReady, ModelMetadata and ModelInfer when
addressed by name (gRPC `version` / `model_version`, REST `/versions/{v}`); an unlisted one is NOT_FOUND."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conformance import contract
from tests.conformance.client import CallFailed, Client, Encoding, Status
from tests.conformance.contract import ModelMeta, output_problems

if TYPE_CHECKING:
    from tests.conformance.conftest import Requests


def _versions(meta: ModelMeta) -> tuple[str, ...]:
    if not meta.versions:
        pytest.skip("ModelMetadata lists no versions: the model does not version (OIP allows that)")
    return meta.versions


def test_each_listed_version_is_ready_and_has_its_metadata(
    client: Client, model: str, meta: ModelMeta
) -> None:
    for version in _versions(meta):
        assert client.model_ready(model, version), f'ModelReady for version "{version}" answered false'
        problems = contract.metadata_problems(client.model_metadata(model, version), model)
        assert not problems, f'ModelMetadata for version "{version}": ' + "\n".join(problems)


def test_infer_on_each_listed_version(
    client: Client, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    for version in _versions(meta):
        result = client.infer(requests.valid(version=version), encoding)
        problems = output_problems(meta, result, batch=1)
        assert not problems, f'version "{version}": ' + "\n".join(problems)
        # "model_version" is optional in a response; when given it is the version that answered.
        assert result.model_version in ("", version), (
            f'ModelInfer on version "{version}" answered model_version "{result.model_version}"'
        )


def test_unknown_version_is_not_found(
    client: Client, model: str, meta: ModelMeta, requests: Requests, encoding: Encoding
) -> None:
    _versions(meta)
    unknown = contract.UNKNOWN_VERSION
    try:
        ready = client.model_ready(model, unknown)
    except CallFailed as error:
        assert error.status is Status.NOT_FOUND, f"ModelReady on an unknown version: {error}"
    else:
        assert not ready, f'ModelReady for version "{unknown}" of "{model}" answered true'
    with pytest.raises(CallFailed) as refused:
        client.infer(requests.valid(version=unknown), encoding)
    assert refused.value.status is Status.NOT_FOUND, (
        f"ModelInfer on an unknown version should be NOT_FOUND/404, but {refused.value}"
    )
    assert refused.value.message.strip(), "ModelInfer on an unknown version was refused with an empty message"
