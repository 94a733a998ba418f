"""The RFC 6902 JSON Patch that turns a pod into its injected self. Pure.

Coarse on purpose: one `add` or `replace` per changed top-level field of `spec` and of
`metadata` (annotations, labels), carrying the field's whole new value. Such a patch cannot
misplace a list element, and it applies exactly to the object the webhook was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pod_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for section in ("metadata", "spec"):
        old, new = before.get(section) or {}, after.get(section) or {}
        if section not in before and new:
            ops.append({"op": "add", "path": f"/{section}", "value": new})
            continue
        for key, value in new.items():
            path = f"/{section}/{_escape(key)}"
            if key not in old:
                ops.append({"op": "add", "path": path, "value": value})
            elif old[key] != value:
                ops.append({"op": "replace", "path": path, "value": value})
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": f"/{section}/{_escape(key)}"})
    return ops


def _escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901 section 4)."""
    return key.replace("~", "~0").replace("/", "~1")
