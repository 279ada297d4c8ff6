#!/usr/bin/env bash
# Builds the test fixtures from the package registries into target/rig/:
#   argocd              the real Argo CD binary, from Argo CD's Go module (tests/rig/argocd), and
#   argocd-repo-server  a link to it: the name selects the repo-server component
#   gotls               Go crypto/tls servers, correct and wrong in one respect each (tests/rig/gotls)
# Idempotent: Go's caches make a second run take seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v go >/dev/null || { echo "tests/rig/build.sh: go (>= 1.26) is required to build the fixtures" >&2; exit 2; }
mkdir -p "$root/target/rig"
started=$(date +%s)
echo "[rig] gotls (standard library only)" >&2
(cd "$root/tests/rig/gotls" && CGO_ENABLED=0 go build -trimpath -o "$root/target/rig/gotls" .)
echo "[rig] argocd (argocd-repo-server links to it)" >&2
OUT="$root/target/rig/argocd" "$root/tests/rig/argocd/build.sh" >/dev/null
echo "[rig] fixtures ready in $(( $(date +%s) - started ))s: $root/target/rig" >&2
