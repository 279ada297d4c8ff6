#!/usr/bin/env bash
# Builds the test fixtures from the package registries into target/rig/:
#   gotls                         Go crypto/tls servers, correct and wrong in one respect each (tests/rig/gotls)
#   argocd, argocd-repo-server    the real Argo CD v3.5.1 binary from Argo CD's Go module, and a link to it
#                                 (the name selects the repo-server component): the default version, the
#                                 node rig's (whose build.sh makes the same binary: one build serves both)
#   v3.5.8/argocd-repo-server,    the newest 3.5 and 3.6 releases, only their repo-server command (all
#   v3.6.2/argocd-repo-server     their tests run; tests/rig/argocd/v<VERSION>: one wrapper module per
#                                 version); 3.6.2 is built with Go 1.27 (GOTOOLCHAIN)
#   actionlint                    the GitHub workflow linter tests/workflows.rs runs (tests/rig/actionlint.sh)
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
for build in 3.5.1:all 3.5.8:repo-server 3.6.2:repo-server; do
  version=${build%%:*} what=${build#*:}
  step=$(date +%s)
  echo "[rig] argocd v$version ($what)" >&2
  "$root/tests/rig/argocd/build.sh" "$version" "$what" >/dev/null
  echo "[rig] argocd v$version ($what) in $(( $(date +%s) - step ))s" >&2
done
"$root/tests/rig/actionlint.sh"
echo "[rig] fixtures ready in $(( $(date +%s) - started ))s: $root/target/rig" >&2
