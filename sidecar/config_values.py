"""How one raw setting value is parsed, validated and shown. Knows nothing of which settings exist.

Each kind parses a raw value (a str from flags and the environment; any YAML
scalar or list from the file) into the field's type, or raises Invalid with a
reason that names the value but not the key (the caller adds key and source).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final, Protocol

KiB: Final = 1024
MiB: Final = 1024 * KiB
GiB: Final = 1024 * MiB

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class Invalid(ValueError):
    """A raw value failed its parser; the text says why, without the key or the source."""


def shown(raw: object) -> str:
    """A raw value as it appears in a message: numbers bare, strings quoted."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    if isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        return raw.strip()
    return json.dumps(raw, ensure_ascii=False, default=str)


def as_text(raw: object) -> str:
    if not isinstance(raw, str):
        raise Invalid(f"{shown(raw)} is not a string (quote it in YAML)")
    return raw.strip()


# Value kinds: each parses a raw value (a str from flags and env; any YAML scalar or list from
# the file) into the field's type, and shows a typed value back for --help.


class Kind(Protocol):
    @property
    def metavar(self) -> str: ...

    def parse(self, raw: object) -> Any: ...

    def show(self, value: Any) -> str: ...


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int | None = None
    metavar: str = "N"

    def parse(self, raw: object) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
            value = int(raw)
        else:
            raise Invalid(f"{shown(raw)} is not an integer")
        if self.hi is None and value < self.lo:
            raise Invalid(f"{value} is below the minimum of {self.lo}")
        if self.hi is not None and not self.lo <= value <= self.hi:
            raise Invalid(f"{value} is out of range {self.lo}..{self.hi}")
        return value

    def show(self, value: int) -> str:
        return str(value)


_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")


@dataclass(frozen=True)
class Duration:
    """Seconds: a plain number, or units like `500ms`, `2s`, `1m30s`, `1h`."""

    positive: bool
    metavar: str = "DURATION"

    def parse(self, raw: object) -> float:
        text = raw.strip() if isinstance(raw, str) else None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            seconds = float(raw)
        elif text is not None and _NUMBER.fullmatch(text):
            seconds = float(text)
        elif text is not None and _DURATION.fullmatch(text):
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise Invalid(f"{shown(raw)} is not a duration (seconds, or e.g. 500ms, 2s, 1m)")
        if not math.isfinite(seconds):
            raise Invalid(f"{shown(raw)} is not a finite duration")
        if self.positive and seconds <= 0:
            raise Invalid(f"{shown(raw)} must be more than 0")
        if seconds < 0:
            raise Invalid(f"{shown(raw)} must not be negative")
        return seconds

    def show(self, value: float) -> str:
        if value == int(value):
            return f"{int(value)}s"
        millis = value * 1000
        if abs(millis - round(millis)) < 1e-9:
            return f"{round(millis)}ms"
        return f"{value:g}s"


_SIZE_UNITS: Final = {
    "": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": KiB, "mib": MiB, "gib": GiB,
}  # fmt: skip
_SIZE = re.compile(r"(\d+)\s*([A-Za-z]*)")


@dataclass(frozen=True)
class Size:
    """Bytes: a plain integer, or units like `1KiB`, `64MiB` (binary) or `1MB` (decimal)."""

    lo: int
    hi: int
    metavar: str = "BYTES"

    def parse(self, raw: object) -> int:
        match = _SIZE.fullmatch(raw.strip()) if isinstance(raw, str) else None
        unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif match is not None and unit is not None:
            value = int(match.group(1)) * unit
        else:
            raise Invalid(f"{shown(raw)} is not a size (bytes, or e.g. 1KiB, 64MiB)")
        if value < self.lo:
            raise Invalid(f"{shown(raw)} is below the minimum of {self.show(self.lo)}")
        if value > self.hi:
            raise Invalid(f"{shown(raw)} is above the maximum of {self.hi} bytes")
        return value

    def show(self, value: int) -> str:
        for suffix, unit in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
            if value and value % unit == 0:
                return f"{value // unit}{suffix}"
        return str(value)


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]
    upper: bool
    planned: tuple[str, ...] = ()  # known values the validator rejects until implemented
    metavar: str = "NAME"

    def parse(self, raw: object) -> str:
        text = as_text(raw)
        value = text.upper() if self.upper else text.lower()
        if value in self.choices:
            return value
        options = ", ".join(self.choices)
        if value in self.planned:
            raise Invalid(f'"{text}" is not supported yet (choose from: {options})')
        raise Invalid(f"{shown(text)} is not one of: {options}")

    def show(self, value: str) -> str:
        return value


_APP_NAME = re.compile(r"[A-Za-z0-9._-]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class AppName:
    metavar: str = "NAME"

    def parse(self, raw: object) -> str:
        text = as_text(raw)
        if not text:
            raise Invalid("must not be empty")
        if not _APP_NAME.fullmatch(text):
            raise Invalid(f'{shown(text)} may contain only letters, digits, "-", "_" and "."')
        return text

    def show(self, value: str) -> str:
        return value


def _host(text: str) -> str:
    """A bare host name, IPv4 or IPv6 address (brackets removed); raises Invalid otherwise."""
    bracketed = text.startswith("[") and text.endswith("]")
    bare = text[1:-1] if bracketed else text
    if _is_ipv6(bare) or (not bracketed and _HOSTNAME.fullmatch(bare)):
        return bare
    raise Invalid(f"{shown(text)} is not a host name or IP address")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Host:
    metavar: str = "HOST"

    def parse(self, raw: object) -> str:
        text = as_text(raw)
        if not text:
            raise Invalid("must not be empty")
        return _host(text)

    def show(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class HostPort:
    """HOST:PORT with port 1..65535; IPv6 hosts in brackets. Kept as text, as gRPC targets are."""

    metavar: str = "HOST:PORT"

    def parse(self, raw: object) -> str:
        text = as_text(raw)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port:
            raise Invalid(f"{shown(text)} is not HOST:PORT")
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            raise Invalid(f"{shown(text)}: an IPv6 host needs brackets, e.g. [::1]:{port}")
        _host(host)
        if not port.isdigit():
            raise Invalid(f"{shown(text)}: port {shown(port)} is not an integer")
        if not 1 <= int(port) <= 65535:
            raise Invalid(f"{shown(text)}: port {int(port)} is out of range 1..65535")
        return f"{host}:{int(port)}"

    def show(self, value: str) -> str:
        return value


_MODEL_NAME = re.compile(r"[^\s,/]+")


@dataclass(frozen=True)
class Names:
    """Model names: a comma-separated string, or a list of them (YAML, repeated flags)."""

    metavar: str = "NAME"

    def parse(self, raw: object) -> tuple[str, ...]:
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        names: dict[str, None] = {}  # ordered and de-duplicated
        for item in items:
            for name in as_text(item).split(","):
                name = name.strip()
                if name and not _MODEL_NAME.fullmatch(name):
                    raise Invalid(f"{shown(name)} is not a model name (no spaces or slashes)")
                if name:
                    names[name] = None
        return tuple(names)

    def show(self, value: tuple[str, ...]) -> str:
        return ",".join(value) if value else "none"


@dataclass(frozen=True)
class Text:
    """Free text matching `pattern` (the empty string allowed when `empty` is true)."""

    pattern: str = r".*"
    describe: str = "text"
    empty: bool = True
    metavar: str = "TEXT"

    def parse(self, raw: object) -> str:
        value = as_text(raw)
        if value == '""':  # how --help shows the empty default
            value = ""
        if not value and not self.empty:
            raise Invalid("must not be empty")
        if value and not re.fullmatch(self.pattern, value):
            raise Invalid(f"{shown(value)} is not {self.describe}")
        return value

    def show(self, value: str) -> str:
        return value or '""'


@dataclass(frozen=True)
class Urls:
    """HTTP(S) base URLs: comma-separated, or a YAML list."""

    metavar: str = "URL[,URL...]"

    def parse(self, raw: object) -> tuple[str, ...]:
        if raw is None or (isinstance(raw, str) and raw.strip().lower() == "none"):
            return ()
        items = raw if isinstance(raw, list) else [raw]
        urls: dict[str, None] = {}
        for item in items:
            for url in as_text(item).split(","):
                url = url.strip()
                if not url:
                    continue
                if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
                    raise Invalid(f"{shown(url)} is not an http:// or https:// URL")
                urls[url if url.endswith("/") else url + "/"] = None
        return tuple(urls)

    def show(self, value: tuple[str, ...]) -> str:
        return ",".join(value) if value else "none"


@dataclass(frozen=True)
class AutoDuration:
    """A Duration, or `auto` (None): the app derives the value from other settings."""

    positive: bool
    metavar: str = "DURATION|auto"

    def parse(self, raw: object) -> float | None:
        if raw is None or (isinstance(raw, str) and raw.strip().lower() == "auto"):
            return None
        return Duration(self.positive).parse(raw)

    def show(self, value: float | None) -> str:
        return "auto" if value is None else Duration(self.positive).show(value)


_SWITCH: Final = {
    "on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False,
}  # fmt: skip


@dataclass(frozen=True)
class Switch:
    """On or off: `on`/`off` (also true/false, yes/no, 1/0, and YAML booleans, which `on` becomes)."""

    metavar: str = "on|off"

    def parse(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        value = _SWITCH.get(as_text(raw).lower()) if isinstance(raw, str) else None
        if value is None:
            raise Invalid(f"{shown(raw)} is not on or off")
        return value

    def show(self, value: bool) -> str:
        return "on" if value else "off"


@dataclass(frozen=True)
class AutoSwitch:
    """A Switch, or `auto` (None): the loader decides from the environment the sidecar runs in."""

    metavar: str = "on|off|auto"

    def parse(self, raw: object) -> bool | None:
        if raw is None or (isinstance(raw, str) and raw.strip().lower() == "auto"):
            return None
        return Switch().parse(raw)

    def show(self, value: bool | None) -> str:
        return "auto" if value is None else Switch().show(value)


@dataclass(frozen=True)
class Mode:
    """One of a few named modes, among them `off` and `on` (YAML reads a bare on/off as a boolean)."""

    choices: tuple[str, ...]
    metavar: str = "MODE"

    def parse(self, raw: object) -> str:
        if isinstance(raw, bool):
            return "on" if raw else "off"
        return Choice(self.choices, upper=False).parse(raw)

    def show(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class Ratio:
    """A fraction from 0 to 1 inclusive."""

    metavar: str = "0..1"

    def parse(self, raw: object) -> float:
        number = isinstance(raw, int | float) and not isinstance(raw, bool)
        if not number and not (isinstance(raw, str) and _NUMBER.fullmatch(raw.strip())):
            raise Invalid(f"{shown(raw)} is not a number from 0 to 1")
        value = float(raw)  # type: ignore[arg-type]  # a number or a numeric string, checked above
        if not 0.0 <= value <= 1.0:
            raise Invalid(f"{shown(raw)} is not within 0..1")
        return value

    def show(self, value: float) -> str:
        return f"{value:g}"


@dataclass(frozen=True)
class Choices:
    """Several of a fixed set of names, comma-separated or a YAML list; order kept, duplicates dropped."""

    choices: tuple[str, ...]
    metavar: str = "NAME[,NAME...]"

    def parse(self, raw: object) -> tuple[str, ...]:
        items = raw if isinstance(raw, list) else [raw]
        picked: dict[str, None] = {}
        for item in items:
            for name in as_text(item).split(","):
                name = name.strip().lower()
                if not name:
                    continue
                if name not in self.choices:
                    raise Invalid(f"{shown(name)} is not one of: {', '.join(self.choices)}")
                picked[name] = None
        if not picked:
            raise Invalid(f"must name at least one of: {', '.join(self.choices)}")
        return tuple(picked)

    def show(self, value: tuple[str, ...]) -> str:
        return ",".join(value)
