"""The rules between settings, checked once at load so that a start fails before anything listens.

Each rule reads parsed values and where they came from, and raises one ConfigError line naming the
keys and their sources. Knows nothing of how values are read (config.py) or parsed (config_values.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.core.errors import ConfigError
from sidecar.registry.instance import INSTANCE_ID_FIELDS, instance_id


def grpc_dataplane(dataplane: str, model_protocol: str) -> str:
    """The gRPC ingress a config runs: `auto` is the relay, unless the model speaks REST."""
    if dataplane == "auto":
        return "relay" if model_protocol == "grpc" else "grpcio"
    return dataplane


def check(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Raise the first rule `values` break (by setting name; `sources` says where each came from)."""
    grpc_port, http_port = values["grpc_port"], values["http_port"]
    if grpc_port != 0 and grpc_port == http_port:
        raise ConfigError(
            f"grpc_port and http_port are both {grpc_port}; they must differ unless 0"
            f" (from {sources['grpc_port']} and {sources['http_port']})"
        )
    low, high = values["drain_min_delay"], values["drain_max_delay"]
    if low is not None and low > high:
        raise ConfigError(
            f"drain_min_delay {low:g}s is above drain_max_delay {high:g}s"
            f" (from {sources['drain_min_delay']} and {sources['drain_max_delay']})"
        )
    if values["tracing"] and values["trace_exporter"] == "file" and not values["trace_file"]:
        raise ConfigError(
            f"trace_file is required when trace_exporter is file (from {sources['trace_exporter']})"
        )
    if grpc_dataplane(values["dataplane"], values["model_protocol"]) == "relay" and (
        values["model_protocol"] != "grpc"
    ):
        raise ConfigError(
            "dataplane: relay forwards HTTP/2 frames and needs model_protocol grpc, not"
            f" {values['model_protocol']} (from {sources['dataplane']} and {sources['model_protocol']})"
        )
    _check_instance_id(values["instance_id"], sources["instance_id"])
    for a, b in (("policy_file", "policy_config_server"), ("jwks_file", "jwks_url")):
        if values[a] and values[b]:
            raise ConfigError(f"{a} and {b} are both set; set one (from {sources[a]} and {sources[b]})")


def _check_instance_id(template: str, source: str) -> None:
    # Filled in with values of the real types, so any template that expands here expands at start.
    known = ", ".join(f"{{{name}}}" for name in INSTANCE_ID_FIELDS)
    try:
        instance_id(template, host="host", app="app", grpc_port=8081, http_port=8080)
    except KeyError as e:
        raise ConfigError(
            f"instance_id: {template!r} has an unknown placeholder {{{e.args[0]}}}; known: {known}"
            f" (from {source})"
        ) from None
    except IndexError:
        raise ConfigError(
            f"instance_id: {template!r} has a placeholder without a name; known: {known} (from {source})"
        ) from None
    except (ValueError, AttributeError, TypeError) as e:
        raise ConfigError(f"instance_id: {template!r} is not a valid template: {e} (from {source})") from None
