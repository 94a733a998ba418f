"""Which build of the wire machinery runs (sidecar/h2/build.py), in a copy of the package, built or not."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

from sidecar.core import env
from sidecar.h2 import build
from tests.support import REPO, twins

CODE = "from sidecar.h2 import build; c = build.choice(); print(build.describe()); print(c.loud, *c.stale)"


def _copy(tmp_path: pathlib.Path, *, compiled: bool) -> pathlib.Path:
    """The sidecar package copied under tmp_path, with or without the compiled twins built in the tree."""
    if compiled:
        for name in build.TWINS:
            twins.load(name, "compiled")  # skips, or fails in CI, where the tree was never built
    skip = ("__pycache__",) if compiled else ("__pycache__", "*.so")
    shutil.copytree(REPO / "sidecar", tmp_path / "sidecar", ignore=shutil.ignore_patterns(*skip))
    return tmp_path


def _choose(root: pathlib.Path, **environ: str) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(env.PREFIX)}
    done = subprocess.run(
        [sys.executable, "-c", CODE],
        env={**clean, **environ},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    described, loud = done.stdout.splitlines()
    return described, loud


def test_a_tree_never_built_runs_the_pure_modules_quietly(tmp_path):
    described, loud = _choose(_copy(tmp_path, compiled=False))
    assert described == "pure Python (no compiled build is installed: sidecar.h2._messages is not built)"
    assert loud == "False"


def test_a_fresh_build_runs_compiled_unless_the_switch_is_set(tmp_path):
    root = _copy(tmp_path, compiled=True)
    assert _choose(root) == ("compiled (" + ", ".join(f"sidecar.h2._{n}" for n in build.TWINS) + ")", "False")
    assert _choose(root, **{env.NO_EXTENSIONS: "1"}) == (
        "pure Python (SIDECAR_NO_EXTENSIONS is set)",
        "False",
    )
    assert _choose(root, **{env.NO_EXTENSIONS: ""})[0].startswith("compiled (")


@pytest.mark.parametrize("edited", ["messages.py", "_messages.pyx", "_messages.pxd"])
def test_a_build_older_than_an_edited_source_is_not_run_and_the_log_is_told(tmp_path, edited):
    root = _copy(tmp_path, compiled=True)
    source = root / "sidecar" / "h2" / edited
    source.write_text(source.read_text() + "\n# edited after the build\n")
    described, loud = _choose(root)
    assert described.startswith(f"pure Python (the compiled build is older than {source};")
    assert "rebuild it (reinstall ai-sidecar)" in described  # this copy has no setup.py beside it
    assert loud == f"True {source}"


def test_a_source_left_out_is_not_checked_as_an_image_drops_them(tmp_path):
    root = _copy(tmp_path, compiled=True)
    for suffix in (".pyx", ".pxd"):
        for source in (root / "sidecar" / "h2").glob(f"_*{suffix}"):
            source.unlink()
    assert _choose(root)[0].startswith("compiled (")


def test_a_build_that_does_not_import_is_not_run_and_the_log_is_told(tmp_path):
    root = _copy(tmp_path, compiled=False)
    (root / "sidecar" / "h2" / f"_messages{sysconfig.get_config_var('EXT_SUFFIX')}").write_bytes(
        b"not an ELF file"
    )
    described, loud = _choose(root)
    assert described.startswith("pure Python (sidecar.h2._messages does not import: ImportError:")
    assert loud == "True"


def test_only_a_module_with_a_twin_can_be_asked_for():
    with pytest.raises(ValueError, match=r"sidecar\.h2\.frames has no compiled twin"):
        build.twin("frames")


START = """
import asyncio, logging
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from sidecar.health.readiness import Readiness
from sidecar.ingress.relay.listener import RelayDataplane

async def main():
    relay = RelayDataplane(host="127.0.0.1", port=0, model_address="127.0.0.1:9", filters=[],
                           readiness=Readiness(1, 1))
    await relay.start()
    await relay.stop(0)

asyncio.run(main())
"""


def _start_line(root: pathlib.Path) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(env.PREFIX)}
    done = subprocess.run(
        [sys.executable, "-c", START], env=clean, cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "wire machinery" in x]
    return line


def test_the_relay_start_up_line_names_the_build_and_warns_when_a_build_is_stale(tmp_path):
    root = _copy(tmp_path, compiled=True)
    assert _start_line(root).startswith("INFO sidecar.ingress.relay.listener: relay: listening on ")
    assert "wire machinery: compiled (sidecar.h2._messages" in _start_line(root)
    source = root / "sidecar" / "h2" / "messages.py"
    source.write_text(source.read_text() + "\n# edited after the build\n")
    line = _start_line(root)
    assert line.startswith("WARNING sidecar.ingress.relay.listener: relay: listening on ")
    assert f"wire machinery: pure Python (the compiled build is older than {source};" in line
