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
if ! command -v go >/dev/null 2>&1; then
    echo "setup.sh: go is not on PATH; the load generator needs Go >= 1.26" >&2
    exit 1
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
case "$("$nginx_bin" -V 2>&1)" in
    *--without-http_grpc_module*)
        echo "setup.sh: this nginx was built without the grpc module" >&2
        exit 1
        ;;
esac
echo "bench setup: $("$nginx_bin" -v 2>&1), $(go version)"
