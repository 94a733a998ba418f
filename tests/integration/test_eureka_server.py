"""A real Spring Cloud Eureka server answers the raw REST calls a Eureka client makes, in the JSON shapes
our client will parse, and the test settings of docker/eureka-server (fast eviction) are in force."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.eureka import EurekaServer, JsonObject, start_eureka

pytestmark = pytest.mark.integration

DATA_CENTER = {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}
METADATA = {"grpc.port": "9000", "model_name": "digits"}


@pytest.fixture(scope="module")
def eureka() -> Iterator[EurekaServer]:
    with start_eureka() as server:
        yield server


def instance_info(instance_id: str, app: str = "DEMO", duration: int = 30) -> JsonObject:
    return {
        "instance": {
            "instanceId": instance_id,
            "hostName": "127.0.0.1",
            "app": app,
            "ipAddr": "127.0.0.1",
            "status": "UP",
            "port": {"$": 8080, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "vipAddress": app.lower(),
            "dataCenterInfo": DATA_CENTER,
            "leaseInfo": {"renewalIntervalInSecs": 1, "durationInSecs": duration},
            "metadata": METADATA,
        }
    }


def instances(applications: JsonObject) -> dict[str, Any]:
    """Instances by id from an `applications` object (GET /apps or /apps/delta)."""
    return {i["instanceId"]: i for app in applications["application"] for i in app["instance"]}


def test_register_read_heartbeat_override_delta_and_cancel(eureka: EurekaServer):
    assert eureka.url == f"http://127.0.0.1:{eureka.port}/eureka/"
    assert eureka.request("POST", "apps/DEMO", instance_info("demo-1"))[0] == 204

    app = eureka.app("demo")
    assert app is not None
    assert app["application"]["name"] == "DEMO"
    # Lists even for one application or instance; numbers in "$", flags as strings.
    [instance] = app["application"]["instance"]
    assert instance["metadata"] == METADATA
    assert instance["port"] == {"$": 8080, "@enabled": "true"}
    assert instance["securePort"] == {"$": 443, "@enabled": "false"}
    assert instance["dataCenterInfo"] == DATA_CENTER
    assert (instance["status"], instance["overriddenStatus"]) == ("UP", "UNKNOWN")
    assert isinstance(instance["lastDirtyTimestamp"], str)
    assert isinstance(instance["leaseInfo"]["lastRenewalTimestamp"], int)
    applications = eureka.apps()["applications"]
    assert applications["apps__hashcode"] == "UP_1_"
    assert instances(applications)["demo-1"]["metadata"] == METADATA

    assert eureka.request("PUT", "apps/DEMO/demo-1")[0] == 200
    # A heartbeat for an instance the server does not know is a 404: the client's cue to register again.
    assert eureka.request("PUT", "apps/DEMO/demo-unknown")[0] == 404

    assert eureka.request("PUT", "apps/DEMO/demo-1/status?value=OUT_OF_SERVICE")[0] == 200
    app = eureka.app("DEMO")
    assert app is not None
    [instance] = app["application"]["instance"]
    assert (instance["status"], instance["overriddenStatus"]) == ("OUT_OF_SERVICE", "OUT_OF_SERVICE")
    assert eureka.apps()["applications"]["apps__hashcode"] == "OUT_OF_SERVICE_1_"

    delta = eureka.get_json("apps/delta")
    assert delta is not None
    changed = instances(delta["applications"])["demo-1"]
    assert (changed["actionType"], changed["status"]) == ("MODIFIED", "OUT_OF_SERVICE")
    # The hash code in a delta is that of the whole registry after it, for the client's consistency check.
    assert delta["applications"]["apps__hashcode"] == "OUT_OF_SERVICE_1_"

    assert eureka.request("DELETE", "apps/DEMO/demo-1/status?value=UP")[0] == 200
    app = eureka.app("DEMO")
    assert app is not None
    assert app["application"]["instance"][0]["status"] == "UP"

    assert eureka.request("DELETE", "apps/DEMO/demo-1")[0] == 200
    assert eureka.app("DEMO") is None
    applications = eureka.apps()["applications"]
    assert (applications["apps__hashcode"], applications["application"]) == ("", [])
    delta = eureka.get_json("apps/delta")
    assert delta is not None
    assert instances(delta["applications"])["demo-1"]["actionType"] == "DELETED"
    assert eureka.request("DELETE", "apps/DEMO/demo-1")[0] == 404


def test_an_instance_that_stops_heartbeating_is_evicted_within_seconds(eureka: EurekaServer):
    assert eureka.request("POST", "apps/QUIET", instance_info("quiet-1", "QUIET", duration=1))[0] == 204
    # Due after the 1 s lease plus at most one 1 s eviction tick; with Eureka's defaults (60 s timer,
    # self-preservation) it would stay for a minute or more. The bound leaves room for a loaded machine.
    deadline = time.monotonic() + 10
    while eureka.app("QUIET") is not None:
        assert time.monotonic() < deadline, "not evicted within 10 s: eviction settings not in force?"
        time.sleep(0.1)


def test_restart_keeps_the_port_and_empties_the_registry(eureka: EurekaServer):
    assert eureka.request("POST", "apps/DEMO", instance_info("demo-2"))[0] == 204
    url = eureka.url
    eureka.restart()
    assert eureka.url == url
    assert eureka.apps()["applications"]["application"] == []
    assert eureka.request("POST", "apps/DEMO", instance_info("demo-2"))[0] == 204
    assert eureka.app("DEMO") is not None
