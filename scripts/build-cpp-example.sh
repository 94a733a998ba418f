#!/usr/bin/env bash
# Configure and build the C++ digits server (examples/cpp) with CMake into examples/cpp/build/
# (git-ignored): examples/cpp/build/digits_server. Skipped while that binary is newer than the
# sources, CMakeLists.txt and the proto; CPP_FORCE_BUILD=1 rebuilds. Needs the packages that
# scripts/setup-polyglot.sh installs. The build's output goes to examples/cpp/build/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
project=examples/cpp
build=$project/build
binary=$build/digits_server
proto=proto/inference/grpc_service.proto

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

if [[ -x $binary && -z ${CPP_FORCE_BUILD:-} ]] \
    && [[ -z $(find "$project/CMakeLists.txt" "$project/src" "$proto" -newer "$binary" -print -quit) ]]; then
    echo "build-cpp-example: $binary is up to date"
    exit 0
fi
for tool in cmake g++ protoc grpc_cpp_plugin; do
    command -v "$tool" >/dev/null \
        || { echo "build-cpp-example: $tool not found; run scripts/setup-polyglot.sh (as root)" >&2; exit 1; }
done

start=$(date +%s%N)
mkdir -p "$build"
log=$build/build.log
if ! { cmake -S "$project" -B "$build" -DCMAKE_BUILD_TYPE=Release \
        && cmake --build "$build" --parallel "$(nproc)"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "build-cpp-example: build failed, see $log" >&2
    exit 1
fi
# make leaves the binary alone when nothing it depends on changed; touch it so the check above holds.
touch "$binary"
echo "build-cpp-example: built $binary in $(elapsed "$start")"
