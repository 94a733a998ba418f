#!/usr/bin/env bash
# The demo: install ai-sidecar and the digits example, start the model and a sidecar, send all
# 1,797 digit images through the sidecar over gRPC and REST, print predictions and accuracy, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install --quiet -e ".[examples]"
exec python3 examples/python/demo.py "$@"
