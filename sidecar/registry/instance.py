"""The Eureka InstanceInfo document for this sidecar, as a Spring Cloud app would register it. No I/O.

Field names and shapes follow com.netflix.appinfo.InstanceInfo's JSON codec
as Spring Cloud Netflix's Eureka server reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sidecar import __version__

_MY_OWN = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"

# The metadata keys that name the gRPC port. Eureka's `port` is the HTTP ingress, which Spring Cloud
# LoadBalancer and Feign clients use; gRPC clients need the other port, under their own key:
# - grpc.port: this sidecar's discovery (sidecar/discovery/eureka_registry.py);
# - gRPC_port: net.devh grpc-client-spring-boot-starter 2.11 and later (GrpcUtils
#   .CLOUD_DISCOVERY_METADATA_PORT, read by DiscoveryClientNameResolver for `discovery:///name`);
#   its server starter registers the same key;
# - gRPC.port: the same starter before 2.11, still read (with a warning) when gRPC_port is absent.
# Without one of its keys that starter dials the HTTP port. Spring gRPC (spring-projects/spring-grpc)
# has no discovery integration of its own up to 1.1, so it reads none.
GRPC_PORT_KEYS: Final = ("grpc.port", "gRPC_port", "gRPC.port")


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    app: str
    instance_id: str
    host_name: str
    ip_addr: str
    http_port: int
    grpc_port: int
    admin_port: int
    zone: str = ""
    weight: int = 1
    lease_renewal_seconds: int = 30
    lease_duration_seconds: int = 90
    extra_metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def app_id(self) -> str:
        return self.app.upper()

    @property
    def vip_address(self) -> str:
        # Spring Cloud uses the application name, lower case, as its VIP address.
        return self.app.lower()


# The placeholders an instance-id template may use.
INSTANCE_ID_FIELDS: Final = ("host", "app", "grpc_port", "http_port")


def instance_id(template: str, *, host: str, app: str, grpc_port: int, http_port: int) -> str:
    """Expand an instance-id template such as `{host}:{app}:{grpc_port}`."""
    return template.format(host=host, app=app, grpc_port=grpc_port, http_port=http_port)


def instance_document(
    spec: InstanceSpec,
    *,
    status: str,
    model_metadata: Mapping[str, str],
    last_dirty_ms: int,
) -> dict[str, Any]:
    base = f"http://{spec.host_name}:{spec.http_port}"
    metadata = {
        **dict.fromkeys(GRPC_PORT_KEYS, str(spec.grpc_port)),
        "management.port": str(spec.admin_port),
        "zone": spec.zone,
        "weight": str(spec.weight),
        "sidecar.version": __version__,
        **model_metadata,
        **spec.extra_metadata,
    }
    return {
        "instance": {
            "instanceId": spec.instance_id,
            "app": spec.app_id,
            "appGroupName": None,
            "hostName": spec.host_name,
            "ipAddr": spec.ip_addr,
            "status": status,
            "overriddenStatus": "UNKNOWN",
            "port": {"$": spec.http_port, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": {"@class": _MY_OWN, "name": "MyOwn"},
            "leaseInfo": {
                "renewalIntervalInSecs": spec.lease_renewal_seconds,
                "durationInSecs": spec.lease_duration_seconds,
            },
            "metadata": metadata,
            "homePageUrl": f"{base}/",
            "statusPageUrl": f"{base}/v2",
            "healthCheckUrl": f"{base}/readyz",
            "vipAddress": spec.vip_address,
            "secureVipAddress": spec.vip_address,
            "isCoordinatingDiscoveryServer": "false",
            "lastDirtyTimestamp": str(last_dirty_ms),
        }
    }
