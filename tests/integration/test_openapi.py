"""The REST binding's OpenAPI document: valid OpenAPI 3, the routes the HTTP ingress has, served as kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from sidecar.health.readiness import Readiness
from sidecar.ingress.http_listener import HttpIngress
from sidecar.model.http_link import HttpModelLink
from tests.support.procs import Proc, http_get, running, start_model, start_sidecar

SPEC = Path(__file__).resolve().parents[2] / "sidecar" / "oip" / "openapi.yaml"


def spec() -> dict[str, object]:
    document = yaml.safe_load(SPEC.read_text())
    assert isinstance(document, dict)
    return document


def test_the_document_is_valid_openapi_3():
    document = spec()
    validate(document)
    assert str(document["openapi"]).startswith("3.")


def test_the_document_lists_exactly_the_routes_the_ingress_serves():
    ingress = HttpIngress(
        host="127.0.0.1",
        port=0,
        link=HttpModelLink("127.0.0.1:9", 1 << 20),
        filters=[],
        readiness=Readiness(1, 1),
        max_message_bytes=1 << 20,
        timeout=1.0,
        shutdown_timeout=1.0,
        metrics=lambda: (b"", "text/plain"),
    )
    paths = spec()["paths"]
    assert isinstance(paths, dict)
    documented = {(verb.upper(), path) for path, ops in paths.items() for verb in ops}
    assert documented == set(ingress.routes())


def test_every_infer_route_documents_the_binary_extension():
    paths = spec()["paths"]
    assert isinstance(paths, dict)
    for path, ops in paths.items():
        if path.endswith("/infer"):
            op = ops["post"]
            names = {p["$ref"].rsplit("/", 1)[1] for p in op["parameters"]}
            assert {"InferenceHeaderContentLength", "GrpcTimeout"} <= names, path
            assert "Inference-Header-Content-Length" in op["responses"]["200"]["headers"], path


@pytest.fixture(scope="module")
def sidecar() -> Iterator[Proc]:
    with running(start_model()) as model, running(start_sidecar(model.ports["grpc"])) as proc:
        yield proc


@pytest.mark.integration
def test_the_http_port_serves_the_document_as_kept(sidecar):
    status, body = http_get(sidecar.ports["http"], "/openapi.json")
    assert status == 200 and json.loads(body) == spec()
    status, body = http_get(sidecar.ports["http"], "/openapi.yaml")
    assert status == 200 and body.decode() == SPEC.read_text()
