#!/usr/bin/env bash
# Build the test Eureka server with Maven: docker/eureka-server/target/eureka-server.jar, then a
# class-data-sharing (AppCDS) copy of it that starts about twice as fast (target/cds/). Each step is
# skipped while its output is newer than its inputs; EUREKA_FORCE_BUILD=1 redoes both.
# Extra arguments go to mvn (e.g. -o for offline).
set -euo pipefail
cd "$(dirname "$0")/.."
project=docker/eureka-server
jar=$project/target/eureka-server.jar
cds=$project/target/cds

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

if [[ -f $jar && -z ${EUREKA_FORCE_BUILD:-} ]] \
    && [[ -z $(find "$project/pom.xml" "$project/src" -newer "$jar" -print -quit) ]]; then
    echo "build-eureka: $jar is up to date"
else
    command -v mvn >/dev/null || { echo "build-eureka: mvn not found (needs Maven 3.6+, JDK 17+)" >&2; exit 1; }
    start=$(date +%s%N)
    # Maven 3.8's -q still prints bare colour resets (ESC[0m); drop them, keep any error text.
    mvn -q -B -Dstyle.color=never -f "$project/pom.xml" package -DskipTests "$@" 2>&1 | sed 's/\x1b\[0m//g'
    # The jar plugin may leave an unchanged jar with its old mtime; touch it so the check above holds.
    touch "$jar"
    echo "build-eureka: built $jar in $(elapsed "$start")"
fi

# AppCDS as Spring Boot documents it: extract the jar, run the application once up to the end of the
# context refresh, and let the JVM archive the classes it loaded. The archive only fits this JDK build
# and this absolute jar path (JDK 17 compares class paths as written); otherwise the JVM ignores it with
# a warning and starts at normal speed.
if [[ -f $cds/eureka-server.jsa && $cds/eureka-server.jsa -nt $jar && -z ${EUREKA_FORCE_BUILD:-} ]]; then
    echo "build-eureka: $cds/eureka-server.jsa is up to date"
else
    start=$(date +%s%N)
    rm -rf "$cds"
    java -Djarmode=tools -jar "$jar" extract --destination "$cds" >/dev/null
    # The training run is itself a start-up, so it takes the fast-start flags of tests/support/eureka.py.
    java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -XX:ArchiveClassesAtExit="$cds/eureka-server.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off \
        -Dspring.context.exit=onRefresh -jar "$PWD/$cds/eureka-server.jar" --server.port=0 \
        >"$cds/training.log" 2>&1 \
        || { echo "build-eureka: CDS training run failed, see $cds/training.log" >&2; exit 1; }
    echo "build-eureka: built $cds/eureka-server.jsa in $(elapsed "$start")"
fi
