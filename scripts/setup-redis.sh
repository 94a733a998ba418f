#!/usr/bin/env bash
# Installs redis-server from Debian's packages for the global rate-limit tests (tests/support/redis.py
# runs its own redis-server in the foreground on a free loopback port, with no persistence).
# Idempotent: does nothing when redis-server is already there. Needs root to install.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1 && [[ ! -x /usr/bin/redis-server ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The package's own service is not used; whether it managed to start does not matter here.
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
echo "setup-redis: $(redis-server --version | head -n 1)"
