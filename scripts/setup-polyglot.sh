#!/usr/bin/env bash
# Install what the non-Python SDK stubs and example models need: Debian packages, plus the grpc-java
# code generator from Maven Central (the one tool Debian does not ship at a usable version).
# Idempotent: with everything present it only checks and returns (well under a second); run it as
# root (apt-get). Versions that must agree across languages live in sdk-stubs/versions.env.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../sdk-stubs/versions.env
source sdk-stubs/versions.env

missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed' || missing+=("$1"); }

# C++: protoc and the gRPC C++/PHP plugins, gRPC C++ and protobuf headers, the build, a JSON parser.
need_pkg protobuf-compiler
need_pkg protobuf-compiler-grpc
need_pkg libprotobuf-dev
need_pkg libgrpc++-dev
need_pkg cmake
need_pkg pkg-config
need_pkg g++
need_pkg make
need_pkg nlohmann-json3-dev
# Java stubs: Maven fetches protoc-gen-grpc-java below.
need_pkg maven
# Java example model (examples/java): javac (Maven itself depends only on a JRE).
need_pkg openjdk-17-jdk-headless
# PHP example model (examples/php): the CLI and its built-in server (php -S).
need_pkg php-cli
# The HTTP egress and Spring Cloud Gateway tests drive curl (-x as an HTTP proxy client, h2c prior knowledge).
need_pkg curl

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

if (( ${#missing[@]} )); then
    start=$(date +%s%N)
    export DEBIAN_FRONTEND=noninteractive
    # An empty or stale package list finds nothing; refresh it once, only when installing.
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    echo "setup-polyglot: installed ${missing[*]} in $(elapsed "$start")"
fi

# protoc-gen-grpc-java lands in the local Maven repository, where sdk-stubs/generate.py looks for it
# (MAVEN_REPO_LOCAL moves both, for a settings.xml with another localRepository).
m2=${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}
plugin=$m2/io/grpc/protoc-gen-grpc-java/$GRPC_JAVA_VERSION/protoc-gen-grpc-java-$GRPC_JAVA_VERSION-linux-x86_64.exe
if [[ ! -f $plugin ]]; then
    start=$(date +%s%N)
    mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$m2" dependency:get \
        -Dartifact="io.grpc:protoc-gen-grpc-java:$GRPC_JAVA_VERSION:exe:linux-x86_64" -Dtransitive=false \
        2>&1 | sed 's/\x1b\[0m//g'  # Maven 3.8's -q still prints bare colour resets
    echo "setup-polyglot: fetched protoc-gen-grpc-java $GRPC_JAVA_VERSION in $(elapsed "$start")"
fi
