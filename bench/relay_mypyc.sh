#!/usr/bin/env bash
# The relay data plane compiled with mypyc, against the relay as it ships (interpreted).
#
# Copies the repository's files to a temporary directory, compiles the relay's modules there with
# mypyc (from the mypy the tests already install), then runs bench/ingress.py on the relay and the
# tcp floor twice: in this tree, and in the copy (which starts the sidecar from the copy, so with
# the compiled modules). Extra arguments go to ingress.py. Results and why the relay does not ship compiled: docs/benchmarks.md.
#
#     bench/relay_mypyc.sh                  # 500 and 1000 calls/s, 3 repeats each
#     bench/relay_mypyc.sh --repeat 5
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git -C "$repo" ls-files -z | (cd "$repo" && tar --null -T - -cf -) | tar -xf - -C "$work"
relay=sidecar/ingress/relay h2=sidecar/h2
(cd "$work" && mypyc $h2/frames.py $h2/limits.py $h2/reader.py $h2/messages.py $h2/hpack_decoder.py \
    $h2/hpack_encoder.py $h2/grpc_headers.py $h2/outbox.py $h2/streams.py \
    $relay/calls.py $relay/connection.py $relay/sockets.py $relay/health.py >/dev/null)
compiled="$work:$work/sdk-stubs/python"
# The sidecar (python -m sidecar, run in the copy) must import the compiled modules.
(cd "$work" && PYTHONPATH=$compiled python -c 'import sidecar.ingress.relay.connection as c; assert c.__file__.endswith(".so")')

args=(--targets relay,tcp --saturate-workers 0 --out-dir "$repo/bench/results" "$@")
echo "## relay as it ships (interpreted)"
python "$repo/bench/ingress.py" "${args[@]}"
echo
echo "## relay compiled with mypyc"
PYTHONPATH=$compiled python "$work/bench/ingress.py" "${args[@]}"
