"""Kubernetes' own OpenAPI schemas (kubernetes-validate), pinned, as the oracle for manifests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import kubernetes_validate
import yaml

# The version every shipped manifest and injected pod must validate against: native sidecars'
# restartPolicy on init containers is there from 1.28 and on by default from 1.29; 1.33 is the
# release in which they are GA.
KUBERNETES = "1.33.0"
# The last release without native sidecars: what the classic variant is for.
BEFORE_NATIVE_SIDECARS = "1.27.0"


def schema_errors(obj: Mapping[str, Any], version: str = KUBERNETES) -> str:
    """'' when `obj` is valid (strict: unknown fields are errors too), else the validator's message."""
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}: {e.message} at {list(e.path)}"
    except kubernetes_validate.SchemaNotFoundError as e:
        return f"{obj.get('kind')}: no schema ({e})"
    return ""


def documents(text: str) -> Iterator[dict[str, Any]]:
    """Every object in YAML text, `List` items included."""
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict) and doc.get("kind", "").endswith("List") and "items" in doc:
            yield from doc["items"]
        elif isinstance(doc, dict):
            yield doc
