#!/usr/bin/env bash
# The whole test suite: install the project, its test tools and what the polyglot tests need (Debian
# packages, the Eureka and Config servers and the Java example, a running Docker engine and its base
# image, each skipped when already there), then lint, type-check and run every test. Extra arguments
# go to pytest (e.g. scripts/test.sh -k rest -x).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install --quiet -e ".[test]"
for setup in scripts/setup-*.sh; do bash "$setup"; done
bash scripts/build-eureka.sh
bash scripts/build-config-server.sh
bash scripts/build-java-example.sh
bash scripts/build-spring-client.sh
bash scripts/build-spring-grpc-client.sh
bash scripts/build-gateway.sh
bash scripts/build-cpp-example.sh
python3 -m ruff check .
python3 -m mypy
python3 -m pytest "$@"
