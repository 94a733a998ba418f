"""The REST binding's OpenAPI 3 document (sidecar/oip/openapi.yaml, package data), served as JSON and YAML.

The text is read at start-up; it is parsed (PyYAML) only when /openapi.json is first asked for,
so a sidecar nobody asks pays nothing for it (tests/unit/test_lazy_imports.py), and a broken
document cannot ship: tests/integration/test_openapi.py validates it and checks it against the
routes. Knows nothing about the routes it describes.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from sidecar.oip import fast_json

DOCUMENT = "openapi.yaml"


def load_text() -> str:
    return resources.files("sidecar.oip").joinpath(DOCUMENT).read_text(encoding="utf-8")


def load() -> dict[str, object]:
    import yaml  # only for the JSON rendering, on first use

    document = yaml.safe_load(load_text())
    if not isinstance(document, dict) or "openapi" not in document:
        raise RuntimeError(f"sidecar/oip/{DOCUMENT} is not an OpenAPI document")
    return document


def add_routes(router: web.UrlDispatcher) -> None:
    """GET /openapi.json and GET /openapi.yaml."""
    text = load_text()
    rendered: list[bytes] = []

    async def json_document(request: web.Request) -> web.Response:
        if not rendered:
            rendered.append(fast_json.dumps(load()))
        return web.Response(body=rendered[0], content_type="application/json")

    async def yaml_document(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/yaml")

    router.add_get("/openapi.json", json_document)
    router.add_get("/openapi.yaml", yaml_document)
