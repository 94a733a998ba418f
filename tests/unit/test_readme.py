"""README.md's two tables that follow the code: the repository map and the settings table."""

import re

from sidecar.cli import settings_markdown
from tests.support import REPO

README = REPO / "README.md"
# Folders that are built or cached, not kept: no row.
NOT_KEPT = re.compile(r"\..*|__pycache__|build|dist|target|.*\.egg-info")


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def mapped_paths() -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section("Repository map"), flags=re.MULTILINE)


def test_every_folder_and_every_package_of_the_sidecar_has_a_row():
    rows = set(mapped_paths())
    folders = [f"{p.name}/" for p in REPO.iterdir() if p.is_dir() and not NOT_KEPT.fullmatch(p.name)]
    packages = [
        f"{init.parent.relative_to(REPO).as_posix()}/" for init in (REPO / "sidecar").rglob("__init__.py")
    ]
    missing = sorted(p for p in [*folders, *packages] if p not in rows)
    assert missing == [], f"add a row to README.md's repository map for each of {missing}"


def test_every_row_of_the_sidecar_names_a_package_that_is_there():
    sidecar = [p for p in mapped_paths() if p.startswith("sidecar/")]
    gone = [p for p in sidecar if not (REPO / p / "__init__.py").is_file()]
    assert gone == [], f"README.md's repository map names packages that are gone: {gone}"


def test_the_settings_table_is_the_one_the_settings_make():
    text = README.read_text()
    begin, end = "<!-- settings table: begin -->\n", "\n<!-- settings table: end -->"
    table = text[text.index(begin) + len(begin) : text.index(end)]
    stale = "README.md's settings table is stale: run bash scripts/readme-settings.sh"
    assert table == settings_markdown(), stale
