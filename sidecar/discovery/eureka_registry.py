"""The Eureka client protocol's registry logic: parse /apps, merge deltas, reconcile hash codes. No I/O.

Follows com.netflix.discovery.DiscoveryClient: after a full fetch the client
applies each /apps/delta (ADDED and MODIFIED replace, DELETED removes), then
compares its own reconcile hash code with the server's `apps__hashcode`; on a
mismatch it fetches everything again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sidecar.discovery.endpoint import Endpoint
from sidecar.registry.instance import GRPC_PORT_KEYS

# app name -> instance id -> the instance as the server sent it
Instances = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Applications:
    instances: Instances
    hashcode: str


class EurekaFormatError(ValueError):
    """The server's answer is not the registry document the Eureka protocol defines."""


def _as_list(value: Any) -> list[Any]:
    # Eureka's JSON codecs write a one-element list as the bare element.
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _applications(doc: Any) -> tuple[list[Any], str]:
    if not isinstance(doc, dict) or not isinstance(doc.get("applications"), dict):
        raise EurekaFormatError('expected a JSON object with an "applications" object')
    apps = doc["applications"]
    return _as_list(apps.get("application")), str(apps.get("apps__hashcode", ""))


def _instances_of(app: Any) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(app, dict) or not isinstance(app.get("name"), str):
        raise EurekaFormatError('an application without a "name"')
    found = []
    for inst in _as_list(app.get("instance")):
        if not isinstance(inst, dict) or not isinstance(inst.get("instanceId"), str):
            raise EurekaFormatError(f'application {app["name"]}: an instance without "instanceId"')
        found.append(inst)
    return app["name"].upper(), found


def parse_full(doc: Any) -> Applications:
    apps: dict[str, dict[str, Mapping[str, Any]]] = {}
    entries, hashcode = _applications(doc)
    for entry in entries:
        name, instances = _instances_of(entry)
        apps.setdefault(name, {}).update({i["instanceId"]: i for i in instances})
    return Applications(_freeze(apps), hashcode)


def apply_delta(current: Applications, doc: Any) -> tuple[Applications, bool]:
    """Merge a delta document. Returns the new registry and whether its hash code matches the server's."""
    apps = {name: dict(instances) for name, instances in current.instances.items()}
    entries, hashcode = _applications(doc)
    for entry in entries:
        name, instances = _instances_of(entry)
        for inst in instances:
            action = inst.get("actionType", "")
            if action == "DELETED":
                apps.get(name, {}).pop(inst["instanceId"], None)
            elif action in ("ADDED", "MODIFIED"):
                apps.setdefault(name, {})[inst["instanceId"]] = inst
            else:
                raise EurekaFormatError(f"instance {inst['instanceId']}: unknown actionType {action!r}")
    merged = Applications(_freeze(apps), hashcode)
    return merged, reconcile_hashcode(merged.instances) == hashcode


def deletions(doc: Any) -> list[tuple[str, str]]:
    """The (app, instance id) pairs a delta document reports DELETED (cancelled or evicted)."""
    gone = []
    entries, _ = _applications(doc)
    for entry in entries:
        name, instances = _instances_of(entry)
        gone += [(name, i["instanceId"]) for i in instances if i.get("actionType") == "DELETED"]
    return gone


def reconcile_hashcode(instances: Instances) -> str:
    """Eureka's apps hash code: STATUS_count_ for every status present, statuses sorted by name."""
    counts = Counter(str(i.get("status", "UNKNOWN")) for app in instances.values() for i in app.values())
    return "".join(f"{status}_{counts[status]}_" for status in sorted(counts))


def endpoints(instances: Instances) -> dict[str, tuple[Endpoint, ...]]:
    """The instances that can take traffic (status UP), per app, in a stable order."""
    result: dict[str, tuple[Endpoint, ...]] = {}
    for app, by_id in instances.items():
        up = [to_endpoint(app, inst) for _, inst in sorted(by_id.items()) if inst.get("status") == "UP"]
        if up:
            result[app] = tuple(up)
    return result


def to_endpoint(app: str, inst: Mapping[str, Any]) -> Endpoint:
    metadata = {str(k): str(v) for k, v in (inst.get("metadata") or {}).items()}
    # The first key present, so a Java service registered by Spring's gRPC starter (gRPC_port) is found.
    grpc_port = next((_int(metadata[k]) for k in GRPC_PORT_KEYS if k in metadata), None)
    port = inst.get("port")
    http_port = _int(port.get("$") if isinstance(port, dict) else port) or 0
    weight = _int(metadata.get("weight"))
    return Endpoint(
        app=app,
        instance_id=str(inst["instanceId"]),
        host=str(inst.get("ipAddr") or inst.get("hostName") or ""),
        http_port=http_port,
        grpc_port=grpc_port,
        zone=metadata.get("zone", ""),
        weight=weight if weight is not None and weight > 0 else 1,
        metadata=MappingProxyType(metadata),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _freeze(apps: dict[str, dict[str, Mapping[str, Any]]]) -> Instances:
    return MappingProxyType({k: MappingProxyType(v) for k, v in apps.items() if v})
