"""Registry cache logic of the Eureka client protocol, on JSON recorded from the real Spring Cloud server."""

import copy
import json
import pathlib
from typing import Any

import pytest

from sidecar.discovery.eureka_registry import (
    EurekaFormatError,
    apply_delta,
    endpoints,
    parse_full,
    reconcile_hashcode,
)
from sidecar.registry.instance import InstanceSpec, instance_document, instance_id

RECORDED = json.loads((pathlib.Path(__file__).parent / "data" / "eureka_apps.json").read_text())


def instance(
    app: str, iid: str, status: str = "UP", action: str = "ADDED", grpc: str = "9000"
) -> dict[str, Any]:
    inst: dict[str, Any] = copy.deepcopy(RECORDED["applications"]["application"][0]["instance"][0])
    inst.update(app=app, instanceId=iid, status=status, actionType=action)
    inst["metadata"] = {"grpc.port": grpc, "model_name": "digits", "zone": "z1", "weight": "3"}
    return inst


@pytest.mark.parametrize(
    ("metadata", "port"),
    [
        ({"grpc.port": "9000", "gRPC_port": "9001"}, 9000),
        ({"gRPC_port": "9001", "gRPC.port": "9002"}, 9001),  # a Java service on Spring's gRPC starter
        ({"gRPC.port": "9002"}, 9002),  # the same starter before 2.11
        ({"management.port": "15000"}, None),
    ],
)
def test_the_grpc_port_is_read_from_our_key_then_the_spring_starters_keys(metadata, port):
    inst = instance("A", "a1")
    inst["metadata"] = metadata
    (ep,) = endpoints({"A": {"a1": inst}})["A"]
    assert ep.grpc_port == port


def doc(hashcode: str, *apps: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "applications": {
            "versions__delta": "1",
            "apps__hashcode": hashcode,
            "application": [{"name": n, "instance": i} for n, i in apps],
        }
    }


def test_recorded_full_fetch_parses_into_up_endpoints_with_metadata_intact():
    apps = parse_full(RECORDED)
    assert apps.hashcode == "UP_1_" == reconcile_hashcode(apps.instances)
    (ep,) = endpoints(apps.instances)["DEMO"]
    assert (ep.host, ep.http_port, ep.grpc_port) == ("127.0.0.1", 8080, 9000)
    assert ep.metadata["grpc.port"] == "9000" and ep.metadata["model_name"] == "digits"


def test_a_single_instance_written_as_a_bare_object_is_accepted():
    d = copy.deepcopy(RECORDED)
    app = d["applications"]["application"][0]
    app["instance"] = app["instance"][0]
    d["applications"]["application"] = app
    assert list(parse_full(d).instances["DEMO"]) == ["h:demo:1"]


def test_hashcode_counts_every_status_sorted_by_name():
    apps = parse_full(
        doc(
            "",
            ("A", [instance("A", "a1"), instance("A", "a2", "DOWN")]),
            ("B", [instance("B", "b1"), instance("B", "b2", "OUT_OF_SERVICE")]),
        )
    )
    assert reconcile_hashcode(apps.instances) == "DOWN_1_OUT_OF_SERVICE_1_UP_2_"
    assert [e.instance_id for e in endpoints(apps.instances)["A"]] == ["a1"]


def test_delta_adds_modifies_and_deletes_then_reconciles():
    apps = parse_full(doc("UP_2_", ("A", [instance("A", "a1"), instance("A", "a2")])))
    delta = doc(
        "DOWN_1_UP_2_",
        ("A", [instance("A", "a2", "DOWN", "MODIFIED"), instance("A", "a1", "UP", "DELETED")]),
        ("B", [instance("B", "b1", "UP", "ADDED"), instance("B", "b2", "UP", "ADDED")]),
    )
    merged, consistent = apply_delta(apps, delta)
    # a1 deleted, a2 down, b1 and b2 up: DOWN_1_UP_2_
    assert consistent
    eps = endpoints(merged.instances)
    assert "A" not in eps
    assert [e.instance_id for e in eps["B"]] == ["b1", "b2"]
    assert apps.instances["A"]["a1"]["status"] == "UP"  # the old snapshot is untouched


def test_delta_with_a_hashcode_we_cannot_reach_says_so():
    apps = parse_full(doc("UP_1_", ("A", [instance("A", "a1")])))
    _, consistent = apply_delta(apps, doc("UP_5_", ("A", [instance("A", "a2", action="ADDED")])))
    assert not consistent


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"applications": []},
        doc("", ("A", [{"no": "id"}])),
        doc("", ("A", [instance("A", "x", action="RENAMED")])),
    ],
)
def test_malformed_documents_raise_a_format_error(bad):
    with pytest.raises(EurekaFormatError):
        apps = parse_full(doc("", ("A", [instance("A", "a1")])))
        parse_full(bad)
        apply_delta(apps, bad)


def test_instance_document_has_the_fields_spring_cloud_registers():
    spec = InstanceSpec(
        app="digits",
        instance_id=instance_id(
            "{host}:{app}:{grpc_port}", host="pod-1", app="digits", grpc_port=8081, http_port=8080
        ),
        host_name="pod-1",
        ip_addr="10.1.2.3",
        http_port=8080,
        grpc_port=8081,
        admin_port=15000,
        zone="z1",
        weight=2,
        lease_renewal_seconds=5,
        lease_duration_seconds=15,
    )
    inst = instance_document(spec, status="UP", model_metadata={"model_name": "digits"}, last_dirty_ms=123)[
        "instance"
    ]
    assert inst["instanceId"] == "pod-1:digits:8081" and inst["app"] == "DIGITS"
    assert inst["port"] == {"$": 8080, "@enabled": "true"}
    assert inst["securePort"]["@enabled"] == "false"
    assert inst["vipAddress"] == inst["secureVipAddress"] == "digits"
    assert inst["healthCheckUrl"] == "http://pod-1:8080/readyz"
    assert inst["dataCenterInfo"]["name"] == "MyOwn"
    assert inst["leaseInfo"] == {"renewalIntervalInSecs": 5, "durationInSecs": 15}
    md = inst["metadata"]
    assert md["grpc.port"] == "8081" and md["management.port"] == "15000"
    # Spring's gRPC client starter (net.devh) reads gRPC_port, before 2.11 gRPC.port.
    assert md["gRPC_port"] == md["gRPC.port"] == "8081"
    assert md["zone"] == "z1" and md["weight"] == "2" and md["model_name"] == "digits"
    assert inst["lastDirtyTimestamp"] == "123"
