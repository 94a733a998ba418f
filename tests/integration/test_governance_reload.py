"""Reload under load: 500 calls/s while the policy is rewritten 20 times, valid and invalid, two sources.

Client alice is allowed by every version; bob only by even ones. No call may fail except bob's,
and those only with PERMISSION_DENIED; every valid version becomes active, every invalid one is
refused (the active one stays), and the counts show in the metrics. The file source is laid out
as a Kubernetes ConfigMap volume (the file is a symlink through `..data`, swapped atomically);
the other source is a real Spring Cloud Config Server.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import time
from collections.abc import Callable

import grpc.aio
import pytest
import yaml

from tests.support.config_server import running_config_server
from tests.support.governance import Tally, grpc_caller, open_loop, start_governed_model
from tests.support.procs import HOST, Proc, http_get, running, start_sidecar

pytestmark = pytest.mark.integration

WRITES = 20
# Every third write is invalid, each in another way.
INVALID: list[dict[str, object]] = [
    {"rate_limits": {"default": {"rate": -5}}},  # a bad value
    {"rbac": {"rulez": []}},  # an unknown key
    {"grpc_port": 9999},  # a static setting
    {"admission": {"limit": "fixed"}},  # fixed without max_concurrency
    {"rbac": {"rules": [{"action": "maybe"}]}},
    {"rate_limits": {"mode": "global", "default": {"rate": 10}}},  # global without redis_address
    {"jwt": {"issuers": ["x"], "audiences": ["y"]}},  # jwt without a JWKS setting
]


def valid(n: int) -> dict[str, object]:
    clients = ["alice", "bob"] if n % 2 == 0 else ["alice"]
    return {
        "version": f"v{n}",
        "rate_limits": {"default": {"rate": 5000, "burst": 500}},
        "rbac": {"rules": [{"name": f"v{n}", "action": "allow", "principals": {"client": clients}}]},
    }


def plan() -> list[tuple[bool, dict[str, object]]]:
    writes: list[tuple[bool, dict[str, object]]] = []
    for i in range(1, WRITES + 1):
        writes.append((False, INVALID[i // 3 % len(INVALID)]) if i % 3 == 0 else (True, valid(i)))
    return writes


def policy_state(sidecar: Proc) -> dict[str, object]:
    state: dict[str, object] = json.loads(http_get(sidecar.ports["admin"], "/policy")[1])
    return state


async def wait_for(sidecar: Proc, done: Callable[[dict[str, object]], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if done(policy_state(sidecar)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} within 5 s: {policy_state(sidecar)}")


async def rewrite_under_load(
    sidecar: Proc, write: Callable[[dict[str, object]], None]
) -> tuple[Tally, Tally]:
    async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
        alice = grpc_caller(ch, (("x-client-id", "alice"),))
        bob = grpc_caller(ch, (("x-client-id", "bob"),))
        load = asyncio.gather(open_loop(250, 12.0, alice), open_loop(250, 12.0, bob))
        await asyncio.sleep(0.5)
        for is_valid, doc in plan():
            before = policy_state(sidecar)
            write(doc)
            if is_valid:
                version = doc["version"]

                def active(state: dict[str, object], version: object = version) -> bool:
                    return state["version"] == version

                await wait_for(sidecar, active, f"version {version}")
            else:

                def refused(state: dict[str, object], before: dict[str, object] = before) -> bool:
                    return state["history"] != before["history"]

                await wait_for(sidecar, refused, "a refusal")
                state = policy_state(sidecar)
                assert state["version"] == before["version"], "an invalid policy replaced the active one"
                assert state["last_error"], state
            await asyncio.sleep(0.2)
        tallies = await load
    return tallies[0], tallies[1]


def check(sidecar: Proc, alice: Tally, bob: Tally, source: str) -> None:
    assert set(alice.codes) == {"OK"}, f"alice, whom every version allows: {alice.codes}"
    assert set(bob.codes) <= {"OK", "PERMISSION_DENIED"}, f"bob: {bob.codes}"
    assert bob.codes.get("PERMISSION_DENIED", 0) > 0 and bob.codes.get("OK", 0) > 0, bob.codes
    assert policy_state(sidecar)["version"] == "v20"
    metrics = http_get(sidecar.ports["http"], "/metrics")[1].decode()
    invalid = sum(1 for ok, _ in plan() if not ok)
    line = f'ai_sidecar_policy_reloads_total{{result="invalid",source="{source}"}} {float(invalid)}'
    assert line in metrics, [m for m in metrics.splitlines() if "reloads" in m]


async def test_reload_under_load_from_a_configmap_style_file(tmp_path: pathlib.Path):
    volume = tmp_path / "volume"
    volume.mkdir()
    generation = [0]

    def write(doc: dict[str, object]) -> None:
        # What the kubelet does: a new timestamped directory, then ..data swapped to it by rename.
        generation[0] += 1
        new = volume / f"..2025_{generation[0]:04d}"
        new.mkdir()
        (new / "policy.yaml").write_text(yaml.safe_dump(doc))
        tmp_link = volume / "..data_tmp"
        tmp_link.symlink_to(new.name)
        os.replace(tmp_link, volume / "..data")

    write(valid(0))
    (volume / "policy.yaml").symlink_to("..data/policy.yaml")
    with (
        running(start_governed_model()) as model,
        running(
            start_sidecar(
                model.ports["grpc"],
                "--policy-file",
                str(volume / "policy.yaml"),
                "--policy-poll-interval",
                "1s",
            )
        ) as sidecar,
    ):
        alice, bob = await rewrite_under_load(sidecar, write)
        check(sidecar, alice, bob, "file")
        assert policy_state(sidecar)["file_watched"] is True


async def test_reload_under_load_from_a_spring_cloud_config_server(tmp_path: pathlib.Path):
    repo = tmp_path / "config-repo"
    repo.mkdir()

    def write(doc: dict[str, object]) -> None:
        text = yaml.safe_dump({"ai-sidecar": {"policy": doc}})
        (repo / "digits.yml.tmp").write_text(text)
        os.replace(repo / "digits.yml.tmp", repo / "digits.yml")

    write(valid(0))
    # Fleet-wide settings in application.yml: the app's own file wins key by key.
    (repo / "application.yml").write_text(yaml.safe_dump({"ai-sidecar": {"policy": {"version": "fleet"}}}))
    with (
        running_config_server(repo) as config_server,
        running(start_governed_model()) as model,
        running(
            start_sidecar(
                model.ports["grpc"],
                "--policy-config-server",
                config_server.url,
                "--policy-poll-interval",
                "200ms",
            )
        ) as sidecar,
    ):
        assert policy_state(sidecar)["version"] == "v0"
        alice, bob = await rewrite_under_load(sidecar, write)
        check(sidecar, alice, bob, "config_server")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("rate_limits: {default: {rate: 0}}\n", "rate_limits.default.rate: 0 must be more than 0"),
        (
            "grpc_port: 9\n",
            "grpc_port: a static setting of the sidecar, not a policy; it changes only with a restart",
        ),
        ("rbac: [\n", "not valid YAML"),
    ],
)
def test_an_invalid_policy_file_stops_the_start_naming_why(tmp_path: pathlib.Path, doc: str, message: str):
    import subprocess
    import sys

    policy = tmp_path / "policy.yaml"
    policy.write_text(doc)
    run = subprocess.run(
        [sys.executable, "-m", "sidecar", "run", "--app-name", "x", "--model-address", "127.0.0.1:1",
         "--policy-file", str(policy)],
        capture_output=True, text=True, timeout=60, cwd=pathlib.Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert message in run.stderr, run.stderr
