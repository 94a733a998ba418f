#!/usr/bin/env bash
# The Docker engine the container tests (tests/container/) and scripts/build-images.sh need, on a
# machine that reaches Debian's packages and the Go module proxy but no image registry:
#   1. Debian's docker.io (the engine, 20.10) and debootstrap;
#   2. dockerd, started as root in the background (log: /var/log/ai-sidecar-dockerd.log) unless a
#      daemon already answers;
#   3. the `docker compose` v2 plugin, built from the Go module proxy (Debian ships only compose v1);
#   4. the base image the Dockerfiles start FROM, debian:bookworm-slim, made locally: debootstrap
#      bookworm from the host's Debian mirror, trimmed as the official slim image is, imported.
#      It also carries this machine's local CA certificates in Debian's local CA folder, so that pip
#      and Maven inside a build trust the machine's TLS proxy once a Dockerfile installs
#      ca-certificates. That is set-up of this machine only: no shipped Dockerfile mentions it.
# Idempotent, each step skipped when up to date (about 0.3 s with everything there): the base image
# is labelled with a hash of its inputs and only made again when they change; an image of that name
# without the label (a real one, pulled from a registry) is never replaced. Run as root.
# DOCKER_SETUP_FORCE_BASE=1 makes the base again; DOCKER_SETUP_SKIP=1 does nothing (a machine
# without Docker on purpose: the container tests then skip, or fail under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE_VERSION=2.40.3
BASE_IMAGE=debian:bookworm-slim
SUITE=bookworm
DOCKERD_LOG=/var/log/ai-sidecar-dockerd.log
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
BASE_LABEL=dev.ai-sidecar.base-inputs

[[ -n ${DOCKER_SETUP_SKIP:-} ]] && { echo "setup-docker: skipped (DOCKER_SETUP_SKIP is set)"; exit 0; }

elapsed() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }
temporary=()
trap 'rm -rf "${temporary[@]}"' EXIT

# --- 1. packages -----------------------------------------------------------------------------
missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed' || missing+=("$1"); }
need_pkg docker.io
need_pkg debootstrap
if (( ${#missing[@]} )); then
    start=$(date +%s%N)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The package's own service is not used (there is no init system to start it); its postinst
    # saying so does not matter.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
    echo "setup-docker: installed ${missing[*]} in $(elapsed "$start")"
fi

# --- 2. the daemon ---------------------------------------------------------------------------
answers() { timeout 10 docker info >/dev/null 2>&1; }
if ! answers; then
    start=$(date +%s%N)
    # setsid + nohup: the daemon outlives this script and the shell that ran it.
    setsid nohup /usr/sbin/dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 120); do answers && break; sleep 0.5; done
    answers || { tail -n 30 "$DOCKERD_LOG" >&2; echo "setup-docker: dockerd did not answer; see $DOCKERD_LOG" >&2; exit 1; }
    echo "setup-docker: started dockerd in $(elapsed "$start") (log: $DOCKERD_LOG)"
fi

# --- 3. the compose v2 plugin ----------------------------------------------------------------
if [[ $("$PLUGIN" version --short 2>/dev/null) != "$COMPOSE_VERSION" ]]; then
    command -v go >/dev/null || { echo "setup-docker: go not found (compose $COMPOSE_VERSION needs Go >= 1.24)" >&2; exit 1; }
    start=$(date +%s%N)
    work=$(mktemp -d)
    temporary+=("$work")
    module=github.com/docker/compose/v2@v$COMPOSE_VERSION
    # Compose's go.mod has replace and exclude directives, which `go install pkg@version` refuses;
    # built as the main module from its own source (the module zip), they apply as upstream intends.
    dir=$(go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [[ -d $dir ]] || { echo "setup-docker: go mod download $module failed" >&2; exit 1; }
    cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
    # Compose's Makefile sets the version this way; without it `docker compose version` says "dev".
    (cd "$work/src" && CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=v$COMPOSE_VERSION" \
        -o "$work/docker-compose" ./cmd) >"$work/go.log" 2>&1 \
        || { tail -n 30 "$work/go.log" >&2; echo "setup-docker: building compose failed" >&2; exit 1; }
    mkdir -p "$(dirname "$PLUGIN")"
    mv "$work/docker-compose" "$PLUGIN.tmp" && mv "$PLUGIN.tmp" "$PLUGIN"  # never a half-written plugin
    echo "setup-docker: built docker compose $COMPOSE_VERSION in $(elapsed "$start")"
fi

# --- 4. the base image -----------------------------------------------------------------------
# The host's mirrors, from its apt sources (deb822 or one-line), for the suite and its security suite.
mirror_for() {  # mirror_for SUITE DEFAULT
    local found
    found=$(awk -v suite="$1" '
        /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) print uri }
        /^deb / { for (i = 3; i <= NF; i++) if ($i == suite) { print $2; break } }
        /^$/ { uri = "" }' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null | head -n 1)
    echo "${found:-$2}"
}
MIRROR=$(mirror_for "$SUITE" http://deb.debian.org/debian)
SECURITY_MIRROR=$(mirror_for "$SUITE-security" http://deb.debian.org/debian-security)
CA_FILES=(/usr/local/share/ca-certificates/*.crt)
[[ -e ${CA_FILES[0]} ]] || CA_FILES=()

# What the official slim image sets (debuerreotype's minimizing config): no docs, man pages or
# translations installed, no apt caches kept, no service started by a package's postinst.
DPKG_EXCLUDES='path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*'
APT_CLEAN='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";'
SOURCES="Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
RECIPE="v1 minbase $SUITE
$SOURCES
$DPKG_EXCLUDES
$APT_CLEAN"
inputs=$( { echo "$RECIPE"; (( ${#CA_FILES[@]} )) && cat "${CA_FILES[@]}"; } | sha256sum | cut -c1-16)

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    have=absent
else
    have=$(docker image inspect -f "{{ index .Config.Labels \"$BASE_LABEL\" }}" "$BASE_IMAGE")
fi
if [[ $have == "" || $have == "<no value>" ]]; then
    echo "setup-docker: $BASE_IMAGE was not made here (a real one, from a registry); kept"
elif [[ $have == "$inputs" && -z ${DOCKER_SETUP_FORCE_BASE:-} ]]; then
    :  # up to date
else
    start=$(date +%s%N)
    root=$(mktemp -d /var/tmp/ai-sidecar-rootfs.XXXXXX)
    temporary+=("$root")
    debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
        || { tail -n 30 "$root.log" >&2; echo "setup-docker: debootstrap failed, see $root.log" >&2; exit 1; }
    rm -f "$root.log"
    echo "$DPKG_EXCLUDES" >"$root/etc/dpkg/dpkg.cfg.d/docker"
    echo "$APT_CLEAN" >"$root/etc/apt/apt.conf.d/docker-clean"
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
    rm -f "$root/etc/apt/sources.list"
    echo "$SOURCES" >"$root/etc/apt/sources.list.d/debian.sources"
    # The files the excludes would have kept out, had they been there from the start.
    (cd "$root" && find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
     cd "$root" && find usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
     cd "$root" && rm -rf usr/share/groff/* usr/share/info/* usr/share/linda/* usr/share/lintian/overrides/* \
         usr/share/man/* && find usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +)
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.cache
    : >"$root/etc/machine-id"
    mkdir -p "$root/usr/local/share/ca-certificates"
    (( ${#CA_FILES[@]} )) && cp "${CA_FILES[@]}" "$root/usr/local/share/ca-certificates/"
    tar -C "$root" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' --change "LABEL $BASE_LABEL=$inputs" - "$BASE_IMAGE" >/dev/null
    size=$(docker image inspect -f '{{ .Size }}' "$BASE_IMAGE")
    echo "setup-docker: made $BASE_IMAGE ($(( size / 1000000 )) MB, inputs $inputs) in $(elapsed "$start")"
fi
