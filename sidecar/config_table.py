"""The settings table: one row per field of a settings dataclass, read from the field's metadata.

A field declares its row with `field(metadata=about(kind, help))`; the row adds the spellings
(flag, SIDECAR_* variable) and the default shown in --help. Knows nothing of which settings exist,
where their values come from (config.py) or how a value is parsed (config_values.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sidecar.config_values import Kind
from sidecar.core.env import PREFIX

_META: Final = "sidecar.setting"


@dataclass(frozen=True)
class _About:
    kind: Kind
    help: str
    flag: str | None
    repeatable: bool


def about(kind: Kind, help: str, *, flag: str | None = None, repeatable: bool = False) -> dict[str, _About]:
    """A field's metadata: its row. The flag is `--` + the kebab-case name unless `flag` names another."""
    return {_META: _About(kind, help, flag, repeatable)}


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table: how a SidecarConfig field is spelled, parsed and shown."""

    name: str
    kind: Kind
    help: str
    default: object  # dataclasses.MISSING when required
    flag: str
    repeatable: bool

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    def shown_default(self) -> str:
        return "required" if self.required else self.kind.show(self.default)


def rows(fields: Iterable[dataclasses.Field[Any]]) -> tuple[Setting, ...]:
    """The rows of `fields`, in their order (the order --help shows them in)."""
    table = []
    for f in fields:
        row = f.metadata[_META]
        flag = row.flag or "--" + f.name.replace("_", "-")
        table.append(Setting(f.name, row.kind, row.help, f.default, flag, row.repeatable))
    return tuple(table)
