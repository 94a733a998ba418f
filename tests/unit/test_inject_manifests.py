"""The manifest walker behind `ai-sidecar inject`, over the corpus in data/inject/."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from sidecar.inject.manifests import inject_documents
from sidecar.inject.settings import InjectDefaults, InjectError
from tests.support.kube import documents, schema_errors

CORPUS = pathlib.Path(__file__).parent / "data" / "inject"
FILES = sorted(CORPUS.glob("*.yaml"))
DEFAULTS = InjectDefaults(eureka_url=("http://eureka-0.eureka:8761/eureka/",))


def pod_specs(obj: Any) -> list[Any]:
    kind = obj["kind"]
    if kind == "Pod":
        return [obj["spec"]]
    if kind == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [obj["spec"]["template"]["spec"]]
    return []


def has_sidecar(spec: Any) -> bool:
    return any(c["name"] == "ai-sidecar" for c in (*spec.get("initContainers", []), *spec["containers"]))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_corpus_output_is_valid_and_injecting_it_again_changes_nothing(path):
    text = path.read_text()
    assert all(schema_errors(o) == "" for o in documents(text)), "the corpus itself must be valid"
    out, report = inject_documents(text, DEFAULTS, source=path.name)
    errors = [e for e in (schema_errors(o) for o in documents(out)) if e]
    assert errors == []
    again, report2 = inject_documents(out, DEFAULTS)
    assert report.injected or report.unchanged
    assert again == out
    assert report2.injected == []


def test_what_is_injected_and_what_passes_through():
    out, report = inject_documents((CORPUS / "list.yaml").read_text(), DEFAULTS)
    (the_list,) = yaml.safe_load_all(out)
    assert the_list["kind"] == "List"
    config_map, nlp, legacy = the_list["items"]
    assert config_map == yaml.safe_load((CORPUS / "list.yaml").read_text())["items"][0]
    assert has_sidecar(pod_specs(nlp)[0]) and not has_sidecar(pod_specs(legacy)[0])
    assert report.injected == ["Deployment/nlp"]
    assert report.unchanged == ["Deployment/legacy (not opted in)"]


def test_multi_document_files_keep_their_order_and_non_pod_kinds():
    out, _ = inject_documents((CORPUS / "statefulset.yaml").read_text(), DEFAULTS)
    service, statefulset = list(yaml.safe_load_all(out))
    assert service["kind"] == "Service" and statefulset["kind"] == "StatefulSet"
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "index"
    assert has_sidecar(pod_specs(statefulset)[0])


def test_cronjob_and_job_templates_are_found():
    out, report = inject_documents((CORPUS / "batch.yaml").read_text(), DEFAULTS)
    job, cron = list(yaml.safe_load_all(out))
    assert has_sidecar(pod_specs(job)[0]) and has_sidecar(pod_specs(cron)[0])
    assert report.injected == ["Job/reindex", "CronJob/nightly-eval"]
    assert any("CronJob/nightly-eval" in w and "does not complete" in w for w in report.warnings)


def test_the_already_injected_pod_is_unchanged():
    text = (CORPUS / "pod-already-injected.yaml").read_text()
    out, report = inject_documents(text, DEFAULTS)
    assert list(yaml.safe_load_all(out)) == list(yaml.safe_load_all(text))
    assert report.unchanged == ["Pod/digits-debug (already injected)"]


def test_all_pods_injects_what_is_not_opted_out():
    _, report = inject_documents((CORPUS / "list.yaml").read_text(), DEFAULTS, all_pods=True)
    assert report.injected == ["Deployment/nlp", "Deployment/legacy"]


def test_an_error_names_the_file_and_the_object():
    bad_port = '{ai-sidecar.io/inject: "true", ai-sidecar.io/model-port: "x"}'
    text = (CORPUS / "pod.yaml").read_text().replace('{ai-sidecar.io/inject: "true"}', bad_port)
    with pytest.raises(InjectError) as e:
        inject_documents(text, DEFAULTS, source="pod.yaml")
    assert str(e.value).startswith("pod.yaml: Pod/digits-debug: annotation ai-sidecar.io/model-port:")


def test_yaml_that_is_not_yaml_is_refused_naming_the_source():
    with pytest.raises(InjectError, match=r"^x\.yaml: not YAML"):
        inject_documents("a: [1,\n", DEFAULTS, source="x.yaml")
