"""Egress policies per target service, from named templates; typed and validated at load.

YAML (`egress_policy_file`):

    templates:
      fast:
        balancer: round_robin          # round_robin | weighted | least_request | peak_ewma
        timeout: 2s                    # when the caller sets no deadline
        retry: {max_attempts: 3, base_backoff: 25ms, max_backoff: 250ms}
        budget: {ratio: 0.2, min_per_second: 3, window: 10}
        service_breaker: {window_type: count, window_size: 100, minimum_calls: 20,
                          failure_rate_threshold: 50, slow_call_duration: 5s,
                          slow_call_rate_threshold: 100, wait_in_open: 10s, permitted_in_half_open: 5}
        instance_breaker: {...}
        outlier: {consecutive_failures: 5, base_ejection_time: 30s, max_ejection_time: 300s,
                  max_ejected_percent: 50}
        failure_codes: [UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN]
        zone_min_local: 1
    default: fast                      # a template name, or a mapping like a template
    services:
      ocr-service: fast
      asr-service: {template: fast, timeout: 30s}
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from sidecar.balancer.pickers import PICKERS
from sidecar.breaker.breaker import BreakerConfig, WindowType
from sidecar.core.errors import ConfigError
from sidecar.core.status import Code
from sidecar.outlier.ejector import OutlierConfig
from sidecar.retry.budget import BudgetConfig


@dataclass(frozen=True, slots=True)
class RetryConfig:
    max_attempts: int = 3
    base_backoff: float = 0.025
    max_backoff: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_backoff < 0 or self.max_backoff < self.base_backoff:
            raise ValueError("retry needs max_attempts >= 1 and 0 <= base_backoff <= max_backoff")


DEFAULT_FAILURE_CODES = frozenset(
    {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN}
)
# Only outcomes that say the request never reached a model are retried.
RETRYABLE_CODES = frozenset({Code.UNAVAILABLE})


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    balancer: str = "peak_ewma"
    timeout: float = 30.0
    per_try_timeout: float = 0.0  # 0: the whole remaining deadline
    retry: RetryConfig = field(default_factory=RetryConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    service_breaker: BreakerConfig = field(default_factory=BreakerConfig)
    instance_breaker: BreakerConfig = field(
        default_factory=lambda: BreakerConfig(window_size=20, minimum_calls=10, wait_in_open=5.0)
    )
    outlier: OutlierConfig = field(default_factory=OutlierConfig)
    failure_codes: frozenset[Code] = DEFAULT_FAILURE_CODES
    zone_min_local: int = 1

    def __post_init__(self) -> None:
        if self.balancer not in PICKERS:
            raise ValueError(f"balancer {self.balancer!r} is not one of {', '.join(PICKERS)}")
        if self.timeout <= 0 or self.per_try_timeout < 0:
            raise ValueError("timeout must be > 0 and per_try_timeout >= 0")
        if {Code.INVALID_ARGUMENT, Code.NOT_FOUND} & self.failure_codes:
            raise ValueError("INVALID_ARGUMENT and NOT_FOUND are the caller's errors, never failures")


@dataclass(frozen=True, slots=True)
class EgressPolicies:
    default: ServicePolicy = field(default_factory=ServicePolicy)
    services: Mapping[str, ServicePolicy] = field(default_factory=lambda: MappingProxyType({}))

    def for_service(self, name: str) -> ServicePolicy:
        return self.services.get(name.lower(), self.default)


def load_policies(path: pathlib.Path | None) -> EgressPolicies:
    if path is None:
        return EgressPolicies()
    where = f"egress_policy_file {path}"
    import yaml  # here: only a sidecar given a policy file needs PyYAML

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise ConfigError(f"{where}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from None
    return policies_from(doc, where)


def policies_from(doc: Any, where: str) -> EgressPolicies:
    """Egress policies from a parsed document (the egress policy file, or the policy document's
    `egress` section); a ConfigError names `where` and the field."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping")
    _no_unknown(doc, {"templates", "default", "services"}, where)
    templates_doc = doc.get("templates") or {}
    if not isinstance(templates_doc, dict):
        raise ConfigError(f"{where}: templates must be a mapping")
    templates = {
        str(name): _build(ServicePolicy, body, f"{where}: templates.{name}", ServicePolicy())
        for name, body in templates_doc.items()
    }

    def resolve(value: Any, at: str) -> ServicePolicy:
        if isinstance(value, str):
            if value not in templates:
                raise ConfigError(f"{at}: no template named {value!r} (have: {', '.join(templates)})")
            return templates[value]
        if isinstance(value, dict):
            base = resolve(value["template"], f"{at}.template") if "template" in value else ServicePolicy()
            return _build(ServicePolicy, {k: v for k, v in value.items() if k != "template"}, at, base)
        raise ConfigError(f"{at}: expected a template name or a mapping")

    default = resolve(doc["default"], f"{where}: default") if "default" in doc else ServicePolicy()
    services_doc = doc.get("services") or {}
    if not isinstance(services_doc, dict):
        raise ConfigError(f"{where}: services must be a mapping")
    services = {
        str(name).lower(): resolve(body, f"{where}: services.{name}") for name, body in services_doc.items()
    }
    return EgressPolicies(default, MappingProxyType(services))


T = TypeVar("T")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def _build(cls: type[T], body: Any, where: str, base: T) -> T:
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    _no_unknown(body, set(fields), where)
    hints = typing.get_type_hints(cls)
    changes = {}
    for key, raw in body.items():
        at = f"{where}.{key}"
        hint = hints[key]
        current = getattr(base, key)
        if dataclasses.is_dataclass(hint):
            changes[key] = _build(hint, raw, at, current)  # type: ignore[arg-type]
        else:
            changes[key] = _value(hint, raw, at, key)
    try:
        return dataclasses.replace(base, **changes)  # type: ignore[type-var]
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def _value(hint: Any, raw: Any, at: str, key: str) -> Any:
    try:
        if hint is float:
            if isinstance(raw, str):
                m = _DURATION.match(raw.strip())
                if not m:
                    raise ValueError(f"{raw!r} is not a number or duration")
                scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]
                return float(m.group(1)) * scale
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValueError(f"{raw!r} is not a number")
            return float(raw)
        if hint is int:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ValueError(f"{raw!r} is not an integer")
            return raw
        if hint is str:
            return str(raw)
        if hint is WindowType:
            return WindowType(str(raw).lower())
        if hint == frozenset[Code]:
            if not isinstance(raw, list):
                raise ValueError("expected a list of gRPC status names")
            return frozenset(Code[str(c).upper()] for c in raw)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"{at}: {e}") from None
    raise ConfigError(f"{at}: cannot read a value for {key}")


def _no_unknown(body: Mapping[Any, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in body if k not in known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
