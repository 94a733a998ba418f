"""The committed SDK stubs are exactly what sdk-stubs/generate.py makes from proto/, in every language.

C++, PHP and Java need the generators scripts/setup-polyglot.sh installs; without them this test
fails (it does not skip), saying to run that script.
"""

import filecmp
import pathlib
import subprocess
import sys

import pytest

from tests.support import REPO

LANGUAGES = ("python", "cpp", "php", "java")


def files(root: pathlib.Path) -> set[pathlib.Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("stubs")
    done = subprocess.run(
        [sys.executable, str(REPO / "sdk-stubs" / "generate.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    # generate.py names the missing tool and says to run scripts/setup-polyglot.sh.
    assert done.returncode == 0, f"sdk-stubs/generate.py failed:\n{done.stderr}{done.stdout}"
    return out


@pytest.mark.parametrize("language", LANGUAGES)
def test_regenerated_stubs_match_the_committed_ones(fresh: pathlib.Path, language: str) -> None:
    committed = REPO / "sdk-stubs" / language
    regenerated = fresh / language
    assert files(regenerated) == files(committed), "regenerate with: python sdk-stubs/generate.py"
    differing = [
        str(p)
        for p in sorted(files(regenerated))
        if not filecmp.cmp(regenerated / p, committed / p, shallow=False)
    ]
    assert differing == [], f"regenerate with: python sdk-stubs/generate.py ({differing})"
