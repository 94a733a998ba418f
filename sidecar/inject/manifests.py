"""Walks Kubernetes manifests (multi-document YAML, `kind: List`) and injects every pod template.

Deployment, StatefulSet, DaemonSet, ReplicaSet, Job: spec.template; CronJob:
spec.jobTemplate.spec.template; Pod: the object itself. Other kinds pass through unchanged.
Knows YAML and workload kinds; what injection does is `pod.inject_template`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from sidecar.inject.pod import Injected, inject_template
from sidecar.inject.settings import InjectDefaults, InjectError

_TEMPLATE_KINDS: Final = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass
class Report:
    """What a walk did, per object, for the CLI to tell on stderr."""

    injected: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def inject_documents(
    text: str, defaults: InjectDefaults, *, all_pods: bool = False, source: str = "<stdin>"
) -> tuple[str, Report]:
    """Every document of `text` with its pod templates injected, as YAML, and what was done.

    `all_pods` injects every pod not annotated `ai-sidecar.io/inject: "false"`, as a namespace
    label does for the webhook. Raises InjectError naming the object (kind/name) at fault.
    """
    report = Report()
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise InjectError(f"{source}: not YAML: {e}".replace("\n", " ")) from None
    out = [_object(doc, defaults, all_pods, report, source) for doc in documents if doc is not None]
    return "---\n".join(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False) for doc in out), report


def _object(obj: Any, defaults: InjectDefaults, all_pods: bool, report: Report, source: str) -> Any:
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        return {**obj, "items": [_object(i, defaults, all_pods, report, source) for i in obj["items"]]}
    name = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
    for path in _template_paths(obj):
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        template = parent[path[-1]] if path else obj
        try:
            outcome = inject_template(template, defaults, namespace_opted_in=all_pods)
        except InjectError as e:
            raise InjectError(f"{source}: {name}: {e}") from None
        if not isinstance(outcome, Injected):
            report.unchanged.append(f"{name} ({outcome.reason})")
            return obj
        report.injected.append(name)
        report.warnings.extend(f"{name}: {w}" for w in outcome.warnings)
        return _replace(obj, path, outcome.template)
    return obj


def _template_paths(obj: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    kind = obj.get("kind")
    if kind == "Pod" and isinstance(obj.get("spec"), dict):
        yield ()
    elif kind in _TEMPLATE_KINDS and isinstance((obj.get("spec") or {}).get("template"), dict):
        yield ("spec", "template")
    elif kind == "CronJob":
        job = (obj.get("spec") or {}).get("jobTemplate") or {}
        if isinstance((job.get("spec") or {}).get("template"), dict):
            yield ("spec", "jobTemplate", "spec", "template")


def _replace(obj: dict[str, Any], path: tuple[str, ...], template: dict[str, Any]) -> dict[str, Any]:
    if not path:
        return {**obj, "metadata": template["metadata"], "spec": template["spec"]}
    return {**obj, path[0]: _replace_in(obj[path[0]], path[1:], template)}


def _replace_in(node: dict[str, Any], path: tuple[str, ...], template: dict[str, Any]) -> dict[str, Any]:
    if len(path) == 1:
        return {**node, path[0]: template}
    return {**node, path[0]: _replace_in(node[path[0]], path[1:], template)}
