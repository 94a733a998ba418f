"""Every manifest in deploy/, checked against Kubernetes' schemas and against the code it deploys."""

from __future__ import annotations

import pathlib
import re
import shlex
import subprocess
import sys
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sidecar.cli import build_parser
from sidecar.core.status import Code
from sidecar.inject.pod import INJECTED_LABEL, SIDECAR_NAME
from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.prometheus import SidecarMetrics
from tests.support import REPO
from tests.support.kube import BEFORE_NATIVE_SIDECARS, documents, schema_errors

DEPLOY = REPO / "deploy"
# Kubernetes objects (prometheus-adapter/rules.yaml is the adapter's own config, not one).
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.parent.name != "prometheus-adapter")
# Custom resources: not in Kubernetes' schemas. Their CRDs' schemas are not on a registry this
# project reaches, so their required fields (from the CRDs' docs) are checked instead.
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "PodMonitor": {"spec": ("selector", "podMetricsEndpoints")},
    "PrometheusRule": {"spec": ("groups",)},
    "Certificate": {"spec": ("secretName", "issuerRef")},
    "Issuer": {"spec": ()},
}
CRD_GROUPS = {"PodMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
              "Certificate": "cert-manager.io/v1", "Issuer": "cert-manager.io/v1"}  # fmt: skip


def objects(name: str) -> list[dict[str, Any]]:
    return list(documents((DEPLOY / name).read_text()))


def by_kind(name: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in objects(name) if o["kind"] == kind]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_object_is_valid(path: pathlib.Path) -> None:
    found = list(documents(path.read_text()))
    assert found
    for obj in found:
        kind = obj["kind"]
        if kind in REQUIRED:
            assert obj["apiVersion"] == CRD_GROUPS[kind]
            assert obj["metadata"]["name"]
            for section, fields in REQUIRED[kind].items():
                assert isinstance(obj.get(section), dict), f"{kind}: no {section}"
                missing = [f for f in fields if f not in obj[section]]
                assert missing == [], f"{kind}/{obj['metadata']['name']}: {section} lacks {missing}"
        else:
            assert schema_errors(obj) == ""


def test_the_classic_variant_is_valid_before_native_sidecars_and_the_native_one_is_not() -> None:
    for obj in objects("kubernetes/digits-classic.yaml"):
        assert schema_errors(obj, BEFORE_NATIVE_SIDECARS) == ""
    (native,) = by_kind("kubernetes/digits-injected.yaml", "Deployment")
    assert "restartPolicy" in schema_errors(native, BEFORE_NATIVE_SIDECARS)


@pytest.mark.parametrize(
    ("mode", "name"), [("native", "digits-injected.yaml"), ("classic", "digits-classic.yaml")]
)
def test_the_injected_manifests_are_what_the_injector_makes_of_digits_yaml(mode: str, name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sidecar", "inject", "--mode", mode, "deploy/kubernetes/digits.yaml"],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    shipped = (DEPLOY / "kubernetes" / name).read_text()
    body = "".join(shipped.splitlines(keepends=True)[2:])
    assert body == proc.stdout, "run scripts/generate-manifests.sh"


def test_services_hpa_and_podmonitor_point_at_what_the_injector_adds() -> None:
    (deployment,) = by_kind("kubernetes/digits-injected.yaml", "Deployment")
    pod = deployment["spec"]["template"]
    (sidecar,) = [c for c in pod["spec"]["initContainers"] if c["name"] == SIDECAR_NAME]
    port_names = {p["name"] for p in sidecar["ports"]}
    (service,) = by_kind("kubernetes/digits-injected.yaml", "Service")
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (pdb,) = by_kind("kubernetes/digits-injected.yaml", "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (monitor,) = by_kind("kubernetes/monitoring.yaml", "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {INJECTED_LABEL: "true"}
    assert pod["metadata"]["labels"][INJECTED_LABEL] == "true"
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= port_names
    (hpa,) = by_kind("kubernetes/hpa.yaml", "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_the_sidecars_find_the_eureka_statefulset() -> None:
    (deployment,) = by_kind("kubernetes/digits.yaml", "Deployment")
    urls = deployment["spec"]["template"]["metadata"]["annotations"]["ai-sidecar.io/eureka-url"].split(",")
    (statefulset,) = by_kind("kubernetes/eureka.yaml", "StatefulSet")
    (service,) = by_kind("kubernetes/eureka.yaml", "Service")
    name, replicas = statefulset["metadata"]["name"], statefulset["spec"]["replicas"]
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert urls == [f"http://{name}-{i}.{service['metadata']['name']}:8761/eureka/" for i in range(replicas)]


def exported_metric_names() -> set[str]:
    metrics = SidecarMetrics(MethodLabels(), BoundedNames())
    metrics.observe("ingress", "/inference.GRPCInferenceService/ModelInfer", "", Code.OK, 0.01)
    metrics.watch_registration(lambda: True)
    metrics.watch_egress(lambda: {"digits": {"service_breaker": "open", "requests": 1}})
    text, _ = metrics.exposition()
    names: set[str] = set()
    for family in text_string_to_metric_families(text.decode()):
        names.update(s.name for s in family.samples)
    return names


def test_every_metric_the_alerts_and_the_adapter_use_is_exported() -> None:
    exported = exported_metric_names()
    used = set(re.findall(r"\bai_sidecar_[a-z_]+", (DEPLOY / "kubernetes" / "monitoring.yaml").read_text()))
    adapter = yaml.safe_load((DEPLOY / "prometheus-adapter" / "rules.yaml").read_text())
    for rule in adapter["rules"]:
        used.update(re.findall(r"\bai_sidecar_[a-z_]+", rule["seriesQuery"]))
    assert used and used <= exported, used - exported
    # The HPA asks for what the adapter serves.
    served = {rule["name"]["as"] for rule in adapter["rules"]}
    (hpa,) = by_kind("kubernetes/hpa.yaml", "HorizontalPodAutoscaler")
    assert {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]} <= served


def test_the_alert_rules_pass_promtool(tmp_path: pathlib.Path) -> None:
    (rule,) = by_kind("kubernetes/monitoring.yaml", "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    command = ["promtool", "check", "rules", str(path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"AiSidecarModelNotReady", "AiSidecarEgressBreakerOpen", "AiSidecarErrorRatio",
                      "AiSidecarP99OverSlo"}  # fmt: skip


def test_the_webhook_configuration_is_scoped_and_fails_closed_fast() -> None:
    (config,) = by_kind("webhook/webhook.yaml", "MutatingWebhookConfiguration")
    (namespace,) = by_kind("webhook/webhook.yaml", "Namespace")
    own = namespace["metadata"]["name"]
    paths = set()
    for hook in config["webhooks"]:
        assert hook["failurePolicy"] == "Fail"
        assert hook["timeoutSeconds"] <= 5
        assert hook["sideEffects"] == "None" and hook["admissionReviewVersions"] == ["v1"]
        excluded = [e for e in hook["namespaceSelector"]["matchExpressions"]
                    if e["key"] == "kubernetes.io/metadata.name"]  # fmt: skip
        by_name = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", own]}
        assert excluded == [by_name]
        assert hook["clientConfig"]["service"]["namespace"] == own
        paths.add(hook["clientConfig"]["service"]["path"])
        assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                  "resources": ["pods"], "scope": "Namespaced"}]  # fmt: skip
    assert paths == {"/inject", "/inject/namespace"}
    # Every hook is scoped by a label: none sees all pods of all namespaces.
    assert all("matchLabels" in h["namespaceSelector"] or "matchLabels" in h["objectSelector"]
               for h in config["webhooks"])  # fmt: skip


def test_the_webhook_deployment_runs_a_command_the_cli_accepts() -> None:
    (deployment,) = by_kind("webhook/webhook.yaml", "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [a.replace("$(POD_NAMESPACE)", "ai-sidecar") for a in container["args"]]
    parsed = build_parser().parse_args(args)
    assert parsed.exclude_namespace == ["ai-sidecar"]
    mount = container["volumeMounts"][0]["mountPath"]
    assert parsed.tls_cert.startswith(mount) and parsed.tls_key.startswith(mount)
    certificates = by_kind("webhook/cert-manager.yaml", "Certificate")
    (certificate,) = [c for c in certificates if not c["spec"].get("isCA")]
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    (service,) = by_kind("webhook/webhook.yaml", "Service")
    dns_name = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert dns_name in certificate["spec"]["dnsNames"]
    (config,) = by_kind("webhook/webhook.yaml", "MutatingWebhookConfiguration")
    ref = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert ref == f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    assert shlex.join(container["args"])  # plain strings
