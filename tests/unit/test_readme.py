"""README.md's settings table follows the settings."""

from sidecar.cli import settings_markdown
from tests.support import REPO

README = REPO / "README.md"


def test_the_settings_table_is_the_one_the_settings_make():
    text = README.read_text()
    begin, end = "<!-- settings table: begin -->\n", "\n<!-- settings table: end -->"
    table = text[text.index(begin) + len(begin) : text.index(end)]
    stale = "README.md's settings table is stale: run bash scripts/readme-settings.sh"
    assert table == settings_markdown(), stale
