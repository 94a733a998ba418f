"""An endpoint of an app as discovery reports it, and the immutable snapshot of all apps. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol


def _frozen(m: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True, slots=True)
class Endpoint:
    app: str  # upper case, as Eureka keys apps
    instance_id: str
    host: str
    http_port: int
    grpc_port: int | None
    zone: str = ""
    weight: int = 1
    metadata: Mapping[str, str] = field(default_factory=_frozen, compare=False, hash=False)

    @property
    def grpc_address(self) -> str | None:
        return None if self.grpc_port is None else f"{self.host}:{self.grpc_port}"

    def to_json(self) -> dict[str, object]:
        return {
            "app": self.app,
            "instanceId": self.instance_id,
            "host": self.host,
            "httpPort": self.http_port,
            "grpcPort": self.grpc_port,
            "zone": self.zone,
            "weight": self.weight,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every app's endpoints that can take traffic, at one moment. Replaced, never mutated."""

    apps: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def endpoints(self, app: str) -> tuple[Endpoint, ...]:
        return self.apps.get(app.upper(), ())

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "apps": {app: [e.to_json() for e in eps] for app, eps in sorted(self.apps.items())},
        }


def snapshot(apps: Mapping[str, tuple[Endpoint, ...]], version: int) -> Snapshot:
    return Snapshot(MappingProxyType({k: v for k, v in apps.items() if v}), version)


Watcher = Callable[[Snapshot], None]


class Discovery(Protocol):
    """Where snapshots come from: Eureka, a static file, or nothing."""

    @property
    def current(self) -> Snapshot: ...

    def watch(self, watcher: Watcher) -> None: ...

    def stats(self) -> dict[str, int]:
        """Counters worth showing an operator (e.g. fetches by kind)."""
        ...

    async def run(self) -> None:
        """Keep `current` up to date until cancelled."""
        ...
