"""Sidecar settings: one table read from flags, SIDECAR_* env and a YAML file, validated at load.

Knows nothing about what the settings drive (sockets, gRPC, logging) or how the CLI presents them.

Every setting is a field of `SidecarConfig`; the field's metadata is its row in the table (help,
parser, flag spelling), so adding a setting is adding one field. From that row:

- flag: `--` + kebab-case name (`--grpc-port`), unless the row names another (`--model`);
- environment variable: `SIDECAR_` + upper snake (`SIDECAR_GRPC_PORT`);
- YAML key in the `--config` / `SIDECAR_CONFIG` file: the snake_case name, or the kebab-case one.

Precedence is flags > environment > file > defaults. The first problem found is raised as one
`ConfigError` line naming the key and where the value came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn, Protocol

import yaml

from sidecar.core.errors import ConfigError

# The one place SIDECAR_* environment variables are declared: each setting's own, plus these.
ENV_PREFIX: Final = "SIDECAR_"
CONFIG_ENV: Final = "SIDECAR_CONFIG"

KiB: Final = 1024
MiB: Final = 1024 * KiB
GiB: Final = 1024 * MiB

_META: Final = "sidecar.setting"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class _Invalid(ValueError):
    """A raw value failed its parser; the text says why, without the key or the source."""


def _shown(raw: object) -> str:
    """A raw value as it appears in a message: numbers bare, strings quoted."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    if isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        return raw.strip()
    return json.dumps(raw, ensure_ascii=False, default=str)


def _text(raw: object) -> str:
    if not isinstance(raw, str):
        raise _Invalid(f"{_shown(raw)} is not a string (quote it in YAML)")
    return raw.strip()


# Value kinds: each parses a raw value (a str from flags and env; any YAML scalar or list from
# the file) into the field's type, and shows a typed value back for --help.


class _Kind(Protocol):
    @property
    def metavar(self) -> str: ...

    def parse(self, raw: object) -> Any: ...

    def show(self, value: Any) -> str: ...


@dataclass(frozen=True)
class _Int:
    lo: int
    hi: int | None = None
    metavar: str = "N"

    def parse(self, raw: object) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
            value = int(raw)
        else:
            raise _Invalid(f"{_shown(raw)} is not an integer")
        if self.hi is None and value < self.lo:
            raise _Invalid(f"{value} is below the minimum of {self.lo}")
        if self.hi is not None and not self.lo <= value <= self.hi:
            raise _Invalid(f"{value} is out of range {self.lo}..{self.hi}")
        return value

    def show(self, value: int) -> str:
        return str(value)


_DURATION_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")


@dataclass(frozen=True)
class _Duration:
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
            raise _Invalid(f"{_shown(raw)} is not a duration (seconds, or e.g. 500ms, 2s, 1m)")
        if not math.isfinite(seconds):
            raise _Invalid(f"{_shown(raw)} is not a finite duration")
        if self.positive and seconds <= 0:
            raise _Invalid(f"{_shown(raw)} must be more than 0")
        if seconds < 0:
            raise _Invalid(f"{_shown(raw)} must not be negative")
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
class _Size:
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
            raise _Invalid(f"{_shown(raw)} is not a size (bytes, or e.g. 1KiB, 64MiB)")
        if value < self.lo:
            raise _Invalid(f"{_shown(raw)} is below the minimum of {self.show(self.lo)}")
        if value > self.hi:
            raise _Invalid(f"{_shown(raw)} is above the maximum of {self.hi} bytes")
        return value

    def show(self, value: int) -> str:
        for suffix, unit in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
            if value and value % unit == 0:
                return f"{value // unit}{suffix}"
        return str(value)


@dataclass(frozen=True)
class _Choice:
    choices: tuple[str, ...]
    upper: bool
    planned: tuple[str, ...] = ()  # known values the validator rejects until implemented
    metavar: str = "NAME"

    def parse(self, raw: object) -> str:
        text = _text(raw)
        value = text.upper() if self.upper else text.lower()
        if value in self.choices:
            return value
        options = ", ".join(self.choices)
        if value in self.planned:
            raise _Invalid(f'"{text}" is not supported yet (choose from: {options})')
        raise _Invalid(f"{_shown(text)} is not one of: {options}")

    def show(self, value: str) -> str:
        return value


_APP_NAME = re.compile(r"[A-Za-z0-9._-]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class _AppName:
    metavar: str = "NAME"

    def parse(self, raw: object) -> str:
        text = _text(raw)
        if not text:
            raise _Invalid("must not be empty")
        if not _APP_NAME.fullmatch(text):
            raise _Invalid(f'{_shown(text)} may contain only letters, digits, "-", "_" and "."')
        return text

    def show(self, value: str) -> str:
        return value


def _host(text: str) -> str:
    """A bare host name, IPv4 or IPv6 address (brackets removed); raises _Invalid otherwise."""
    bracketed = text.startswith("[") and text.endswith("]")
    bare = text[1:-1] if bracketed else text
    if _is_ipv6(bare) or (not bracketed and _HOSTNAME.fullmatch(bare)):
        return bare
    raise _Invalid(f"{_shown(text)} is not a host name or IP address")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Host:
    metavar: str = "HOST"

    def parse(self, raw: object) -> str:
        text = _text(raw)
        if not text:
            raise _Invalid("must not be empty")
        return _host(text)

    def show(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class _HostPort:
    """HOST:PORT with port 1..65535; IPv6 hosts in brackets. Kept as text, as gRPC targets are."""

    metavar: str = "HOST:PORT"

    def parse(self, raw: object) -> str:
        text = _text(raw)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port:
            raise _Invalid(f"{_shown(text)} is not HOST:PORT")
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            raise _Invalid(f"{_shown(text)}: an IPv6 host needs brackets, e.g. [::1]:{port}")
        _host(host)
        if not port.isdigit():
            raise _Invalid(f"{_shown(text)}: port {_shown(port)} is not an integer")
        if not 1 <= int(port) <= 65535:
            raise _Invalid(f"{_shown(text)}: port {int(port)} is out of range 1..65535")
        return f"{host}:{int(port)}"

    def show(self, value: str) -> str:
        return value


_MODEL_NAME = re.compile(r"[^\s,/]+")


@dataclass(frozen=True)
class _Names:
    """Model names: a comma-separated string, or a list of them (YAML, repeated flags)."""

    metavar: str = "NAME"

    def parse(self, raw: object) -> tuple[str, ...]:
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        names: dict[str, None] = {}  # ordered and de-duplicated
        for item in items:
            for name in _text(item).split(","):
                name = name.strip()
                if name and not _MODEL_NAME.fullmatch(name):
                    raise _Invalid(f"{_shown(name)} is not a model name (no spaces or slashes)")
                if name:
                    names[name] = None
        return tuple(names)

    def show(self, value: tuple[str, ...]) -> str:
        return ",".join(value) if value else "none"


@dataclass(frozen=True)
class _About:
    kind: _Kind
    help: str
    flag: str | None
    repeatable: bool


def _about(kind: _Kind, help: str, *, flag: str | None = None, repeatable: bool = False) -> dict[str, _About]:
    return {_META: _About(kind, help, flag, repeatable)}


_PORT_HELP = "0 picks a free port"


@dataclass(frozen=True, slots=True, kw_only=True)
class SidecarConfig:
    """Every setting of `ai-sidecar run`, validated. Build it with `load_config`."""

    app_name: str = field(metadata=_about(_AppName(), "Name this service registers and reports under."))
    model_address: str = field(
        metadata=_about(_HostPort(), "The model server, HOST:PORT ([::1]:PORT for IPv6).")
    )
    model_protocol: str = field(
        default="grpc",
        metadata=_about(
            _Choice(("grpc",), upper=False, planned=("http",)), "Protocol the model server speaks."
        ),
    )
    listen_host: str = field(
        default="0.0.0.0",
        metadata=_about(_Host(), "Address the gRPC and HTTP listeners bind (the pod IP)."),
    )
    grpc_port: int = field(
        default=8081,
        metadata=_about(_Int(0, 65535, "PORT"), f"OIP v2 gRPC listen port; {_PORT_HELP}."),
    )
    http_port: int = field(
        default=8080,
        metadata=_about(_Int(0, 65535, "PORT"), f"OIP v2 REST listen port; {_PORT_HELP}."),
    )
    admin_host: str = field(default="127.0.0.1", metadata=_about(_Host(), "Address admin listeners bind."))
    max_message_bytes: int = field(
        default=64 * MiB,
        metadata=_about(_Size(KiB, 2**31 - 1), "Largest request or response message (e.g. 64MiB)."),
    )
    models: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            _Names(),
            "Model to probe and advertise; repeat or comma-separate.",
            flag="--model",
            repeatable=True,
        ),
    )
    probe_interval: float = field(
        default=2.0,
        metadata=_about(_Duration(positive=True), "Time between model health probes."),
    )
    probe_timeout: float = field(
        default=1.0, metadata=_about(_Duration(positive=True), "Deadline of one health probe.")
    )
    probe_failure_threshold: int = field(
        default=3,
        metadata=_about(_Int(1), "Consecutive failed probes before the model is not ready."),
    )
    probe_success_threshold: int = field(
        default=1,
        metadata=_about(_Int(1), "Consecutive passed probes before the model is ready again."),
    )
    drain_timeout: float = field(
        default=30.0,
        metadata=_about(_Duration(positive=False), "On SIGTERM, how long in-flight calls may finish."),
    )
    drain_delay: float = field(
        default=0.0,
        metadata=_about(
            _Duration(positive=False),
            "On SIGTERM, how long to keep serving while reporting not ready.",
        ),
    )
    rest_timeout: float = field(
        default=60.0,
        metadata=_about(
            _Duration(positive=True),
            "Deadline of a REST call to the model if the client sets none.",
        ),
    )
    log_level: str = field(
        default="INFO",
        metadata=_about(
            _Choice(("DEBUG", "INFO", "WARNING", "ERROR"), upper=True, metavar="LEVEL"),
            "Least severe log records written.",
        ),
    )


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table: how a SidecarConfig field is spelled, parsed and shown."""

    name: str
    kind: _Kind
    help: str
    default: object  # dataclasses.MISSING when required
    flag: str
    repeatable: bool

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    def shown_default(self) -> str:
        return "required" if self.required else self.kind.show(self.default)


def _table() -> tuple[Setting, ...]:
    rows = []
    for f in dataclasses.fields(SidecarConfig):
        about = f.metadata[_META]
        flag = about.flag or "--" + f.name.replace("_", "-")
        rows.append(Setting(f.name, about.kind, about.help, f.default, flag, about.repeatable))
    return tuple(rows)


SETTINGS: Final[tuple[Setting, ...]] = _table()
_BY_NAME: Final = {s.name: s for s in SETTINGS}
_BY_ENV: Final = {s.env: s for s in SETTINGS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--config` and one flag per setting; every flag defaults to None, meaning "not given"."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML file of settings, keyed by name as below. [env {CONFIG_ENV}]",
    )
    for s in SETTINGS:
        default = f"default: {s.shown_default()}" if not s.required else "required"
        parser.add_argument(
            s.flag,
            dest=s.name,
            metavar=s.kind.metavar,
            action="append" if s.repeatable else "store",
            help=f"{s.help} [env {s.env}; {default}]".replace("%", "%%"),
        )


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> SidecarConfig:
    """The config from the arguments after `ai-sidecar run`, `environ` and the file they name."""
    parser = _RaisingParser(prog="ai-sidecar run", allow_abbrev=False)
    add_arguments(parser)
    return from_arguments(parser.parse_args(list(argv)), environ)


_Layer = dict[str, tuple[object, str]]  # setting name -> (raw value, where it came from)


def from_arguments(args: argparse.Namespace, environ: Mapping[str, str]) -> SidecarConfig:
    """The config from flags parsed by a parser `add_arguments` set up, `environ` and the file."""
    flags: _Layer = {}
    for s in SETTINGS:
        raw = getattr(args, s.name, None)
        if raw is not None:
            flags[s.name] = (raw, s.flag)
    path = getattr(args, "config", None) or environ.get(CONFIG_ENV) or None
    file = _read_file(path) if path is not None else {}
    env = _read_environ(environ)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        found = flags.get(s.name) or env.get(s.name) or file.get(s.name)
        if found is None:
            if s.required:
                raise ConfigError(f"{s.name} is required ({s.flag} or {s.env})")
            values[s.name], sources[s.name] = s.default, "default"
            continue
        raw, source = found
        try:
            values[s.name], sources[s.name] = s.kind.parse(raw), source
        except _Invalid as e:
            raise ConfigError(f"{s.name}: {e} (from {source})") from None

    grpc_port, http_port = values["grpc_port"], values["http_port"]
    if grpc_port != 0 and grpc_port == http_port:
        raise ConfigError(
            f"grpc_port and http_port are both {grpc_port}; they must differ unless 0"
            f" (from {sources['grpc_port']} and {sources['http_port']})"
        )
    return SidecarConfig(**values)


def _read_environ(environ: Mapping[str, str]) -> _Layer:
    layer: _Layer = {}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        setting = _BY_ENV.get(var)
        if setting is not None:
            layer[setting.name] = (raw, var)
        elif not _is_service_link(var, raw):
            # Compared without the shared prefix, which would make every name look close.
            near = _did_you_mean(var.removeprefix(ENV_PREFIX), (s.name for s in SETTINGS))
            hint = _hint(ENV_PREFIX + near.upper() if near else None)
            raise ConfigError(f"unknown environment variable {var}{hint}")
    return layer


# Kubernetes injects <SERVICE>_SERVICE_HOST, <SERVICE>_PORT=tcp://... and friends for every
# service in the namespace (unless enableServiceLinks: false); a service named "sidecar-..."
# must not make the sidecar refuse to start.
_SERVICE_LINK_NAME = re.compile(r"\w+_SERVICE_(HOST|PORT\w*)|\w+_PORT_\d+_(TCP|UDP|SCTP)\w*")
_SERVICE_LINK_VALUE = re.compile(r"(tcp|udp|sctp)://\S+")


def _is_service_link(var: str, value: str) -> bool:
    return bool(
        _SERVICE_LINK_NAME.fullmatch(var) or (var.endswith("_PORT") and _SERVICE_LINK_VALUE.fullmatch(value))
    )


def _read_file(path: str) -> _Layer:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: cannot read: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path}: invalid YAML{_yaml_problem(e)}") from None
    if data is None:  # an empty file sets nothing
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of settings, got {type(data).__name__}")
    layer: _Layer = {}
    spelled: dict[str, str] = {}
    for key in data:
        name = key.replace("-", "_") if isinstance(key, str) else None
        if name is None or name not in _BY_NAME:
            near = _did_you_mean(str(key), _BY_NAME)
            if near and "-" in str(key):
                near = near.replace("_", "-")  # answer in the spelling the file uses
            raise ConfigError(f'unknown key "{key}" in {path}{_hint(near)}')
        if name in spelled:
            raise ConfigError(f'{name}: set twice in {path} (as "{spelled[name]}" and "{key}")')
        spelled[name] = key
        layer[name] = (data[key], path)
    return layer


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return where + (f": {problem}" if problem else "")


def _did_you_mean(wrong: str, known: Iterable[str]) -> str | None:
    """The known name closest to a misspelt one, compared case-blind with "-" read as "_"."""
    by_folded = {k.lower(): k for k in known}
    close = difflib.get_close_matches(wrong.lower().replace("-", "_"), by_folded, n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


def _hint(suggestion: str | None) -> str:
    return f' (did you mean "{suggestion}"?)' if suggestion else ""
