#!/usr/bin/env bash
# Rewrites README.md's settings table from the settings themselves (the fields of SidecarConfig in
# sidecar/config.py and of its base in sidecar/config_relay.py), as `ai-sidecar --print-settings-table`
# prints it. tests/unit/test_readme.py fails while the two differ. Run from anywhere:
# bash scripts/readme-settings.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m sidecar --print-settings-table > README.settings.tmp
python3 - <<'PY'
import pathlib

readme, table = pathlib.Path("README.md"), pathlib.Path("README.settings.tmp")
begin, end = "<!-- settings table: begin -->", "<!-- settings table: end -->"
text = readme.read_text()
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
readme.write_text(f"{head}{begin}\n{table.read_text().rstrip()}\n{end}{tail}")
table.unlink()
PY
echo "readme-settings: README.md's settings table is up to date"
