#!/usr/bin/env bash
# MLServer, the peer bench/rest.py measures, in its own virtualenv (bench/.venv-mlserver): it pins
# its own dependencies, which must not disturb the system site-packages the sidecar runs on.
# Idempotent: skipped when the venv already has this version.
set -euo pipefail
cd "$(dirname "$0")"
VERSION=1.7.1
venv=.venv-mlserver
if [[ -x $venv/bin/mlserver ]] && "$venv/bin/python" -c "import mlserver, sys; sys.exit(mlserver.__version__ != '$VERSION')" 2>/dev/null; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mlserver==$VERSION" "numpy>=1.26,<3"
echo "bench setup: $("$venv/bin/mlserver" --version 2>/dev/null || echo mlserver $VERSION) in bench/$venv"
