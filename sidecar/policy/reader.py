"""Typed reads from a parsed YAML/JSON mapping, each error naming the field's path. No I/O.

`Fields(doc, "rate_limits")` reads keys of one mapping; `done()` refuses the keys nobody read,
naming the first one and the known ones. Every error is a PolicyError whose text starts with the
path of the offending field (`rate_limits.overrides[2].rate: -1 must be more than 0`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)")
_DURATION: Final = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_MISSING: Final = object()


class PolicyError(ValueError):
    """The document is invalid; the text names the field and what is wrong with it."""


class Fields:
    def __init__(self, doc: object, path: str) -> None:
        if doc is None:
            doc = {}
        if not isinstance(doc, Mapping):
            raise PolicyError(f"{path or 'policy'}: expected a mapping, got {_kind(doc)}")
        self._doc: Mapping[Any, Any] = doc
        self.path = path
        self._read: set[str] = set()

    def spelled_keys(self) -> list[str]:
        """The keys as the document spells them."""
        return [str(k) for k in self._doc]

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _spelled(self, key: str) -> str:
        # Spring's relaxed binding: a Config Server document says rate-limits for rate_limits.
        if key not in self._doc and "_" in key and key.replace("_", "-") in self._doc:
            return key.replace("_", "-")
        return key

    def has(self, key: str) -> bool:
        return self._spelled(key) in self._doc

    def raw(self, key: str, default: Any = None) -> Any:
        key = self._spelled(key)
        self._read.add(key)
        return self._doc.get(key, default)

    def sub(self, key: str) -> Fields:
        return Fields(self.raw(key), self.at(key))

    def text(self, key: str, default: str = "", *, allowed: tuple[str, ...] = ()) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise PolicyError(f"{self.at(key)}: {value!r} is not a string")
        if allowed and value not in allowed:
            raise PolicyError(f"{self.at(key)}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise PolicyError(f"{self.at(key)}: {value!r} is not true or false")
        return value

    def number(self, key: str, default: float | None, *, lo: float = 0.0, above: bool = False,
               hi: float = math.inf) -> float:  # fmt: skip
        value = self.raw(key, _MISSING if default is None else default)
        if value is _MISSING:
            raise PolicyError(f"{self.at(key)}: required")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PolicyError(f"{self.at(key)}: {value!r} is not a number")
        if (above and value <= lo) or value < lo:
            raise PolicyError(
                f"{self.at(key)}: {value!r} must be {'more than' if above else 'at least'} {lo:g}"
            )
        if value > hi:
            raise PolicyError(f"{self.at(key)}: {value!r} must be at most {hi:g}")
        return float(value)

    def integer(self, key: str, default: int | None, *, lo: int = 0, hi: int = 2**31) -> int:
        value = self.raw(key, _MISSING if default is None else default)
        if value is _MISSING:
            raise PolicyError(f"{self.at(key)}: required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(f"{self.at(key)}: {value!r} is not an integer")
        if not lo <= value <= hi:
            raise PolicyError(f"{self.at(key)}: {value} is out of range {lo}..{hi}")
        return value

    def duration(self, key: str, default: float, *, positive: bool = False) -> float:
        at = self.at(key)
        value = self.raw(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and _DURATION.fullmatch(value.strip()):
            seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value.strip()))
        else:
            raise PolicyError(f"{at}: {value!r} is not a duration (seconds, or e.g. 500ms, 2s, 1m)")
        if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
            raise PolicyError(f"{at}: {value!r} must be {'more than 0' if positive else 'at least 0'}")
        return seconds

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings; a single string reads as a list of one."""
        value = self.raw(key, [])
        if isinstance(value, str):
            value = [value]
        if value == "" or value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise PolicyError(f"{self.at(key)}: expected a list of non-empty strings, got {value!r}")
        return tuple(value)

    def items(self, key: str) -> list[Fields]:
        value = self.raw(key, [])
        if value is None or value == "":
            value = []
        if not isinstance(value, list):
            raise PolicyError(f"{self.at(key)}: expected a list, got {_kind(value)}")
        return [Fields(v, f"{self.at(key)}[{i}]") for i, v in enumerate(value)]

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.raw(key, {})
        if value is None or value == "":
            value = {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise PolicyError(f"{self.at(key)}: expected a mapping with string keys, got {_kind(value)}")
        return value

    def done(self) -> None:
        unknown = sorted(str(k) for k in self._doc if k not in self._read)
        if unknown:
            raise PolicyError(
                f"{self.at(unknown[0])}: unknown key (known here: {', '.join(sorted(self._read))})"
            )


def _kind(value: object) -> str:
    return "a list" if isinstance(value, list) else type(value).__name__
