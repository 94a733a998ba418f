"""A sidecar imports only what its config uses: OpenTelemetry only with tracing on, prometheus_client only
with metrics on. Each case builds the app in a fresh interpreter, as `ai-sidecar run` does (the CLI's
parser, the config, the composition root), and reads sys.modules.
"""

import json
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


def test_the_default_sidecar_does_not_import_opentelemetry():
    modules = imported()
    assert "sidecar.ingress.relay.dataplane" in modules  # the relay is the default plane
    assert loaded(modules, METRICS) == list(METRICS)  # metrics are on by default
    assert loaded(modules, TRACING) == []


def test_each_part_is_imported_when_the_config_turns_it_on():
    modules = imported("--tracing", "on", "--metrics", "off")
    assert loaded(modules, TRACING) == list(TRACING)
    assert loaded(modules, METRICS) == []


def test_the_access_log_with_metrics_off_needs_neither_opentelemetry_nor_prometheus_client():
    # Without tracing the access log names the caller's trace ids, read without OpenTelemetry.
    modules = imported("--access-log", "on", "--metrics", "off")
    assert "sidecar.filters.access_log" in modules
    assert loaded(modules, TRACING + METRICS) == []
