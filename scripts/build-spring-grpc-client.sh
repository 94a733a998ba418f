#!/usr/bin/env bash
# Build the Spring gRPC client (net.devh's grpc-client-spring-boot-starter, Eureka discovery) with Maven:
# tests/spring/grpc-client/target/grpc-client.jar. Skipped while a hash of its inputs (pom.xml, src/,
# the OIP proto it generates its stubs from, sdk-stubs/versions.env) equals the one recorded beside the
# jar; SPRING_GRPC_CLIENT_FORCE_BUILD=1 builds anyway. Extra arguments go to mvn (e.g. -o for offline).
# No CDS archive: the tests start this JVM once, and a training run would cost more than it saves.
set -euo pipefail
cd "$(dirname "$0")/.."
project=tests/spring/grpc-client
jar=$project/target/grpc-client.jar
stamp=$project/target/.inputs.sha256
proto=proto/inference/grpc_service.proto
versions=sdk-stubs/versions.env
# shellcheck source=../sdk-stubs/versions.env
source "$versions"

inputs_hash() {
    { (cd "$project" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum); sha256sum "$proto" "$versions"; } \
        | sha256sum | cut -d' ' -f1
}

hash=$(inputs_hash)
if [[ -f $jar && -f $stamp && $(cat "$stamp") == "$hash" && -z ${SPRING_GRPC_CLIENT_FORCE_BUILD:-} ]]; then
    echo "build-spring-grpc-client: $jar is up to date"
    exit 0
fi
command -v mvn >/dev/null || { echo "build-spring-grpc-client: mvn not found (needs Maven 3.6+, JDK 17+)" >&2; exit 1; }
start=$(date +%s)
# Maven 3.8's -q still prints bare colour resets (ESC[0m); drop them, keep any error text.
mvn -q -B -Dstyle.color=never -f "$project/pom.xml" \
    -Dgrpc.version="$GRPC_JAVA_VERSION" -Dprotobuf.version="$PROTOBUF_JAVA_VERSION" package -DskipTests "$@" 2>&1 \
    | sed 's/\x1b\[0m//g'
[[ -f $jar ]] || { echo "build-spring-grpc-client: mvn did not produce $jar" >&2; exit 1; }
echo "$hash" >"$stamp"
echo "build-spring-grpc-client: built $jar in $(( $(date +%s) - start )) s"
