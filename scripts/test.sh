#!/usr/bin/env bash
# The whole test suite: install the project, its test tools and what the polyglot tests need (Debian
# packages, the Eureka and Config servers and the Java example, a running Docker engine and its base
# image, each skipped when already there), then lint, type-check and run every test. Extra arguments
# go to pytest (e.g. scripts/test.sh -k rest -x). The editable install compiles the relay's
# compiled twins (setup.py), and the suite runs with them; then the relay's tests run again on the
# pure-Python modules (SIDECAR_NO_EXTENSIONS=1, sidecar/h2/build.py), with the same arguments.
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
# The pure pass: the relay's own tests only (the rest never runs sidecar/h2), and the gRPC interop
# cases (grpc-go's client and server; its direct and grpcio cases run again too, a few seconds).
# Unit tests of a module with a twin ran on both builds above (tests/support/twins.py).
SIDECAR_NO_EXTENSIONS=1 python3 -m pytest "$@" \
    tests/unit/test_h2_*.py tests/unit/test_relay_*.py \
    tests/fuzz/test_relay_fuzz.py \
    tests/integration/test_relay.py tests/integration/test_relay_http2.py tests/integration/test_h2spec.py \
    tests/interop/test_interop.py
