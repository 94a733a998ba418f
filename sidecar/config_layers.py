"""The environment and the YAML file read into layers: raw values by setting name, with their source.

Refuses a SIDECAR_* variable or a file key that names no setting, with a did-you-mean hint, and
lets Kubernetes' service links through. Knows nothing of which settings exist (the caller names
them), how a value is parsed (config_values.py) or which layer wins (config.py).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from sidecar.core.env import NOT_SETTINGS, PREFIX
from sidecar.core.errors import ConfigError

if TYPE_CHECKING:
    import yaml

Layer = dict[str, tuple[object, str]]  # setting name -> (raw value, where it came from)


def read_environ(environ: Mapping[str, str], by_env: Mapping[str, str]) -> Layer:
    """The SIDECAR_* variables of `environ`; `by_env` maps each setting's variable to its name."""
    layer: Layer = {}
    for var, raw in environ.items():
        if not var.startswith(PREFIX) or var in NOT_SETTINGS:
            continue
        name = by_env.get(var)
        if name is not None:
            layer[name] = (raw, var)
        elif not _is_service_link(var, raw):
            # Compared without the shared prefix, which would make every name look close.
            near = _did_you_mean(var.removeprefix(PREFIX), by_env.values())
            hint = _hint(PREFIX + near.upper() if near else None)
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


def read_file(path: str, names: Collection[str]) -> Layer:
    """The settings in the YAML file at `path`, keyed by name (snake_case or kebab-case)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: cannot read: not UTF-8 text") from None
    import yaml  # here: only a sidecar given a config file needs PyYAML

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path}: invalid YAML{_yaml_problem(e)}") from None
    if data is None:  # an empty file sets nothing
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of settings, got {type(data).__name__}")
    layer: Layer = {}
    spelled: dict[str, str] = {}
    for key in data:
        name = key.replace("-", "_") if isinstance(key, str) else None
        if name is None or name not in names:
            near = _did_you_mean(str(key), names)
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
    import difflib  # here: only a start that is about to fail needs it

    by_folded = {k.lower(): k for k in known}
    close = difflib.get_close_matches(wrong.lower().replace("-", "_"), by_folded, n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


def _hint(suggestion: str | None) -> str:
    return f' (did you mean "{suggestion}"?)' if suggestion else ""
