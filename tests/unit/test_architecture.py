"""Keeps the dependency directions of STYLE.md honest by walking imports with ast."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2] / "sidecar"

# Pure mechanisms and vocabulary: no I/O libraries, no adapters.
PURE = ["core", "filters/chain.py", "health/readiness.py", "oip", "breaker", "balancer", "outlier", "retry",
        "lifecycle", "filters/arrivals.py", "discovery/loss_guard.py",
        "discovery/endpoint.py", "discovery/eureka_registry.py", "registry/instance.py",
        "telemetry/names.py", "telemetry/b3.py"]
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
    for path in modules("ingress/relay"):
        for name in imports(path):
            top = name.split(".")[0]
            assert top not in ("grpc", "grpc_health"), f"{path.relative_to(ROOT)} imports {name}"
