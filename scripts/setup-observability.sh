#!/usr/bin/env bash
# Installs what the observability tests need beyond the Python package: Prometheus from Debian's
# packages (tests/support/prometheus.py runs it in the foreground with its own config and data dir).
# Idempotent: does nothing when a prometheus binary is already there. Needs root to install.
set -euo pipefail

need_pkg() {  # need_pkg COMMAND PACKAGE: install PACKAGE unless COMMAND is already on PATH or in /usr/bin
    local cmd=$1 pkg=$2
    if command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/bin/$cmd ]]; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: the node exporter and friends are not needed. The package's own
    # service is not used, so whether the package managed to start it does not matter here.
    apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}

need_pkg prometheus prometheus
echo "setup-observability: $(prometheus --version 2>&1 | head -n 1)"
