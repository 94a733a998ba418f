#!/usr/bin/env bash
# Installs what bench/ingress.py needs beyond the Python package: nginx (the reference proxy).
# Go comes with the machine; the load generator's modules come from the Go module proxy on build.
set -euo pipefail

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # Debian's plain "nginx" package has ngx_http_grpc_module and http_v2 (checked below).
    apt-get install -y --no-install-recommends nginx
fi
# The package's own service is not used (ingress.py runs nginx in the foreground with its own
# prefix and config), so whether the package started it does not matter here.
command -v go >/dev/null 2>&1 || { echo "setup.sh: go is not on PATH; the load generator needs Go >= 1.22" >&2; exit 1; }
nginx -V 2>&1 | grep -q -- '--without-http_grpc_module' && {
    echo "setup.sh: this nginx was built without the grpc module" >&2; exit 1; }
echo "bench setup: $(nginx -v 2>&1), $(go version)"
