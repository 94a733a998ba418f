"""The compiled twins' fuzz target (fuzz_twins.py), run briefly on the in-tree build: it starts, finds
inputs, and would report a difference. The long, sanitized runs are run.sh's, by hand."""

from __future__ import annotations

import os
import subprocess
import sys

from sidecar.h2 import build
from tests.support import REPO, twins

TARGET = REPO / "tests" / "fuzz_native" / "fuzz_twins.py"


def _fuzz(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    for name in build.TWINS:
        twins.load(name, "compiled")  # skips, or fails in CI, where the tree was never built
    env = {k: v for k, v in os.environ.items() if k != "FUZZ_TWINS_BUILD"} | environ
    return subprocess.run(
        [sys.executable, str(TARGET), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_target_runs_clean_and_covers_both_twins(tmp_path):
    done = _fuzz("-runs=20000", "-seed=16", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done 20000 runs" in done.stderr
    assert len(list(tmp_path.iterdir())) > 20  # inputs kept for new coverage: it is guided
