#!/usr/bin/env bash
# Build the Spring Cloud Gateway of the routing tests with Maven: tests/spring/gateway/target/gateway.jar.
# Skipped while a hash of its inputs (pom.xml and src/) equals the one recorded beside the jar;
# GATEWAY_FORCE_BUILD=1 builds anyway. Extra arguments go to mvn (e.g. -o for offline).
# No CDS archive: the tests start this JVM once, and a training run would cost more than it saves.
set -euo pipefail
cd "$(dirname "$0")/.."
project=tests/spring/gateway
jar=$project/target/gateway.jar
stamp=$project/target/.inputs.sha256

inputs_hash() { (cd "$project" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1; }

hash=$(inputs_hash)
if [[ -f $jar && -f $stamp && $(cat "$stamp") == "$hash" && -z ${GATEWAY_FORCE_BUILD:-} ]]; then
    echo "build-gateway: $jar is up to date"
    exit 0
fi
command -v mvn >/dev/null || { echo "build-gateway: mvn not found (needs Maven 3.6+, JDK 17+)" >&2; exit 1; }
start=$(date +%s)
# Maven 3.8's -q still prints bare colour resets (ESC[0m); drop them, keep any error text.
mvn -q -B -Dstyle.color=never -f "$project/pom.xml" package -DskipTests "$@" 2>&1 | sed 's/\x1b\[0m//g'
[[ -f $jar ]] || { echo "build-gateway: mvn did not produce $jar" >&2; exit 1; }
echo "$hash" >"$stamp"
echo "build-gateway: built $jar in $(( $(date +%s) - start )) s"
