"""The REST binding's OpenAPI 3 document (sidecar/oip/openapi.yaml, package data), served as JSON and YAML.

Loaded once, at start-up, so a broken document fails the sidecar at once rather than a caller
later. Knows nothing about the routes it describes (tests/integration/test_openapi.py checks
the two agree).
"""

from __future__ import annotations

from importlib import resources

import yaml
from aiohttp import web

from sidecar.oip import fast_json

DOCUMENT = "openapi.yaml"


def load_text() -> str:
    return resources.files("sidecar.oip").joinpath(DOCUMENT).read_text(encoding="utf-8")


def load() -> dict[str, object]:
    document = yaml.safe_load(load_text())
    if not isinstance(document, dict) or "openapi" not in document:
        raise RuntimeError(f"sidecar/oip/{DOCUMENT} is not an OpenAPI document")
    return document


def add_routes(router: web.UrlDispatcher) -> None:
    """GET /openapi.json and GET /openapi.yaml."""
    text = load_text()
    as_json = fast_json.dumps(load())

    async def json_document(request: web.Request) -> web.Response:
        return web.Response(body=as_json, content_type="application/json")

    async def yaml_document(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/yaml")

    router.add_get("/openapi.json", json_document)
    router.add_get("/openapi.yaml", yaml_document)
