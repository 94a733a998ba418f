#!/usr/bin/env bash
# Build the gRPC interop binaries the interop tests (tests/interop) run, from the Go module proxy:
#   tests/interop/go/build/interop-client  grpc-go's own google.golang.org/grpc/interop/client main
#   tests/interop/go/build/interop-server  tests/interop/go/main.go: grpc-go's interop TestService
#                                           plus grpc.health.v1, which the sidecar's probe needs
#   tests/interop/go/build/authority-client tests/interop/go/authority: calls through egress by
#                                           authority alone (tests/integration/test_egress_authority.py)
# Versions are pinned by tests/interop/go/go.mod and go.sum (google.golang.org/grpc v1.85.0; the
# client is a `tool` of that module). Skipped while both binaries are newer than go.mod, go.sum and
# the Go sources; INTEROP_FORCE_BUILD=1 rebuilds. A cold build (modules and compile) takes about two
# minutes on two cores; build/ is git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
module=tests/interop/go
build=$module/build
client=$build/interop-client
server=$build/interop-server
authority=$build/authority-client

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

sources=("$module/go.mod" "$module/go.sum" "$module"/*.go "$module"/authority/*.go)
if [[ -x $client && -x $server && -x $authority && -z ${INTEROP_FORCE_BUILD:-} ]] \
    && [[ -z $(find "${sources[@]}" -newer "$client" -print -quit) ]] \
    && [[ -z $(find "${sources[@]}" -newer "$server" -print -quit) ]] \
    && [[ -z $(find "${sources[@]}" -newer "$authority" -print -quit) ]]; then
    echo "setup-interop: $client, $server and $authority are up to date"
    exit 0
fi
go=$(command -v go || echo /usr/local/go/bin/go)
[[ -x $go ]] || { echo "setup-interop: go not found (needs Go >= 1.26)" >&2; exit 1; }

start=$(date +%s%N)
mkdir -p "$build"
# -trimpath: the binaries do not depend on where the module cache or the checkout is.
(cd "$module" && "$go" build -trimpath -o build/interop-server . \
    && "$go" build -trimpath -o build/interop-client google.golang.org/grpc/interop/client \
    && "$go" build -trimpath -o build/authority-client ./authority)
# go build leaves an up-to-date binary alone; touch them so the check above holds.
touch "$client" "$server" "$authority"
echo "setup-interop: built $client, $server and $authority ($("$go" version | cut -d' ' -f3)," \
    "$(cd "$module" && "$go" list -m -f '{{.Path}} {{.Version}}' google.golang.org/grpc)) in $(elapsed "$start")"
