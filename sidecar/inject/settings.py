"""What injection is told: the injector's defaults, and a pod's own `ai-sidecar.io/...` annotations.

Pure: parses and validates values, and names the annotation in every error. Knows nothing about
pod specs beyond the annotation map, nor about YAML or HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Final

from sidecar import __version__
from sidecar.config import SETTINGS
from sidecar.config_values import Invalid

PREFIX: Final = "ai-sidecar.io/"
INJECT: Final = PREFIX + "inject"
INJECTED_VERSION: Final = PREFIX + "injected-version"
MODES: Final = ("native", "classic")
# The image the other fronts build: ai-sidecar:<version>.
DEFAULT_IMAGE: Final = f"ai-sidecar:{__version__}"

_SETTING = {s.name: s for s in SETTINGS}
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
_SUFFIX: Final = {
    None: Decimal(1), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6),
    "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_CONTAINER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class InjectError(ValueError):
    """A pod cannot be injected; the message names the annotation, container or field at fault."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    cpu_request: str = "100m"
    cpu_limit: str = ""
    memory_request: str = "128Mi"
    memory_limit: str = "256Mi"


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectDefaults:
    """The injector's own settings (flags of `ai-sidecar inject` and `ai-sidecar webhook`)."""

    image: str = DEFAULT_IMAGE
    mode: str = "native"
    eureka_url: tuple[str, ...] = ()
    log_level: str = "INFO"
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        if not self.image or any(c.isspace() for c in self.image):
            raise InjectError(f"image: {self.image!r} is not an image reference")
        if self.mode not in MODES:
            raise InjectError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if self.eureka_url:
            _parse("eureka_url", ",".join(self.eureka_url), "eureka_url")
        _parse("log_level", self.log_level, "log_level")
        _check_resources(self.resources, "defaults")


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSettings:
    """One pod's settings: its annotations over the injector's defaults, validated."""

    app_name: str
    model_container: str  # empty: the first container
    model_port: int | None  # None: the model container's first containerPort, else 9000
    model_protocol: str
    models: tuple[str, ...]
    eureka_url: tuple[str, ...]
    log_level: str
    grpc_port: int
    http_port: int
    mode: str
    resources: Resources
    env: tuple[tuple[str, str], ...]


def opted_in(annotations: Mapping[str, str], labels: Mapping[str, str], namespace_opted_in: bool) -> bool:
    """The pod's own `ai-sidecar.io/inject` (annotation, else label) wins over its namespace's."""
    for where, values in (("annotation", annotations), ("label", labels)):
        value = values.get(INJECT)
        if value is not None:
            if value not in ("true", "false"):
                raise InjectError(f'{where} {INJECT}: {json.dumps(value)} is not "true" or "false"')
            return value == "true"
    return namespace_opted_in


def pod_settings(
    annotations: Mapping[str, str], labels: Mapping[str, str], defaults: InjectDefaults
) -> PodSettings:
    """Read and validate every `ai-sidecar.io/...` annotation; unknown ones are refused by name."""
    known = {PREFIX + k for k in _ANNOTATIONS} | {INJECT, INJECTED_VERSION}
    for key in annotations:
        if key.startswith(PREFIX) and key not in known:
            raise InjectError(
                f"annotation {key} is not one ai-sidecar reads (known: {', '.join(sorted(known))})"
            )

    def get(key: str) -> str | None:
        value = annotations.get(PREFIX + key)
        if value is not None and not isinstance(value, str):
            raise InjectError(f"annotation {PREFIX + key}: {value!r} is not a string")
        return value

    app_name_raw = get("app-name") or labels.get("app.kubernetes.io/name") or labels.get("app")
    if not app_name_raw:
        raise InjectError(
            f"annotation {PREFIX}app-name is required when the pod has no app.kubernetes.io/name or app label"
        )
    source = f"{PREFIX}app-name" if get("app-name") else "the pod's app label"
    app_name = str(_parse("app_name", app_name_raw, source))
    model_container = get("model-container") or ""
    if model_container and not _CONTAINER_NAME.fullmatch(model_container):
        raise InjectError(f"annotation {PREFIX}model-container: {model_container!r} is not a container name")
    model_port_raw = get("model-port")
    model_port = _port("model-port", model_port_raw) if model_port_raw is not None else None
    resources = Resources(
        cpu_request=get("cpu-request") or defaults.resources.cpu_request,
        cpu_limit=get("cpu-limit") or defaults.resources.cpu_limit,
        memory_request=get("memory-request") or defaults.resources.memory_request,
        memory_limit=get("memory-limit") or defaults.resources.memory_limit,
    )
    _check_resources(resources, "annotation")
    mode = get("mode") or defaults.mode
    if mode not in MODES:
        raise InjectError(f"annotation {PREFIX}mode: {mode!r} is not one of {', '.join(MODES)}")
    eureka = get("eureka-url")
    eureka_url = defaults.eureka_url
    if eureka:
        eureka_url = _names(_parse("eureka_url", eureka, PREFIX + "eureka-url"))
    return PodSettings(
        app_name=app_name,
        model_container=model_container,
        model_port=model_port,
        model_protocol=str(_annotated("model-protocol", get("model-protocol"), "model_protocol", "grpc")),
        models=_names(_annotated("models", get("models"), "models", ())),
        eureka_url=eureka_url,
        log_level=str(_annotated("log-level", get("log-level"), "log_level", defaults.log_level)),
        grpc_port=_port("grpc-port", get("grpc-port") or "8081"),
        http_port=_port("http-port", get("http-port") or "8080"),
        mode=mode,
        resources=resources,
        env=_extra_env(get("env")),
    )


# Annotations read, after `ai-sidecar.io/`: each names a setting of `ai-sidecar run` or of the pod.
_ANNOTATIONS: Final = (
    "app-name", "model-container", "model-port", "model-protocol", "models", "eureka-url", "log-level",
    "grpc-port", "http-port", "mode", "cpu-request", "cpu-limit", "memory-request", "memory-limit", "env",
)  # fmt: skip


def annotation_names() -> tuple[str, ...]:
    return tuple(PREFIX + k for k in (*_ANNOTATIONS, "inject"))


def _parse(setting: str, raw: object, source: str) -> object:
    try:
        return _SETTING[setting].kind.parse(raw)
    except Invalid as e:
        raise InjectError(f"{_where(source)}: {e}") from None


def _names(value: object) -> tuple[str, ...]:
    assert isinstance(value, tuple)
    return tuple(str(v) for v in value)


def _where(source: str) -> str:
    return f"annotation {source}" if source.startswith(PREFIX) else source


def _annotated(key: str, raw: str | None, setting: str, default: object) -> object:
    return default if raw is None else _parse(setting, raw, PREFIX + key)


def _port(key: str, raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise InjectError(f"annotation {PREFIX}{key}: {raw!r} is not a port (1-65535)")
    return int(raw)


def quantity(raw: str) -> Decimal | None:
    """A Kubernetes resource quantity's value (`500m`, `1.5`, `256Mi`), or None if it is not one."""
    match = _QUANTITY.fullmatch(raw)
    if match is None:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        return None


def _check_resources(r: Resources, where: str) -> None:
    names = {
        "cpu-request": r.cpu_request, "cpu-limit": r.cpu_limit,
        "memory-request": r.memory_request, "memory-limit": r.memory_limit,
    }  # fmt: skip
    values = {}
    for key, raw in names.items():
        if raw == "":
            continue
        value = quantity(raw)
        if value is None:
            label = f"annotation {PREFIX}{key}" if where == "annotation" else f"{key}"
            raise InjectError(f"{label}: {raw!r} is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi)")
        values[key] = value
    for kind in ("cpu", "memory"):
        request, limit = values.get(f"{kind}-request"), values.get(f"{kind}-limit")
        if request is not None and limit is not None and request > limit:
            request_raw, limit_raw = names[kind + "-request"], names[kind + "-limit"]
            raise InjectError(f"{kind}-request {request_raw} is more than {kind}-limit {limit_raw}")


def _extra_env(raw: str | None) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    where = f"annotation {PREFIX}env"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InjectError(f"{where}: not JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(value, dict):
        raise InjectError(f'{where}: must be a JSON object of names to strings, e.g. {{"SIDECAR_ZONE": "a"}}')
    env = []
    for name, v in value.items():
        if not _ENV_NAME.fullmatch(name):
            raise InjectError(f"{where}: {name!r} is not an environment variable name")
        if not isinstance(v, str):
            raise InjectError(f"{where}: {name} is {json.dumps(v)}, not a string")
        env.append((name, v))
    return tuple(env)
