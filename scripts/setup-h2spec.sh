#!/usr/bin/env bash
# Build h2spec, the HTTP/2 conformance tester that tests/integration/test_h2spec.py runs against the
# model alone and through the relay, from the Go module proxy into the user cache dir (outside the
# repo): ${XDG_CACHE_HOME:-~/.cache}/ai-sidecar/h2spec-<version>/h2spec.
# Its v2 tags predate Go modules (the proxy serves them as +incompatible, without a go.mod), so
# `go install ...@v2.2.1+incompatible` would build with whatever dependency versions are newest that
# day; a throwaway module pins them here instead. Idempotent: does nothing once the binary is there
# (H2SPEC_FORCE_BUILD=1 rebuilds). Needs Go and the module proxy on the first run only.
set -euo pipefail

H2SPEC_VERSION=2.2.1
# The versions its imports resolved to when this was written; h2spec uses x/net's framer and HPACK.
DEPS=(
    "github.com/summerwind/h2spec@v$H2SPEC_VERSION+incompatible"
    golang.org/x/net@v0.62.0
    github.com/spf13/cobra@v1.10.2
    github.com/fatih/color@v1.19.0
)

dir=${XDG_CACHE_HOME:-$HOME/.cache}/ai-sidecar/h2spec-$H2SPEC_VERSION
bin=$dir/h2spec

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

if [[ -x $bin && -z ${H2SPEC_FORCE_BUILD:-} ]]; then
    echo "setup-h2spec: $bin is up to date"
    exit 0
fi
command -v go >/dev/null || { echo "setup-h2spec: go not found (x/net v0.62 needs Go >= 1.26)" >&2; exit 1; }

start=$(date +%s%N)
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# go prints its progress ("go: downloading ...") on stderr: keep it for a failure only.
go mod init ai-sidecar/h2spec-build >go.log 2>&1 && go get "${DEPS[@]}" >>go.log 2>&1 \
    || { cat go.log >&2; echo "setup-h2spec: fetching h2spec from the Go module proxy failed" >&2; exit 1; }
# The version flags are what h2spec's own Makefile sets; without them --version says 2.0.0.
go build -trimpath -buildvcs=false \
    -ldflags "-X main.VERSION=$H2SPEC_VERSION -X main.COMMIT=v$H2SPEC_VERSION+incompatible" \
    -o "$bin.tmp" github.com/summerwind/h2spec/cmd/h2spec
mv "$bin.tmp" "$bin"  # atomic: an interrupted build never leaves a binary that looks complete
echo "setup-h2spec: built $("$bin" --version) into $dir in $(elapsed "$start")"
