"""The injection function: what it adds, what it refuses, and that the result is a valid pod."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from sidecar.config import load_config
from sidecar.drain.settings import longest_drain
from sidecar.inject.pod import DRAIN_WAIT_PORT, STOP_MARGIN, Injected, Unchanged, inject_template
from sidecar.inject.settings import InjectDefaults, InjectError
from tests.support.kube import BEFORE_NATIVE_SIDECARS, schema_errors

DEFAULTS = InjectDefaults()
EUREKA = InjectDefaults(eureka_url=("http://eureka-0.eureka:8761/eureka/",))


def template(annotations: Any = None, labels: Any = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app": "digits", **(labels or {})},
            "annotations": {"ai-sidecar.io/inject": "true", **(annotations or {})},
        },
        "spec": {"containers": [{"name": "model", "image": "digits:1"}], **spec},
    }


def injected(t: Any, defaults: InjectDefaults = DEFAULTS, **kw: Any) -> dict[str, Any]:
    outcome = inject_template(t, defaults, **kw)
    assert isinstance(outcome, Injected), outcome
    return outcome.template


def as_pod(t: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **t["metadata"]}, "spec": t["spec"]}


def sidecar_of(t: Any) -> dict[str, Any]:
    spec = t["spec"]
    found: dict[str, Any] = next(
        c for c in (*spec.get("initContainers", []), *spec["containers"]) if c["name"] == "ai-sidecar"
    )
    return found


def env_of(container: Any) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def literal_env(container: Any) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_native_sidecar_is_the_first_init_container_and_always_restarts():
    t = injected(template(initContainers=[{"name": "migrate", "image": "m:1"}]))
    init = t["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["ai-sidecar", "migrate"]
    assert init[0]["restartPolicy"] == "Always"
    assert [c["name"] for c in t["spec"]["containers"]] == ["model"]
    assert schema_errors(as_pod(t)) == ""


def test_the_startup_probe_checks_the_sidecar_only_and_readiness_follows_the_model():
    sidecar = sidecar_of(injected(template()))
    assert sidecar["startupProbe"]["httpGet"] == {"path": "/livez", "port": 8080}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/livez", "port": 8080}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}


def test_stop_order_hooks_start_the_drain_on_loopback_and_hold_the_model_until_it_is_done():
    t = injected(template())
    sidecar, model = sidecar_of(t), t["spec"]["containers"][0]
    assert sidecar["lifecycle"]["preStop"] == {"exec": {"command": ["ai-sidecar", "drain", "--wait"]}}
    assert model["lifecycle"]["preStop"] == {"httpGet": {"path": "/drained", "port": DRAIN_WAIT_PORT}}
    env = env_of(sidecar)
    assert env["SIDECAR_DRAIN_WAIT_PORT"] == str(DRAIN_WAIT_PORT)
    assert "SIDECAR_ADMIN_HOST" not in env  # the admin listener, which starts drains, stays on loopback


def test_registration_advertises_the_pod_ip_as_host_name_and_ip():
    env = env_of(sidecar_of(injected(template(), EUREKA)))
    pod_ip = {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["SIDECAR_ADVERTISE_IP"] == pod_ip and env["SIDECAR_PREFER_IP_ADDRESS"] == "on"
    # No advertised host name: the instance id keeps the pod's name, the hostName is the IP.
    assert "SIDECAR_ADVERTISE_HOST" not in env
    assert env["SIDECAR_EUREKA_URL"] == "http://eureka-0.eureka:8761/eureka/"


@pytest.mark.parametrize(
    ("defaults", "annotations", "expected"),
    [
        (DEFAULTS, {}, 100 + 30 + STOP_MARGIN),  # quiet-period drain: at most drain_max_delay
        (EUREKA, {}, 100 + 30 + STOP_MARGIN),
        (EUREKA, {"ai-sidecar.io/env": '{"SIDECAR_DRAIN_DELAY": "100s", "SIDECAR_DRAIN_TIMEOUT": "45s"}'},
         100 + 45 + STOP_MARGIN),  # a fixed delay
        (EUREKA, {"ai-sidecar.io/env": '{"SIDECAR_DRAIN_MAX_DELAY": "60s"}'}, 60 + 30 + STOP_MARGIN),
    ],
)  # fmt: skip
def test_grace_period_follows_the_drain_settings_the_sidecar_gets(defaults, annotations, expected):
    t = injected(template(annotations), defaults)
    grace = t["spec"]["terminationGracePeriodSeconds"]
    assert grace == expected
    # The same number from the sidecar's own config loader and drain function, whatever their defaults.
    config = load_config([], literal_env(sidecar_of(t)))
    assert grace == math.ceil(longest_drain(config)) + STOP_MARGIN


def test_a_longer_grace_period_of_the_pod_is_kept():
    assert (
        injected(template(terminationGracePeriodSeconds=600))["spec"]["terminationGracePeriodSeconds"] == 600
    )


def test_a_job_pod_drains_without_delay():
    t = injected(template(restartPolicy="Never"), EUREKA)
    assert literal_env(sidecar_of(t))["SIDECAR_DRAIN_DELAY"] == "0s"
    assert t["spec"]["terminationGracePeriodSeconds"] == 30 + STOP_MARGIN


def test_classic_sidecar_is_a_regular_container_valid_before_native_sidecars_existed():
    t = injected(template({"ai-sidecar.io/mode": "classic"}))
    assert [c["name"] for c in t["spec"]["containers"]] == ["ai-sidecar", "model"]
    assert "restartPolicy" not in t["spec"]["containers"][0]
    assert schema_errors(as_pod(t), BEFORE_NATIVE_SIDECARS) == ""
    # The oracle is real: 1.27's schema has no restartPolicy on containers.
    assert "restartPolicy" in schema_errors(as_pod(injected(template())), BEFORE_NATIVE_SIDECARS)


def test_classic_sidecar_in_a_job_warns_that_the_job_will_not_complete():
    outcome = inject_template(
        template({"ai-sidecar.io/mode": "classic"}, restartPolicy="OnFailure"), DEFAULTS
    )
    assert isinstance(outcome, Injected)
    assert any("does not complete" in w and "/admin/drain" in w for w in outcome.warnings)


def test_annotations_set_the_sidecar():
    t = injected(
        template(
            {
                "ai-sidecar.io/app-name": "ocr",
                "ai-sidecar.io/model-port": "7000",
                "ai-sidecar.io/model-protocol": "http",
                "ai-sidecar.io/models": "ocr,layout",
                "ai-sidecar.io/log-level": "debug",
                "ai-sidecar.io/cpu-request": "250m",
                "ai-sidecar.io/cpu-limit": "1",
                "ai-sidecar.io/memory-request": "64Mi",
                "ai-sidecar.io/memory-limit": "1Gi",
                "ai-sidecar.io/env": '{"SIDECAR_ZONE": "a", "OTEL_SERVICE_NAME": "ocr"}',
            }
        )
    )
    sidecar = sidecar_of(t)
    env = literal_env(sidecar)
    assert env["SIDECAR_APP_NAME"] == "ocr"
    assert env["SIDECAR_MODEL_ADDRESS"] == "127.0.0.1:7000"
    assert env["SIDECAR_MODEL_PROTOCOL"] == "http"
    assert env["SIDECAR_MODELS"] == "ocr,layout"
    assert env["SIDECAR_LOG_LEVEL"] == "DEBUG"
    assert env["SIDECAR_ZONE"] == "a" and env["OTEL_SERVICE_NAME"] == "ocr"
    assert sidecar["resources"] == {
        "requests": {"cpu": "250m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }


def test_the_model_port_defaults_to_the_model_containers_first_port():
    t = template(containers=[{"name": "m", "image": "m:1", "ports": [{"containerPort": 9100}]}])
    assert literal_env(sidecar_of(injected(t)))["SIDECAR_MODEL_ADDRESS"] == "127.0.0.1:9100"


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"ai-sidecar.io/inject": "yes"}, 'annotation ai-sidecar.io/inject: "yes" is not "true" or "false"'),
        ({"ai-sidecar.io/log-level": "LOUD"}, "annotation ai-sidecar.io/log-level:"),
        ({"ai-sidecar.io/model-port": "http"}, "annotation ai-sidecar.io/model-port: 'http' is not a port"),
        ({"ai-sidecar.io/model-port": "70000"}, "annotation ai-sidecar.io/model-port:"),
        ({"ai-sidecar.io/model-protocol": "soap"}, "annotation ai-sidecar.io/model-protocol:"),
        ({"ai-sidecar.io/eureka-url": "ftp://x"}, "annotation ai-sidecar.io/eureka-url:"),
        ({"ai-sidecar.io/app-name": "no spaces"}, "annotation ai-sidecar.io/app-name:"),
        ({"ai-sidecar.io/cpu-request": "lots"}, "ai-sidecar.io/cpu-request: 'lots' is not a Kubernetes"),
        ({"ai-sidecar.io/memory-request": "2Gi", "ai-sidecar.io/memory-limit": "1Gi"},
         "memory-request 2Gi is more than memory-limit 1Gi"),
        ({"ai-sidecar.io/mode": "sidecarless"}, "annotation ai-sidecar.io/mode:"),
        ({"ai-sidecar.io/env": "SIDECAR_ZONE=a"}, "annotation ai-sidecar.io/env: not JSON"),
        ({"ai-sidecar.io/env": '["a"]'}, "annotation ai-sidecar.io/env: must be a JSON object"),
        ({"ai-sidecar.io/env": '{"SIDECAR_ZONE": 1}'}, "ai-sidecar.io/env: SIDECAR_ZONE is 1, not a string"),
        ({"ai-sidecar.io/env": '{"SIDECAR_APP_NAME": "x"}'},
         "annotation ai-sidecar.io/env: SIDECAR_APP_NAME is set by the injector (ai-sidecar.io/app-name)"),
        ({"ai-sidecar.io/env": '{"SIDECAR_ZONNE": "a"}'}, "unknown environment variable SIDECAR_ZONNE"),
        ({"ai-sidecar.io/env": '{"SIDECAR_DRAIN_TIMEOUT": "soon"}'}, "drain_timeout"),
        ({"ai-sidecar.io/model-container": "nope"}, 'ai-sidecar.io/model-container: no container "nope"'),
        ({"ai-sidecar.io/bogus": "1"}, "annotation ai-sidecar.io/bogus is not one ai-sidecar reads"),
        ({"ai-sidecar.io/grpc-port": "15000"}, "must differ from each other and from the sidecar's ports"),
        ({"ai-sidecar.io/model-port": "8080"}, "the model's port 8080 is the sidecar's HTTP ingress"),
    ],
)  # fmt: skip
def test_a_bad_annotation_is_refused_by_name(annotations, message):
    with pytest.raises(InjectError) as e:
        inject_template(template(annotations), DEFAULTS)
    assert message in str(e.value)


def test_an_app_name_is_required_without_an_app_label():
    t = template()
    t["metadata"]["labels"] = {}
    with pytest.raises(InjectError, match=r"annotation ai-sidecar\.io/app-name is required"):
        inject_template(t, DEFAULTS)


def test_a_container_port_the_sidecar_needs_is_refused_naming_the_container():
    t = template(containers=[{"name": "web", "image": "w:1", "ports": [{"containerPort": 15001}]}])
    t["metadata"]["annotations"]["ai-sidecar.io/model-port"] = "9000"
    with pytest.raises(InjectError, match='container "web" declares port 15001, the sidecar\'s gRPC egress'):
        inject_template(t, DEFAULTS)


def test_a_model_with_its_own_prestop_is_refused():
    t = template(
        containers=[{"name": "m", "image": "m:1", "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}]
    )
    with pytest.raises(InjectError, match=r'container "m" already has a lifecycle\.preStop hook'):
        inject_template(t, DEFAULTS)


def test_an_injected_pod_is_returned_unchanged():
    once = injected(template())
    before = copy.deepcopy(once)
    assert inject_template(once, DEFAULTS) == Unchanged("already injected")
    assert once == before


def test_a_foreign_container_with_the_sidecars_name_is_refused():
    t = template(containers=[{"name": "model", "image": "m:1"}, {"name": "ai-sidecar", "image": "theirs:1"}])
    with pytest.raises(
        InjectError, match='already has a container named "ai-sidecar" that ai-sidecar did not inject'
    ):
        inject_template(t, DEFAULTS)


def test_a_pod_not_opted_in_passes_whatever_its_containers_are_called():
    t = template(containers=[{"name": "ai-sidecar", "image": "theirs:1"}])
    del t["metadata"]["annotations"]["ai-sidecar.io/inject"]
    assert inject_template(t, DEFAULTS) == Unchanged("not opted in")


def test_opt_in_annotation_label_and_namespace():
    plain = template()
    del plain["metadata"]["annotations"]["ai-sidecar.io/inject"]
    assert inject_template(plain, DEFAULTS) == Unchanged("not opted in")
    assert isinstance(inject_template(plain, DEFAULTS, namespace_opted_in=True), Injected)
    labelled = template(labels={"ai-sidecar.io/inject": "true"})
    del labelled["metadata"]["annotations"]["ai-sidecar.io/inject"]
    assert isinstance(inject_template(labelled, DEFAULTS), Injected)
    out = template({"ai-sidecar.io/inject": "false"})
    assert inject_template(out, DEFAULTS, namespace_opted_in=True) == Unchanged("not opted in")


def test_the_input_is_never_modified_and_other_fields_survive():
    t = template(
        volumes=[{"name": "v", "emptyDir": {}}],
        containers=[{"name": "model", "image": "m:1", "env": [{"name": "A", "value": "1"}]}],
        nodeSelector={"gpu": "yes"},
    )
    before = copy.deepcopy(t)
    out = injected(t)
    assert t == before
    assert out["spec"]["volumes"] == before["spec"]["volumes"]
    assert out["spec"]["nodeSelector"] == {"gpu": "yes"}
    assert out["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


def test_scrape_annotations_are_added_but_a_teams_own_are_kept():
    assert injected(template())["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    own = injected(template({"prometheus.io/port": "9102"}))
    assert own["metadata"]["annotations"]["prometheus.io/port"] == "9102"


def test_every_injected_variant_is_a_valid_pod():
    variants = [
        template(),
        template({"ai-sidecar.io/mode": "classic"}),
        template({"ai-sidecar.io/env": json.dumps({"SIDECAR_TRACING": "on"})}, restartPolicy="Never"),
    ]
    for t in variants:
        assert schema_errors(as_pod(injected(t, EUREKA))) == ""


def test_bad_defaults_are_refused_at_construction():
    with pytest.raises(InjectError, match="mode:"):
        InjectDefaults(mode="both")
    with pytest.raises(InjectError, match="memory-request"):
        from sidecar.inject.settings import Resources

        InjectDefaults(resources=Resources(memory_request="a lot"))
