#!/usr/bin/env bash
# Build the grpc-java digits model with Maven: examples/java/target/digits-java.jar (a runnable fat jar).
# grpc-java and protobuf-java versions come from sdk-stubs/versions.env. Skipped while the jar is newer
# than the pom, the sources, the proto it is generated from and versions.env; JAVA_EXAMPLE_FORCE_BUILD=1
# rebuilds. Extra arguments go to mvn (e.g. -o for offline).
set -euo pipefail
cd "$(dirname "$0")/.."
project=examples/java
jar=$project/target/digits-java.jar
proto=proto/inference/grpc_service.proto
versions=sdk-stubs/versions.env
# shellcheck source=../sdk-stubs/versions.env
source "$versions"

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

if [[ -f $jar && -z ${JAVA_EXAMPLE_FORCE_BUILD:-} ]] \
    && [[ -z $(find "$project/pom.xml" "$project/src" "$proto" "$versions" -newer "$jar" -print -quit) ]]; then
    echo "build-java-example: $jar is up to date"
    exit 0
fi
command -v mvn >/dev/null || { echo "build-java-example: mvn not found (needs Maven 3.6+, JDK 17+)" >&2; exit 1; }
start=$(date +%s%N)
# Maven 3.8's -q still prints bare colour resets (ESC[0m); drop them, keep any error text.
mvn -q -B -Dstyle.color=never -f "$project/pom.xml" \
    -Dgrpc.version="$GRPC_JAVA_VERSION" -Dprotobuf.version="$PROTOBUF_JAVA_VERSION" package "$@" 2>&1 | sed 's/\x1b\[0m//g'
# The shade plugin may leave an unchanged jar with its old mtime; touch it so the check above holds.
touch "$jar"
echo "build-java-example: built $jar in $(elapsed "$start")"
