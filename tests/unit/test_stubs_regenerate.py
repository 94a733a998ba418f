"""The committed SDK stubs are exactly what sdk-stubs/generate.py makes from proto/."""

import filecmp
import pathlib
import subprocess
import sys

from tests.support import REPO


def files(root: pathlib.Path) -> set[pathlib.Path]:
    return {
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }


def test_regenerated_stubs_match_the_committed_ones(tmp_path: pathlib.Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "sdk-stubs" / "generate.py"), "--out", str(tmp_path)],
        check=True,
    )
    committed = REPO / "sdk-stubs" / "python"
    fresh = tmp_path / "python"
    assert files(fresh) == files(committed)
    differing = [
        str(p) for p in files(fresh) if not filecmp.cmp(fresh / p, committed / p, shallow=False)
    ]
    assert differing == [], f"regenerate with: python sdk-stubs/generate.py ({differing})"
