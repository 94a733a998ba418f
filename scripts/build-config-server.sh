#!/usr/bin/env bash
# Build the test Spring Cloud Config Server with Maven: docker/config-server/target/config-server.jar.
# Skipped while the sha256 of its inputs (pom.xml and src/) matches the one recorded beside the jar
# at the last build (target/inputs.sha256); CONFIG_SERVER_FORCE_BUILD=1 rebuilds. Extra arguments go
# to mvn (e.g. -o for offline).
set -euo pipefail
cd "$(dirname "$0")/.."
project=docker/config-server
jar=$project/target/config-server.jar
stamp=$project/target/inputs.sha256

inputs_hash() {
    (cd "$project" && find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

hash=$(inputs_hash)
if [[ -f $jar && -f $stamp && $(cat "$stamp") == "$hash" && -z ${CONFIG_SERVER_FORCE_BUILD:-} ]]; then
    echo "build-config-server: $jar is up to date"
    exit 0
fi
command -v mvn >/dev/null || { echo "build-config-server: mvn not found (needs Maven 3.6+, JDK 17+)" >&2; exit 1; }
start=$(date +%s%N)
# Maven 3.8's -q still prints bare colour resets (ESC[0m); drop them, keep any error text.
mvn -q -B -Dstyle.color=never -f "$project/pom.xml" package -DskipTests "$@" 2>&1 | sed 's/\x1b\[0m//g'
[[ -f $jar ]] || { echo "build-config-server: mvn left no $jar" >&2; exit 1; }
echo "$hash" >"$stamp"
echo "build-config-server: built $jar in $(elapsed "$start")"
