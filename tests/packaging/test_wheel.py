"""The wheel as a user gets it: built from the tree, installed into a fresh venv, run in front of a model.

Editable installs find every module in the tree, so only a real wheel shows a package left out
(as the hand-kept package list once dropped sidecar.ingress.relay and six others). The wheel is
built from a copy of the files git tracks or would track, as a clean checkout has them (no stale
build/ folder), with pip's cache, so a warm run takes about 20 s, most of it installing the
dependencies into the venv.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support import REPO
from tests.support.digits import images, raw_request
from tests.support.procs import HOST, Proc, running, start_model, start_sidecar

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

VERSION = re.search(r'^__version__ = "(.+)"$', (REPO / "sidecar" / "__init__.py").read_text(), re.M)
assert VERSION is not None
VERSION_TEXT = VERSION.group(1)
DIST_INFO = f"ai_sidecar-{VERSION_TEXT}.dist-info"


def _tree_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tree_files() -> list[str]:
    return _tree_files()


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory, tree_files: list[str]) -> pathlib.Path:
    src = tmp_path_factory.mktemp("src")
    for name in tree_files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, src: pathlib.Path) -> pathlib.Path:
    out = tmp_path_factory.mktemp("dist")
    start = time.monotonic()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)])
    print(f"wheel built in {time.monotonic() - start:.1f} s")
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: pathlib.Path) -> pathlib.Path:
    """A fresh venv (no system site-packages, so not the machine's editable install) with the wheel."""
    venv = tmp_path_factory.mktemp("venv")
    start = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)])
    print(f"venv with the wheel and its dependencies in {time.monotonic() - start:.1f} s")
    return venv


def test_wheel_holds_exactly_the_two_packages(wheel: pathlib.Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/", 1)[0] for n in names} == {"sidecar", "inference", DIST_INFO}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".orig", ".rej", "~"))]


def test_wheel_holds_every_module_of_the_tree(wheel: pathlib.Path, tree_files: list[str]) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    stubs = "sdk-stubs/python/"
    expected = {f for f in tree_files if f.startswith("sidecar/") and f.endswith(".py")}
    expected |= {f.removeprefix(stubs) for f in tree_files if f.startswith(stubs + "inference/")}
    # Packages are found, not listed: a package added to the tree is in the wheel without an edit.
    assert sorted(expected - names) == []
    assert {"sidecar/py.typed", "inference/py.typed", "inference/grpc_service_pb2.pyi"} <= names
    packages = {f.rsplit("/", 1)[0] for f in expected if f.endswith("/__init__.py")}
    assert "sidecar/ingress/relay" in packages


def test_wheel_holds_the_compiled_twins_and_their_sources(wheel: pathlib.Path, tree_files: list[str]) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    pyx = [f for f in tree_files if f.startswith("sidecar/") and f.endswith(".pyx")]
    assert pyx, "the tree has no compiled twin"
    for source in pyx:
        stem = source.removesuffix(".pyx")
        assert source in names
        assert [n for n in names if n.startswith(stem + ".cpython-") and n.endswith(".so")], source
    assert not [n for n in names if n.endswith(".c")]


def _describe(python: pathlib.Path) -> str:
    code = "from sidecar.h2 import build; print(build.describe())"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    return _run([str(python), "-c", code], cwd=python.parent, env=clean).stdout.strip()


def test_installed_sidecar_runs_the_compiled_build(venv: pathlib.Path) -> None:
    assert _describe(venv / "bin" / "python").startswith("compiled (sidecar.h2._")


def test_without_a_c_compiler_the_wheel_builds_and_runs_the_pure_modules(
    tmp_path: pathlib.Path, src: pathlib.Path
) -> None:
    # The same tree (without the wheel fixture's build/), built with a compiler that always fails.
    fresh, out = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(src, fresh, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    env = {**os.environ, "CC": "false", "LDSHARED": "false"}
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(fresh)]
    result = _run(argv, env=env)
    assert "did not compile" in result.stdout + result.stderr
    (built,) = out.glob("*.whl")
    assert not [n for n in zipfile.ZipFile(built).namelist() if n.endswith(".so")]
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    # build.py needs nothing beyond the standard library, so the wheel alone is enough to ask it.
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", str(built)])
    described = _describe(venv / "bin" / "python")
    assert described == "pure Python (no compiled build is installed: sidecar.h2._messages is not built)"


def test_the_editable_install_builds_the_twins_in_place(tmp_path: pathlib.Path, src: pathlib.Path) -> None:
    # As scripts/test.sh installs the tree (pip install -e), in a venv of its own: the shared
    # editable install is never touched.
    tree, venv = tmp_path / "tree", tmp_path / "venv"
    shutil.copytree(src, tree, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "-e", str(tree)])
    # The one dependency the twins' imports reach (grpc_headers -> hpack_decoder -> hpack).
    _run([str(venv / "bin" / "pip"), "install", "--quiet", "hpack>=4.1,<5"])
    built = sorted(p.name.split(".")[0] for p in (tree / "sidecar" / "h2").glob("_*.so"))
    assert built == sorted(p.stem for p in (tree / "sidecar" / "h2").glob("_*.pyx"))
    assert _describe(venv / "bin" / "python").startswith("compiled (sidecar.h2._")


def test_wheel_metadata_has_the_one_version(wheel: pathlib.Path) -> None:
    metadata = zipfile.ZipFile(wheel).read(f"{DIST_INFO}/METADATA").decode()
    assert f"\nVersion: {VERSION_TEXT}\n" in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"{DIST_INFO}/entry_points.txt").decode()
    assert "ai-sidecar = sidecar.cli:main" in entry_points


def test_installed_sidecar_is_the_wheel_and_reports_its_version(venv: pathlib.Path) -> None:
    python = str(venv / "bin" / "python")
    code = "import sidecar, inference; print(sidecar.__file__, inference.__file__)"
    where = _run([python, "-c", code], cwd=venv).stdout.split()
    assert all(pathlib.Path(p).is_relative_to(venv) for p in where), where
    version = _run([str(venv / "bin" / "ai-sidecar"), "--version"]).stdout.strip()
    assert version == f"ai-sidecar {VERSION_TEXT}"
    installed = _run([python, "-c", "import importlib.metadata as m; print(m.version('ai-sidecar'))"])
    assert installed.stdout.strip() == VERSION_TEXT


@pytest.fixture(scope="module")
def model() -> Iterator[Proc]:
    with running(start_model()) as proc:
        yield proc


@pytest.fixture(scope="module")
def installed_sidecar(venv: pathlib.Path, model: Proc) -> Iterator[Proc]:
    command = [str(venv / "bin" / "ai-sidecar")]
    with running(start_sidecar(model.ports["grpc"], "--model", "digits", command=command)) as sidecar:
        yield sidecar


def _labels(port: int, x: np.ndarray) -> list[int]:
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(raw_request(x), timeout=10)
    labels: list[int] = np.frombuffer(reply.raw_output_contents[0], "<i8").tolist()
    return labels


def test_installed_sidecar_serves_grpc_and_rest(installed_sidecar: Proc, model: Proc) -> None:
    x, y = images()
    direct = _labels(model.ports["grpc"], x[:8])
    assert _labels(installed_sidecar.ports["grpc"], x[:8]) == direct
    assert sum(a == b for a, b in zip(direct, y[:8].tolist(), strict=True)) >= 7  # the model is that good

    body = {"inputs": [{"name": "INPUT0", "shape": [2, 64], "datatype": "FP32", "data": x[:2].tolist()}]}
    request = urllib.request.Request(
        f"http://{HOST}:{installed_sidecar.ports['http']}/v2/models/digits/infer",
        data=json.dumps(body).encode(), headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    label = next(o for o in answer["outputs"] if o["name"] == "LABEL")
    assert label["data"] == direct[:2]
