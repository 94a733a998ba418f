#!/usr/bin/env bash
# Regenerates deploy/kubernetes/digits-injected.yaml (native sidecar) and digits-classic.yaml
# from digits.yaml with `ai-sidecar inject`. tests/deploy/test_manifests.py runs the same and
# fails on any difference, so run this after changing the injector or digits.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
for variant in native classic; do
  out=deploy/kubernetes/digits-injected.yaml
  [[ $variant == classic ]] && out=deploy/kubernetes/digits-classic.yaml
  {
    echo "# Generated: python3 -m sidecar inject --mode $variant deploy/kubernetes/digits.yaml"
    echo "# (scripts/generate-manifests.sh). Do not edit: change digits.yaml or the injector."
    python3 -m sidecar inject --mode "$variant" deploy/kubernetes/digits.yaml 2>/dev/null
  } > "$out"
done
