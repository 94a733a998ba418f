"""Injects ai-sidecar into one pod template: a pure function from a pod's metadata and spec to new ones.

What it adds: the sidecar (a native sidecar, an init container with restartPolicy Always, or a
classic one, a regular container), a preStop on the sidecar that starts its drain over loopback
(`ai-sidecar drain --wait`), a preStop on the model container that waits for the drain to be done
(httpGet GET /drained on the drain-wait port: the kubelet runs it against the pod IP, and a model
image may have no shell), a terminationGracePeriodSeconds sized from the sidecar's own drain
settings, and Prometheus scrape annotations. Both fronts (`ai-sidecar inject` and the webhook)
call `inject_template`, so they give identical pods.

Pure: dicts in, dicts out, no I/O. Knows nothing about YAML, HTTP, workload kinds or AdmissionReview.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sidecar import __version__
from sidecar.config import load_config
from sidecar.core.errors import ConfigError
from sidecar.drain.settings import longest_drain
from sidecar.inject.settings import (
    INJECTED_VERSION,
    PREFIX,
    InjectDefaults,
    InjectError,
    PodSettings,
    opted_in,
    pod_settings,
)

SIDECAR_NAME: Final = "ai-sidecar"
INJECTED_LABEL: Final = PREFIX + "injected"
DEFAULT_MODEL_PORT: Final = 9000
ADMIN_PORT: Final = 15000
EGRESS_GRPC_PORT: Final = 15001
EGRESS_HTTP_PORT: Final = 15080
DRAIN_WAIT_PORT: Final = 15021
# After the drain, the model gets SIGTERM and must exit, then the sidecar does; the kubelet also
# keeps 2 s for the last SIGTERM-to-SIGKILL step. Ten seconds covers a model that exits promptly.
STOP_MARGIN: Final = 10
_KUBERNETES_DEFAULT_GRACE: Final = 30
_BATCH_RESTART_POLICIES: Final = ("Never", "OnFailure")


@dataclass(frozen=True, slots=True)
class Injected:
    template: dict[str, Any]  # {"metadata": ..., "spec": ...}, a new object
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unchanged:
    reason: str  # "not opted in", "already injected"


Outcome = Injected | Unchanged


def inject_template(
    template: Mapping[str, Any], defaults: InjectDefaults, *, namespace_opted_in: bool = False
) -> Outcome:
    """The pod template (`metadata` + `spec`) with ai-sidecar injected, or why it stays as it is.

    Raises InjectError, naming the annotation, container or field, for a pod that cannot be injected.
    """
    metadata = _mapping(template.get("metadata") or {}, "metadata")
    spec = _mapping(template.get("spec"), "spec")
    annotations = _strings(metadata.get("annotations") or {}, "metadata.annotations")
    labels = _strings(metadata.get("labels") or {}, "metadata.labels")
    containers = _containers(spec, "containers")
    init_containers = _containers(spec, "initContainers")
    if not containers:
        raise InjectError("spec.containers is empty")
    named_ours = any(c.get("name") == SIDECAR_NAME for c in (*init_containers, *containers))
    if named_ours and INJECTED_VERSION in annotations:
        return Unchanged("already injected")
    if not opted_in(annotations, labels, namespace_opted_in):
        return Unchanged("not opted in")
    if named_ours:
        raise InjectError(
            f'the pod already has a container named "{SIDECAR_NAME}" that ai-sidecar did not inject'
            f" (no {INJECTED_VERSION} annotation); rename that container"
        )

    settings = pod_settings(annotations, labels, defaults)
    model_index = _model_index(containers, settings)
    model = containers[model_index]
    model_port = settings.model_port or _first_port(model) or DEFAULT_MODEL_PORT
    _check_ports(containers, init_containers, settings, model_port)
    if (model.get("lifecycle") or {}).get("preStop"):
        raise InjectError(
            f'container "{model["name"]}" already has a lifecycle.preStop hook; ai-sidecar needs it to hold'
            " the model until the sidecar has drained (remove it: the drain keeps the model serving)"
        )
    batch = spec.get("restartPolicy") in _BATCH_RESTART_POLICIES
    env = _sidecar_env(settings, model_port, batch)
    grace = _grace_period(env)
    sidecar = _sidecar_container(defaults.image, settings, env)
    if settings.mode == "native":
        sidecar = {"name": SIDECAR_NAME, "image": defaults.image, "restartPolicy": "Always", **sidecar}

    new_spec = copy.deepcopy(dict(spec))
    new_model = new_spec["containers"][model_index]
    new_model["lifecycle"] = {
        **(new_model.get("lifecycle") or {}),
        "preStop": {"httpGet": {"path": "/drained", "port": DRAIN_WAIT_PORT}},
    }
    warnings: list[str] = []
    if settings.mode == "native":
        # First, so that the pod's other init containers can call out through its egress too.
        new_spec["initContainers"] = [sidecar, *new_spec.get("initContainers", [])]
    else:
        new_spec["containers"] = [sidecar, *new_spec["containers"]]
        if batch:
            warnings.append(
                f"classic sidecar in a pod with restartPolicy {spec['restartPolicy']}: the pod does not"
                " complete while the sidecar runs; have the main container POST /admin/drain to"
                f" 127.0.0.1:{ADMIN_PORT} when it is done, or use {PREFIX}mode native (Kubernetes >= 1.29)"
            )
    current = new_spec.get("terminationGracePeriodSeconds")
    new_spec["terminationGracePeriodSeconds"] = max(
        grace, current if isinstance(current, int) else _KUBERNETES_DEFAULT_GRACE
    )

    new_metadata = copy.deepcopy(dict(metadata))
    new_annotations = dict(annotations)
    new_annotations[INJECTED_VERSION] = __version__
    for key, value in (
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", str(settings.http_port)),
        ("prometheus.io/path", "/metrics"),
    ):
        new_annotations.setdefault(key, value)
    new_metadata["annotations"] = new_annotations
    # For selectors of what was injected (the PodMonitor); the opt-in label is the user's, not ours.
    new_metadata["labels"] = {**labels, INJECTED_LABEL: "true"}
    return Injected({**template, "metadata": new_metadata, "spec": new_spec}, tuple(warnings))


def grace_period(env: Mapping[str, str]) -> int:
    """terminationGracePeriodSeconds for a sidecar with these literal SIDECAR_* values."""
    return _grace_period(dict(env))


def _grace_period(env: Mapping[str, str]) -> int:
    try:
        config = load_config([], env)
    except ConfigError as e:
        raise InjectError(f"the sidecar's settings: {e}") from None
    return math.ceil(longest_drain(config)) + STOP_MARGIN


def _sidecar_env(settings: PodSettings, model_port: int, batch: bool) -> dict[str, str]:
    env = {
        "SIDECAR_APP_NAME": settings.app_name,
        "SIDECAR_MODEL_ADDRESS": f"127.0.0.1:{model_port}",
        "SIDECAR_MODEL_PROTOCOL": settings.model_protocol,
        "SIDECAR_GRPC_PORT": str(settings.grpc_port),
        "SIDECAR_HTTP_PORT": str(settings.http_port),
        "SIDECAR_ADMIN_PORT": str(ADMIN_PORT),
        "SIDECAR_EGRESS_GRPC_PORT": str(EGRESS_GRPC_PORT),
        "SIDECAR_EGRESS_HTTP_PORT": str(EGRESS_HTTP_PORT),
        "SIDECAR_DRAIN_WAIT_PORT": str(DRAIN_WAIT_PORT),
        "SIDECAR_LOG_LEVEL": settings.log_level,
        # Spring clients connect to the registered hostName, and a pod's name does not resolve in
        # Kubernetes: register the pod IP as hostName (Spring's prefer-ip-address), while the
        # instance id keeps the pod's name.
        "SIDECAR_PREFER_IP_ADDRESS": "on",
    }
    if settings.models:
        env["SIDECAR_MODELS"] = ",".join(settings.models)
    if settings.eureka_url:
        env["SIDECAR_EUREKA_URL"] = ",".join(settings.eureka_url)
    extra = dict(settings.env)
    if batch and "SIDECAR_DRAIN_DELAY" not in extra:
        # A Job's pod is not a server callers pick: nothing to wait for once its work is done.
        env["SIDECAR_DRAIN_DELAY"] = "0s"
    for name, value in settings.env:
        if name in env or name in _FROM_POD:
            raise InjectError(
                f"annotation {PREFIX}env: {name} is set by the injector"
                + (f" ({_OWNER[name]})" if name in _OWNER else "")
            )
        env[name] = value
    return env


# Set from the downward API: the address registered, which prefer_ip_address also makes the hostName.
_FROM_POD: Final = {
    "SIDECAR_ADVERTISE_IP": "status.podIP",
}
_OWNER: Final = {
    "SIDECAR_APP_NAME": f"{PREFIX}app-name",
    "SIDECAR_MODEL_ADDRESS": f"{PREFIX}model-port",
    "SIDECAR_MODEL_PROTOCOL": f"{PREFIX}model-protocol",
    "SIDECAR_GRPC_PORT": f"{PREFIX}grpc-port",
    "SIDECAR_HTTP_PORT": f"{PREFIX}http-port",
    "SIDECAR_LOG_LEVEL": f"{PREFIX}log-level",
    "SIDECAR_MODELS": f"{PREFIX}models",
    "SIDECAR_EUREKA_URL": f"{PREFIX}eureka-url",
}


def _sidecar_container(image: str, settings: PodSettings, env: Mapping[str, str]) -> dict[str, Any]:
    r = settings.resources
    requests = {k: v for k, v in (("cpu", r.cpu_request), ("memory", r.memory_request)) if v}
    limits = {k: v for k, v in (("cpu", r.cpu_limit), ("memory", r.memory_limit)) if v}
    resources: dict[str, Any] = {"requests": requests} if requests else {}
    if limits:
        resources["limits"] = limits
    http = settings.http_port
    return {
        "name": SIDECAR_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["run"],
        "env": [
            *({"name": k, "value": v} for k, v in env.items()),
            *({"name": k, "valueFrom": {"fieldRef": {"fieldPath": path}}} for k, path in _FROM_POD.items()),
        ],
        "ports": [
            {"name": "sidecar-grpc", "containerPort": settings.grpc_port, "protocol": "TCP"},
            {"name": "sidecar-http", "containerPort": http, "protocol": "TCP"},
        ],
        # The sidecar itself, never the model: the model container starts only once this passes.
        "startupProbe": {
            "httpGet": {"path": "/livez", "port": http},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "failureThreshold": 30,
        },
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": http},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        # The model's readiness, as the sidecar's prober sees it (with its own hysteresis), and
        # not-ready as soon as a drain begins.
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": http},
            "periodSeconds": 2,
            "timeoutSeconds": 1,
            "failureThreshold": 1,
        },
        # Runs when the pod starts terminating, at the same time as the model's preStop; the drain
        # it starts stays on loopback (the admin listener), out of reach of the rest of the cluster.
        "lifecycle": {"preStop": {"exec": {"command": ["ai-sidecar", "drain", "--wait"]}}},
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            # The sidecar image's own user (docker/sidecar/Dockerfile), so both say the same.
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _model_index(containers: list[Mapping[str, Any]], settings: PodSettings) -> int:
    if not settings.model_container:
        return 0
    for i, c in enumerate(containers):
        if c.get("name") == settings.model_container:
            return i
    names = ", ".join(str(c.get("name")) for c in containers)
    raise InjectError(
        f'annotation {PREFIX}model-container: no container "{settings.model_container}" (containers: {names})'
    )


def _first_port(container: Mapping[str, Any]) -> int | None:
    for port in container.get("ports") or ():
        if isinstance(port, Mapping) and isinstance(port.get("containerPort"), int):
            return int(port["containerPort"])
    return None


def _check_ports(
    containers: list[Mapping[str, Any]],
    init_containers: list[Mapping[str, Any]],
    settings: PodSettings,
    model_port: int,
) -> None:
    """The pod shares one network namespace: the sidecar's ports must be free in it."""
    ours = {
        settings.grpc_port: f"gRPC ingress ({PREFIX}grpc-port)",
        settings.http_port: f"HTTP ingress ({PREFIX}http-port)",
        ADMIN_PORT: "admin",
        EGRESS_GRPC_PORT: "gRPC egress",
        EGRESS_HTTP_PORT: "HTTP egress",
        DRAIN_WAIT_PORT: "drain-wait",
    }
    if len(ours) < 6:
        raise InjectError(
            f"annotations {PREFIX}grpc-port {settings.grpc_port} and {PREFIX}http-port {settings.http_port}"
            f" must differ from each other and from the sidecar's ports {ADMIN_PORT}, {EGRESS_GRPC_PORT},"
            f" {EGRESS_HTTP_PORT} and {DRAIN_WAIT_PORT}"
        )
    if model_port in ours:
        raise InjectError(f"the model's port {model_port} is the sidecar's {ours[model_port]} port")
    for c in (*init_containers, *containers):
        for port in c.get("ports") or ():
            number = port.get("containerPort") if isinstance(port, Mapping) else None
            if number in ours:
                raise InjectError(
                    f'container "{c.get("name")}" declares port {number}, the sidecar\'s {ours[number]} port'
                )


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InjectError(f"{where} is not an object")
    return value


def _strings(value: object, where: str) -> dict[str, str]:
    m = _mapping(value, where)
    for k, v in m.items():
        if not isinstance(v, str):
            raise InjectError(f"{where}.{k} is not a string")
    return dict(m)


def _containers(spec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = spec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(c, Mapping) for c in value):
        raise InjectError(f"spec.{key} is not a list of containers")
    return value
