#!/usr/bin/env bash
# Build the compiled twins (sidecar/h2/_*.pyx) in place, as the editable install does, without
# touching the install: after editing a .pyx or its pure twin in a source tree, or in a worktree
# that was never installed. Only what changed is rebuilt. SIDECAR_NO_EXTENSIONS=1 skips it.
# docs/compiled-core.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python3 -c 'import Cython' 2>/dev/null; then
    # The build requirement pyproject.toml names, in its range.
    python3 -m pip install --quiet "$(python3 -c 'import tomllib; print(next(r for r in tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"] if r.lower().startswith("cython")))')"
fi
python3 setup.py --quiet build_ext --inplace
