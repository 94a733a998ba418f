"""JSON text ⇄ Python values for the REST binding, with orjson. Knows nothing about tensors or HTTP.

Why orjson: it parses and writes in C, 5x and 14x faster than the standard library on a body of
10^5 numbers (3 ms and 3 ms against 17 ms and 40 ms here), it takes a memoryview, so the JSON
header of a binary-extension body is parsed without copying it out, and it is strict where the
REST binding must be: no NaN or Infinity literals, no lone surrogates, no invalid UTF-8, a
nesting limit (1024; from 3.10 on, which the package requires: orjson 3.8 had none, and 10^6
nested arrays, a 2 MB body, overflowed its stack and killed the process). Duplicate keys keep
the last value, as the standard library does.

What it does differently, and how this module keeps the binding's behaviour:
- it writes a non-finite float as ``null``. A tensor element or parameter that is NaN or
  infinite cannot be carried by JSON, so ``dumps_finite`` refuses it with UNIMPLEMENTED
  naming where it is (the caller can ask for that output as binary), rather than let a client
  (or a REST model) read ``null``. The check costs a ``b"null" in text`` scan unless a null is really there.
- it reads an integer beyond 64 bits as a float, which the tensor codec then refuses where an
  integer is required.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import orjson

from sidecar.core.errors import SidecarError
from sidecar.core.status import Code

__all__ = ["dumps", "dumps_finite", "loads"]


def loads(text: bytes | memoryview, blame: Callable[[str], SidecarError]) -> object:
    """Parsed JSON; `blame` makes the error (the caller's or the model's) if it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise blame(f"the body is not valid JSON: {e}") from None


def dumps(value: object) -> bytes:
    """Compact JSON of values this codebase built (dicts, lists, str, int, float, bool)."""
    return orjson.dumps(value)


def dumps_finite(value: dict[str, object], remedy: str) -> bytes:
    """As dumps, refusing a non-finite float with UNIMPLEMENTED that names its JSON path and `remedy`."""
    text = orjson.dumps(value)
    if b"null" in text:
        where = _non_finite(value, "")
        if where is not None:
            raise SidecarError(
                Code.UNIMPLEMENTED, f"{where} is not a finite number, which JSON cannot carry ({remedy})"
            )
    return text


def _non_finite(value: object, path: str) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "the value"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        # A tensor's flat data: scanned in one pass before it is walked for the culprit.
        flat = bool(value) and not isinstance(value[0], dict | list)
        if flat and all(math.isfinite(v) for v in value if type(v) is float):
            return None
        for k, item in enumerate(value):
            found = _non_finite(item, f"{path}[{k}]")
            if found is not None:
                return found
    return None
