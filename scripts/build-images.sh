#!/usr/bin/env bash
# Build every image in docker/ from this tree, with the tags compose.yaml and deploy/ use:
#
#   scripts/build-images.sh               # all of them
#   scripts/build-images.sh sidecar eureka-server   # some, by their folder in docker/
#
# Tags are ${AI_SIDECAR_REGISTRY}NAME:${AI_SIDECAR_TAG}, NAME from the table below; the tag defaults
# to the package version (sidecar/__init__.py's __version__, the one version source) and the
# registry prefix to none (set it to e.g. registry.example.com/platform/ to push). Each image gets
# OCI labels with that version and the git revision. The context is the repository root
# (.dockerignore sends only what the images copy). Builds use the host's network and, unless
# DOCKER_BUILDKIT says otherwise, the classic builder (what scripts/setup-docker.sh's Debian engine
# offers; the Dockerfiles need nothing of BuildKit, and build with it too). Layers are cached by the
# engine, so an unchanged image rebuilds in well under a second. Each build's output goes to
# ${TMPDIR:-/tmp}/ai-sidecar-images/NAME.log; with BUILD_IMAGES_REPORT=FILE one line per image
# (name, tag, seconds, bytes) is appended to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

# docker/FOLDER -> image name. The order puts images that share layers next to each other.
declare -A NAMES=(
    [sidecar]=ai-sidecar
    [digits-python]=ai-sidecar-digits-python
    [digits-java]=ai-sidecar-digits-java
    [eureka-server]=ai-sidecar-eureka
    [digits-cpp]=ai-sidecar-digits-cpp
    [digits-php]=ai-sidecar-digits-php
    [prometheus]=ai-sidecar-prometheus
)
ORDER=(sidecar digits-python digits-java eureka-server digits-cpp digits-php prometheus)

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' sidecar/__init__.py)
[[ -n $version ]] || { echo "build-images: no __version__ in sidecar/__init__.py" >&2; exit 1; }
tag=${AI_SIDECAR_TAG:-$version}
registry=${AI_SIDECAR_REGISTRY:-}
revision=$(git describe --always --dirty --abbrev=40 2>/dev/null || echo unknown)
logs=${TMPDIR:-/tmp}/ai-sidecar-images
mkdir -p "$logs"

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }

wanted=("$@")
(( ${#wanted[@]} )) || wanted=("${ORDER[@]}")
for folder in "${wanted[@]}"; do
    [[ -n ${NAMES[$folder]:-} ]] || { echo "build-images: no image '$folder'; known: ${ORDER[*]}" >&2; exit 2; }
done
command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1 \
    || { echo "build-images: no Docker engine answers; run scripts/setup-docker.sh (as root)" >&2; exit 1; }

total=$(date +%s%N)
for folder in "${ORDER[@]}"; do
    [[ " ${wanted[*]} " == *" $folder "* ]] || continue
    image=$registry${NAMES[$folder]}:$tag
    log=$logs/$folder.log
    start=$(date +%s%N)
    if ! DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --force-rm --network host -f "docker/$folder/Dockerfile" -t "$image" \
            --build-arg VERSION="$version" --build-arg REVISION="$revision" . >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "build-images: building $image failed; the whole output is in $log" >&2
        exit 1
    fi
    seconds=$(elapsed "$start")
    bytes=$(docker image inspect -f '{{ .Size }}' "$image")
    printf 'build-images: %-44s %7s s  %4d MB\n' "$image" "$seconds" $(( bytes / 1000000 ))
    [[ -n ${BUILD_IMAGES_REPORT:-} ]] && printf '%s\t%s\t%s\t%s\n' "$folder" "$image" "$seconds" "$bytes" \
        >>"$BUILD_IMAGES_REPORT"
done
echo "build-images: done in $(elapsed "$total") s"
