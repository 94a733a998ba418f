#!/usr/bin/env bash
# The compiled twins' fuzz target (fuzz_twins.py) on a build of them with AddressSanitizer and
# libFuzzer's coverage, for SECONDS (default 600), on one twin (messages, grpc_headers) or both. Not part of
# the suite (its smoke test, test_fuzz_twins.py, runs the in-tree build for a few seconds): run it
# by hand after changing a twin, and report the time it ran. Findings land in build/fuzz-twins/.
#
#   bash tests/fuzz_native/run.sh 600 messages
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
export FUZZ_TWIN=${2:-}
out=build/fuzz-twins
corpus=$out/corpus-${FUZZ_TWIN:-both}
mkdir -p "$corpus"
python3 -c 'import atheris' 2>/dev/null || python3 -m pip install --quiet "atheris>=2.3"
# The twins again, built by clang with libFuzzer's coverage (so the fuzzer is guided by the C's
# edges too, not only the pure modules') and AddressSanitizer, beside the in-tree build (never in
# place of it); atheris's own ASan+libFuzzer runtime is preloaded into the unsanitized Python, as
# atheris's documentation does it for native extensions. Python's allocator is bypassed so that
# every bytes object is a malloc block with red zones around it; leaks are CPython's at exit.
command -v clang >/dev/null || { echo "fuzz-twins: needs clang (apt-get install clang)" >&2; exit 2; }
CC=clang LDSHARED="clang -shared" CFLAGS="-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer -g -O1" \
LDFLAGS="-fsanitize=address,fuzzer-no-link" \
    python3 setup.py --quiet build_ext --force --build-lib "$out/lib" --build-temp "$out/tmp"
export LD_PRELOAD="$(python3 -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 PYTHONMALLOC=malloc
export FUZZ_TWINS_BUILD="$out/lib"
start=$(date +%s)
python3 tests/fuzz_native/fuzz_twins.py -max_total_time="$seconds" -artifact_prefix="$out/" \
    -print_final_stats=1 "$corpus"
echo "fuzz-twins: ${FUZZ_TWIN:-both twins} ran $(( $(date +%s) - start )) s without a finding"
