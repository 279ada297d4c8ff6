#!/usr/bin/env bash
# Builds the test fixtures from the package registries into target/rig/:
#   gotls                         Go crypto/tls servers, correct and wrong in one respect each (tests/rig/gotls)
#   argocd, argocd-repo-server    the real Argo CD v3.5.1 binary from Argo CD's Go module, and a link to it
#                                 (the name selects the repo-server component): the default version
#   v3.5.7/argocd-repo-server,    the same for the newest 3.5 and 3.6 releases (tests/rig/argocd/v<VERSION>:
#   v3.6.1/argocd-repo-server     one wrapper module per version); 3.6.1 is built with Go 1.27 (GOTOOLCHAIN)
# Idempotent: Go's caches make a second run take seconds. Prints each step's time.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v go >/dev/null || { echo "tests/rig/build.sh: go (>= 1.26) is required to build the fixtures" >&2; exit 2; }
mkdir -p "$root/target/rig"
started=$(date +%s)
step=$started
echo "[rig] gotls (standard library only)" >&2
(cd "$root/tests/rig/gotls" && CGO_ENABLED=0 go build -trimpath -o "$root/target/rig/gotls" .)
echo "[rig] gotls in $(( $(date +%s) - step ))s" >&2
for version in 3.5.1 3.5.7 3.6.1; do
  step=$(date +%s)
  echo "[rig] argocd v$version (argocd-repo-server links to it)" >&2
  "$root/tests/rig/argocd/build.sh" "$version" >/dev/null
  echo "[rig] argocd v$version in $(( $(date +%s) - step ))s" >&2
done
echo "[rig] fixtures ready in $(( $(date +%s) - started ))s: $root/target/rig" >&2
