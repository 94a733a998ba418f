"""A sidecar imports only what its config uses: OpenTelemetry only with tracing on, prometheus_client only
with metrics on, PyYAML only with a file to read, tenacity only with Eureka, the grpcio data plane's
servicers only when it runs. Each case builds the app in a fresh interpreter, as `ai-sidecar run` does
(the CLI's parser, the config, the composition root), and reads sys.modules.
"""

import json
import pathlib
import subprocess
import sys

from tests.support import REPO

# What `ai-sidecar run` does before it serves: the CLI's parser, the config, Sidecar(config).
BUILD = """
import asyncio, json, os, sys
from sidecar.cli import build_parser
from sidecar.config import from_arguments

args = build_parser().parse_args(["run", *sys.argv[1:]])
config = from_arguments(args, {})
import sidecar.app

async def build():
    sidecar.app.Sidecar(config)

asyncio.run(build())
print(json.dumps(sorted(sys.modules)))
"""

REQUIRED = ["--app-name", "digits", "--model-address", "127.0.0.1:1", "--listen-host", "127.0.0.1"]
PORTS = [f"--{name}-port" for name in ("grpc", "http", "admin", "egress-grpc", "egress-http")]

# A module of each part that is off by default: if it is in sys.modules, that part was imported.
TRACING = ("opentelemetry", "sidecar.telemetry.tracing", "sidecar.filters.tracing")
METRICS = ("prometheus_client", "sidecar.telemetry.prometheus", "sidecar.filters.metrics")
YAML = ("yaml",)
EUREKA_RETRIES = ("tenacity",)
GRPCIO_PLANE = ("sidecar.ingress.grpc_listener", "grpc_health.v1.health")


def imported(*flags: str) -> set[str]:
    ports = [arg for flag in PORTS for arg in (flag, "0")]
    out = subprocess.run(
        [sys.executable, "-c", BUILD, *REQUIRED, *ports, *flags],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_the_default_sidecar_imports_neither_opentelemetry_nor_yaml_nor_tenacity_nor_the_grpcio_plane():
    modules = imported()
    assert "sidecar.ingress.relay.listener" in modules  # the relay is the default plane
    assert loaded(modules, METRICS) == list(METRICS)  # metrics are on by default
    assert loaded(modules, TRACING + YAML + EUREKA_RETRIES + GRPCIO_PLANE) == []


def test_each_part_is_imported_when_the_config_turns_it_on(tmp_path: pathlib.Path):
    config = tmp_path / "sidecar.yaml"
    config.write_text("metrics: off\n")
    modules = imported(
        "--config", str(config), "--tracing", "on", "--dataplane", "grpcio",
        "--eureka-url", "http://127.0.0.1:1/eureka",
    )  # fmt: skip
    assert loaded(modules, TRACING + YAML + GRPCIO_PLANE) == list(TRACING + YAML + GRPCIO_PLANE)
    assert loaded(modules, METRICS) == []
    # tenacity comes with the registrar's first attempt, not with its construction.
    assert "sidecar.registry.registrar" in modules


def test_the_access_log_with_metrics_off_needs_neither_opentelemetry_nor_prometheus_client():
    # Without tracing the access log names the caller's trace ids, read without OpenTelemetry.
    modules = imported("--access-log", "on", "--metrics", "off")
    assert "sidecar.filters.access_log" in modules
    assert loaded(modules, TRACING + METRICS) == []


GOVERNANCE = (
    "joserfc", "sidecar.governance.assembly", "sidecar.filters.auth", "sidecar.ratelimit.redis_client",
)  # fmt: skip


def test_governance_is_imported_only_with_a_policy(tmp_path: pathlib.Path):
    assert loaded(imported(), GOVERNANCE) == []
    policy = tmp_path / "policy.yaml"
    policy.write_text("rate_limits: {default: {rate: 10}}\n")
    assert loaded(imported("--policy-file", str(policy)), GOVERNANCE) == list(GOVERNANCE)
