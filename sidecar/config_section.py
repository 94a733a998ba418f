"""One mapping of a YAML policy document read key by key, each value through a config_values kind.

Every error is one ConfigError line naming the path of the value (`capture.sinks[1].kafka.topic`),
and a key the reader was never asked for is refused by `done()`, so a misspelt key fails the
start instead of being ignored. Knows nothing about which sections exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.config_values import Invalid, Kind, shown
from sidecar.core.errors import ConfigError


class Section:
    def __init__(self, body: object, where: str, *, root: bool = False) -> None:
        """`where` names the mapping in errors; a `root` one (a file) names its keys as `FILE: key`."""
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {shown(body)}")
        self._body: Mapping[Any, Any] = body
        self.where = where
        self._join = ": " if root else "."
        self._read: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self._body

    def value(self, key: str, kind: Kind, default: Any) -> Any:
        """The key's value parsed by kind, or default when the key is absent (or null)."""
        self._read.add(key)
        raw = self._body.get(key)
        if raw is None:
            return default
        try:
            return kind.parse(raw)
        except Invalid as e:
            raise ConfigError(f"{self.at(key)}: {e}") from None

    def required(self, key: str, kind: Kind) -> Any:
        if self._body.get(key) is None:
            raise ConfigError(f"{self.at(key)}: required")
        return self.value(key, kind, None)

    def section(self, key: str) -> Section:
        """The mapping under key; an absent key reads as an empty mapping."""
        self._read.add(key)
        return Section(self._body.get(key) or {}, self.at(key))

    def sections(self, key: str) -> list[Section]:
        """The list of mappings under key; an absent key reads as an empty list."""
        self._read.add(key)
        raw = self._body.get(key) or []
        if not isinstance(raw, list):
            raise ConfigError(f"{self.at(key)}: expected a list, got {shown(raw)}")
        return [Section(item, f"{self.at(key)}[{i}]") for i, item in enumerate(raw)]

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings (or one string) under key; absent reads as ()."""
        self._read.add(key)
        raw = self._body.get(key)
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(item, str) and item.strip() for item in items):
            raise ConfigError(f"{self.at(key)}: expected a list of names, got {shown(raw)}")
        return tuple(dict.fromkeys(item.strip() for item in items))

    def at(self, key: str) -> str:
        return f"{self.where}{self._join}{key}"

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {message}")

    def done(self) -> None:
        """Refuse any key that was not read."""
        unknown = sorted(str(k) for k in self._body if k not in self._read)
        if unknown:
            known = ", ".join(sorted(self._read))
            raise ConfigError(f"{self.where}: unknown key {unknown[0]!r} (known: {known})")
