"""The policy document: valid documents parse, invalid ones are refused with the field named."""

import pytest

from sidecar.policy.config_server import document, unflatten
from sidecar.policy.document import parse
from sidecar.policy.reader import PolicyError

STATIC = frozenset({"grpc_port", "model_address"})


def error(doc: object) -> str:
    with pytest.raises(PolicyError) as e:
        parse(doc, static_settings=STATIC)
    return str(e.value)


def test_a_full_document_parses():
    policy = parse(
        {
            "version": "v1",
            "identity": {"classes": {"gold": ["checkout"]}, "default_class": "std"},
            "jwt": {"issuers": ["https://id"], "audiences": ["digits"], "leeway": "10s"},
            "rbac": {"rules": [{"action": "allow", "methods": ["ModelInfer"], "models": ["digits"]}]},
            "rate_limits": {
                "default": {"rate": 300, "burst": 30},
                "overrides": [{"clients": ["a"], "rate": 5}],
            },
            "admission": {
                "limit": "gradient",
                "gradient": {"min_limit": 2, "probe_interval": "30s"},
                "queue": {"size": 8, "timeout": "250ms"},
                "priorities": ["gold"],
            },
            "egress": {"default": {"balancer": "round_robin"}},
        },
        static_settings=STATIC,
    )
    assert policy.version == "v1"
    assert policy.identity.classes["checkout"] == "gold"
    assert policy.jwt is not None and policy.jwt.leeway == 10.0
    assert policy.rules[0].methods == frozenset({"/inference.GRPCInferenceService/ModelInfer"})
    assert policy.rate_limits.overrides[0].rate.burst == 1.0
    assert policy.admission.queue.timeout == 0.25
    assert policy.egress is not None and policy.egress.default.balancer == "round_robin"
    assert set(policy.class_names) == {"std", "gold"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"rate_limits": {"default": {"rate": -1}}}, "rate_limits.default.rate: -1 must be more than 0"),
        ({"rate_limits": {"overrides": [{"rate": 1, "burst": 0}]}}, "rate_limits.overrides[0].burst: 0"),
        (
            {"rbac": {"rules": [{"action": "maybe"}]}},
            "rbac.rules[0].action: 'maybe' is not one of allow, deny",
        ),
        ({"rbac": {"rulez": []}}, "rbac.rulez: unknown key"),
        ({"grpc_port": 1}, "grpc_port: a static setting of the sidecar"),
        ({"model-address": "x:1"}, "model-address: a static setting"),
        ({"jwt": {"issuers": ["i"], "audiences": ["a"], "algorithms": ["HS256"]}}, "jwt.algorithms: 'HS256'"),
        ({"jwt": {"issuers": ["i"], "audiences": ["a"], "algorithms": ["none"]}}, "never none or HS*"),
        ({"jwt": {"audiences": ["a"]}}, "jwt.issuers: required"),
        ({"admission": {"limit": "fixed"}}, "admission.max_concurrency: required"),
        (
            {"admission": {"limit": "gradient", "gradient": {"min_limit": 50}}},
            "admission.gradient: needs 1 <=",
        ),
        ({"rbac": {"rules": [{"action": "allow", "methods": ["a/b"]}]}}, "neither an OIP method name"),
        ({"egress": {"default": {"balancer": "dice"}}}, "egress: default"),
        ("just words", "policy: expected a mapping"),
    ],
)
def test_invalid_documents_name_the_field(doc: object, message: str):
    assert message in error(doc)


def test_spring_property_sources_unflatten_and_merge_most_specific_first():
    env = {
        "propertySources": [
            {"name": "digits.yml", "source": {
                "ai-sidecar.policy.version": "app",
                "ai-sidecar.policy.rbac.rules[0].action": "allow",
                "ai-sidecar.policy.rbac.rules[0].models[0]": "digits",
                "ai-sidecar.policy.jwt.forward_claims[https://x.io/tenant]": "x-tenant",
                "unrelated.key": 1,
            }},
            {"name": "application.yml", "source": {
                "ai-sidecar.policy.version": "fleet",
                "ai-sidecar.policy.rate-limits.default.rate": 100,
                "ai-sidecar.policy.rbac.rules[0].action": "deny",
                "ai-sidecar.policy.rbac.rules[1].action": "deny",
            }},
        ]
    }  # fmt: skip
    doc = document(env)
    assert doc["version"] == "app"
    assert doc["rate-limits"] == {"default": {"rate": 100}}
    assert doc["rbac"]["rules"] == [{"action": "allow", "models": ["digits"]}], (
        "a list comes whole from one source"
    )
    assert doc["jwt"]["forward_claims"] == {"https://x.io/tenant": "x-tenant"}
    policy = parse({k: v for k, v in doc.items() if k != "jwt"})
    assert policy.rate_limits.default is not None and policy.rate_limits.default.rate == 100


def test_list_indexes_with_gaps_are_refused():
    with pytest.raises(PolicyError, match=r"list indexes \[0, 2\]"):
        unflatten(
            {"ai-sidecar.policy.rbac.rules[0].action": "allow", "ai-sidecar.policy.rbac.rules[2].action": "x"}
        )
