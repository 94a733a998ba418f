"""Discovery from a static YAML file of apps and their instances: the embedded default without Eureka.

File format:
    apps:
      ocr-service:
        - {host: 10.0.0.7, grpc_port: 8081, http_port: 8080, zone: a, weight: 2, metadata: {k: v}}
"""

from __future__ import annotations

import asyncio
import pathlib
from types import MappingProxyType
from typing import Any

from sidecar.core.errors import ConfigError
from sidecar.discovery.endpoint import Endpoint, Snapshot, Watcher, snapshot


def load_static(path: pathlib.Path) -> Snapshot:
    import yaml  # here: only a sidecar given a registry file needs PyYAML

    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"registry_file {path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"registry_file {path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("apps", {}), dict):
        raise ConfigError(f'registry_file {path}: expected a mapping with an "apps" mapping')
    apps: dict[str, tuple[Endpoint, ...]] = {}
    for name, instances in (doc.get("apps") or {}).items():
        if not isinstance(instances, list):
            raise ConfigError(f"registry_file {path}: apps.{name} must be a list of instances")
        apps[str(name).upper()] = tuple(
            _endpoint(path, str(name), i, inst) for i, inst in enumerate(instances)
        )
    return snapshot(apps, 1)


def _endpoint(path: pathlib.Path, app: str, index: int, inst: Any) -> Endpoint:
    where = f"registry_file {path}: apps.{app}[{index}]"
    if not isinstance(inst, dict) or not isinstance(inst.get("host"), str):
        raise ConfigError(f'{where} needs at least "host"')
    try:
        http_port = int(inst.get("http_port", 0))
        grpc_port = int(inst["grpc_port"]) if "grpc_port" in inst else None
        weight = int(inst.get("weight", 1))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None
    for field, port in (("http_port", http_port), ("grpc_port", grpc_port)):
        if port is not None and not 0 <= port <= 65535:
            raise ConfigError(f"{where}.{field}: {port} is out of range 0..65535")
    host, zone = inst["host"], str(inst.get("zone", ""))
    return Endpoint(
        app=app.upper(),
        instance_id=str(inst.get("instance_id", f"{host}:{app}:{grpc_port or http_port}")),
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        zone=zone,
        weight=max(1, weight),
        metadata=MappingProxyType({str(k): str(v) for k, v in (inst.get("metadata") or {}).items()}),
    )


class StaticDiscovery:
    def __init__(self, current: Snapshot) -> None:
        self.current = current

    @classmethod
    def from_file(cls, path: pathlib.Path) -> StaticDiscovery:
        return cls(load_static(path))

    def watch(self, watcher: Watcher) -> None:
        pass  # a static file never changes while the sidecar runs

    def stats(self) -> dict[str, int]:
        return {}

    async def run(self) -> None:
        await asyncio.Event().wait()
