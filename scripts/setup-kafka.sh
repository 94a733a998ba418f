#!/usr/bin/env bash
# Apache Kafka for the capture tests: the broker's jars (org.apache.kafka:kafka_2.13 and its runtime
# dependencies) from Maven Central, resolved by Maven's dependency plugin into a folder keyed by the
# version, ${AI_SIDECAR_CACHE:-~/.cache/ai-sidecar}/kafka-$KAFKA_VERSION/libs. Skipped while that folder
# is complete (its .complete stamp names the version). tests/support/kafka.py starts a single KRaft
# broker+controller from it on loopback. Extra arguments go to mvn (e.g. -o for offline).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${KAFKA_VERSION:-4.1.1}
home=${AI_SIDECAR_CACHE:-$HOME/.cache/ai-sidecar}/kafka-$version
libs=$home/libs

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

if [[ -f $home/.complete && $(cat "$home/.complete") == "$version" ]]; then
    echo "setup-kafka: Kafka $version is up to date in $libs"
    exit 0
fi
# Maven and the JDK come from setup-polyglot.sh, which scripts/test.sh runs after this one (by name).
if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then
    bash scripts/setup-polyglot.sh
fi
start=$(date +%s%N)
mkdir -p "$home"
work=$(mktemp -d "$home/.resolve-XXXXXX")
trap 'rm -rf "$work"' EXIT
# A pom with the broker as its one dependency: Maven resolves its runtime closure as Kafka's own
# release packs it into libs/. Kafka logs through slf4j 1.x, bound to log4j2 as its distribution binds it.
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ai-sidecar.test</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
mvn -q -B -Dstyle.color=never -f "$work/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$work/libs" "$@" 2>&1 | sed 's/\x1b\[0m//g'
ls "$work/libs"/kafka_2.13-"$version".jar >/dev/null
rm -rf "$libs"
mv "$work/libs" "$libs"
echo "$version" >"$home/.complete"
echo "setup-kafka: resolved Kafka $version ($(ls "$libs" | wc -l) jars) into $libs in $(elapsed "$start")"
