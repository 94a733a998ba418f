"""compose.yaml for real: every model registered UP in Eureka, Prometheus scraping every sidecar, the
client calling each language by name through its sidecar's egress, and a sidecar's `docker stop`.

The stack runs once for the module with tests/container/compose.test.yaml over compose.yaml
(ephemeral host ports, short drain settings); the stop test goes last, since it takes a sidecar away.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import REPO
from tests.support.docker import IMAGES, REGISTRY, VERSION, docker, inspect, unique, wait_for

# The first test also builds every image (about 6 min cold here, longer on a loaded machine).
pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

HERE = REPO / "tests" / "container"
MODELS = ("digits-python", "digits-cpp", "digits-java", "digits-php")
SIDECARS = {"digits-python": "sidecar-python", "digits-cpp": "sidecar-cpp", "digits-java": "sidecar-java",
            "digits-php": "sidecar-php", "digits-client": "sidecar-client"}
CLIENT = "/app/examples/python/egress_client.py"


@dataclass
class Stack:
    project: str
    up_seconds: float

    def compose(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-p", self.project, "-f", str(REPO / "compose.yaml"),
                "-f", str(HERE / "compose.test.yaml"), *args]
        env = {**os.environ, "AI_SIDECAR_REGISTRY": REGISTRY}
        result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
        if check and result.returncode != 0:
            output = result.stdout + result.stderr
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{output}")
        return result

    def port(self, service: str, port: int) -> int:
        return int(self.compose("port", service, str(port)).stdout.strip().rsplit(":", 1)[1])

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", "--all", service).stdout.strip()

    def get(self, service: str, port: int, path: str) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port(service, port)}{path}",
                                         headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def eureka_status(self) -> dict[str, list[str]]:
        """App name (lower case) -> the status of each of its instances."""
        apps = self.get("eureka", 8761, "/eureka/apps")["applications"]["application"]
        return {app["name"].lower(): [i["status"] for i in app["instance"]] for app in apps}


def _all_up(stack: Stack) -> bool:
    status = stack.eureka_status()
    return all(status.get(m) == ["UP"] for m in MODELS)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    stack = Stack(unique("aisc-compose"), 0.0)
    failed = True
    try:
        start = time.monotonic()
        stack.compose("up", "-d", "--no-build", "--pull", "never")
        wait_for("every model UP in Eureka", lambda: _all_up(stack), 180, interval=0.2)
        stack.up_seconds = time.monotonic() - start
        print(f"\ncompose up until every model was UP in Eureka: {stack.up_seconds:.1f} s")
        yield stack
        failed = False
    finally:
        if failed:
            print(stack.compose("logs", "--no-color", check=False).stdout[-20000:])
        stack.compose("down", "-v", "--remove-orphans", "-t", "10", check=False)


def test_compose_names_the_images_build_images_makes_with_the_package_version() -> None:
    text = (REPO / "compose.yaml").read_text()
    pattern = r"image: \$\{AI_SIDECAR_REGISTRY:-\}([a-z-]+):\$\{AI_SIDECAR_TAG:-([^}]+)\}"
    names = set(re.findall(pattern, text))
    assert {n for n, _ in names} <= set(IMAGES.values())
    assert {v for _, v in names} == {VERSION}
    assert len(re.findall(r"^\s+image:", text, re.M)) == len(re.findall(pattern, text))


def test_every_model_is_registered_up_in_eureka(stack: Stack) -> None:
    status = stack.eureka_status()
    assert {m: status.get(m) for m in MODELS} == {m: ["UP"] for m in MODELS}
    # The client's sidecar has no model, so it is never ready and never registers.
    assert "digits-client" not in status
    app = stack.get("eureka", 8761, "/eureka/apps/DIGITS-PHP")["application"]["instance"][0]
    assert app["hostName"] == "sidecar-php" and app["port"]["$"] == 8080
    assert app["metadata"]["grpc.port"] == "8081"


def test_prometheus_scrapes_every_sidecar(stack: Stack) -> None:
    def scraped() -> dict[str, str] | None:
        targets = stack.get("prometheus", 9090, "/api/v1/targets?state=active")["data"]["activeTargets"]
        health = {t["labels"]["app"]: t["health"] for t in targets if t["labels"]["job"] == "ai-sidecar"}
        return health if set(health.values()) == {"up"} and len(health) == len(SIDECARS) else None

    health = wait_for("Prometheus to scrape every sidecar", scraped, 60, interval=1)
    assert health == {app: "up" for app in SIDECARS}

    expected = {**{m: "1" for m in MODELS}, "digits-client": "0"}

    def ready() -> dict[str, str]:
        query = urllib.parse.quote("ai_sidecar_model_ready")
        result = stack.get("prometheus", 9090, f"/api/v1/query?query={query}")["data"]["result"]
        return {r["metric"]["app"]: r["value"][1] for r in result}

    # The sidecars' own series, as Prometheus stored them: each model ready, the client's not (a
    # sample may predate a model's readiness by one scrape interval, 5 s).
    wait_for(f"ai_sidecar_model_ready to be {expected}", lambda: ready() == expected, 30, interval=1)


def test_client_calls_every_language_by_name_through_its_sidecar(stack: Stack) -> None:
    services = [arg for m in MODELS for arg in ("--service", m)]

    def one_round() -> list[dict[str, Any]] | None:
        result = stack.compose("exec", "-T", "client", "python3", CLIENT, "--once", *services, check=False)
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        return lines if result.returncode == 0 else None

    # The client's sidecar learns of the models at its next registry fetch (every 5 s here).
    lines = wait_for("a round of calls by name that all succeed", one_round, 60, interval=1)
    calls = {(line["service"], line["protocol"]): (line["ok"], line["label"]) for line in lines}
    assert calls == {(m, p): (True, 0) for m in MODELS for p in ("grpc", "rest")}
    # And the compose service itself, which calls every 5 s, has been answered by each of them.
    def answered() -> set[str]:
        out = stack.compose("logs", "--no-color", "--no-log-prefix", "client").stdout
        return {json.loads(line)["service"] for line in out.splitlines() if '"ok": true' in line}

    wait_for("the client service's own calls to succeed for every model",
             lambda: answered() >= set(MODELS), 30, interval=1)


def test_docker_stop_drains_a_sidecar_which_leaves_eureka(stack: Stack) -> None:
    container = stack.container("sidecar-java")
    start = time.monotonic()
    docker("stop", "-t", "10", container, timeout=60)
    took = time.monotonic() - start
    state = inspect("container", container)["State"]
    log = stack.compose("logs", "--no-color", "sidecar-java").stdout
    assert state["ExitCode"] == 0, log
    # Drain delay 1 s + in-flight calls (at most a few ms) < the 10 s grace: it exits, unkilled.
    assert took < 8, log
    assert re.search(r"eureka: .*OUT_OF_SERVICE \(draining\)", log), log
    assert re.search(r"eureka: deregistered sidecar-java:digits-java:8081", log), log
    status = stack.eureka_status()
    assert "digits-java" not in status, status
    assert all(status.get(m) == ["UP"] for m in MODELS if m != "digits-java")
