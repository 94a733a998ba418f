"""Keeps the dependency directions of STYLE.md honest by walking imports with ast."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2] / "sidecar"

# Pure mechanisms and vocabulary: no I/O libraries, no adapters.
PURE = ["core", "filters/chain.py", "health/readiness.py", "health/probe_window.py", "health/loop_lag.py",
        "oip", "breaker", "balancer", "outlier", "retry",
        "drain/quiet_period.py", "filters/arrivals.py", "discovery/loss_guard.py",
        "discovery/endpoint.py", "discovery/eureka_registry.py", "registry/instance.py",
        "telemetry/names.py", "telemetry/b3.py", "drain/settings.py",
        "inject/settings.py", "inject/pod.py", "inject/patch.py", "inject/review.py",
        "ratelimit/bucket.py", "ratelimit/gcra.py", "ratelimit/resp.py", "admission", "rbac",
        "policy/document.py", "policy/reader.py", "auth/keys.py", "auth/verifier.py",
        "capture/policy.py", "capture/events.py", "capture/redact.py", "capture/queue.py",
        "capture/dispatch.py", "batching", "filters/capture.py", "filters/batching.py"]
IO_LIBRARIES = {"grpc", "grpc_health", "aiohttp", "uvloop", "yaml", "socket", "asyncio.subprocess"}


def modules(rel: str) -> list[pathlib.Path]:
    path = ROOT / rel
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def imports(path: pathlib.Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_pure_layers_import_no_io_library_and_no_adapter():
    for rel in PURE:
        for path in modules(rel):
            for name in imports(path):
                top = name.split(".")[0]
                assert top not in IO_LIBRARIES, f"{path.relative_to(ROOT)} imports {name}"
                assert not name.startswith(
                    (
                        "sidecar.ingress",
                        "sidecar.model",
                        "sidecar.app",
                        "sidecar.cli",
                        "sidecar.health.prober",
                    )
                ), f"{path.relative_to(ROOT)} imports {name}"


def test_ingress_and_egress_never_import_each_other():
    for path in modules("ingress"):
        assert not any(n.startswith("sidecar.egress") for n in imports(path)), path
    egress = ROOT / "egress"
    if egress.exists():
        for path in modules("egress"):
            assert not any(n.startswith("sidecar.ingress") for n in imports(path)), path


def test_only_the_cli_installs_uvloop_or_runs_the_loop():
    for path in ROOT.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text())
        assert "uvloop" not in imports(path), path
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "run"
                and isinstance(node.value, ast.Name)
                and node.value.id == "asyncio"
            ):
                raise AssertionError(f"{path.relative_to(ROOT)} calls asyncio.run")


def test_the_relay_data_plane_never_imports_grpc():
    # The relay exists so that grpc's per-call machinery is off the data path.
    for path in modules("ingress/relay") + modules("h2"):
        for name in imports(path):
            top = name.split(".")[0]
            assert top not in ("grpc", "grpc_health"), f"{path.relative_to(ROOT)} imports {name}"


def test_the_wire_machinery_imports_nothing_above_it():
    # sidecar/h2 sits below ingress and egress (both build on it): it knows no filters, no
    # telemetry, no settings and no assembly.
    above = ("ingress", "egress", "filters", "telemetry", "config", "config_values", "app", "cli", "admin")
    for path in modules("h2"):
        for name in imports(path):
            assert not name.startswith(tuple(f"sidecar.{a}" for a in above)), (
                f"{path.relative_to(ROOT)} imports {name}"
            )


# Adapters: what touches the outside world, and what assembles it. Filters use none of them.
ADAPTERS = (
    "sidecar.ingress",
    "sidecar.egress",
    "sidecar.model",
    "sidecar.transport",
    "sidecar.admin",
    "sidecar.h2",
    "sidecar.registry.eureka_http",
    "sidecar.registry.registrar",
    "sidecar.discovery.eureka_discovery",
    "sidecar.discovery.static_file",
    "sidecar.health.prober",
    "sidecar.config",
    "sidecar.config_layers",
    "sidecar.config_relay",
    "sidecar.config_table",
    "sidecar.observability",
    "sidecar.app",
    "sidecar.cli",
)


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


CONFIG = ("sidecar.config", "sidecar.config_layers", "sidecar.config_relay", "sidecar.config_table",
          "sidecar.config_values")  # fmt: skip


def test_telemetry_imports_neither_the_filters_nor_the_config():
    # The filters import telemetry; what builds both from the config sits above them.
    for path in modules("telemetry"):
        for name in imports(path):
            assert not _under(name, ("sidecar.filters", *CONFIG)), f"{path.relative_to(ROOT)} imports {name}"


def test_filters_import_no_adapter():
    for path in modules("filters"):
        for name in imports(path):
            assert not _under(name, ADAPTERS), f"{path.relative_to(ROOT)} imports {name}"
