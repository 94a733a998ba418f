#!/usr/bin/env bash
# The whole test suite: install the project with its test tools, lint, type-check, run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -k rest -x).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install --quiet -e ".[test]"
# The integration tests run a real Spring Cloud Eureka server; built once, then cached.
bash scripts/build-eureka.sh
python3 -m ruff check .
python3 -m mypy
python3 -m pytest "$@"
