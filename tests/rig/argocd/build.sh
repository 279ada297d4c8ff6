#!/usr/bin/env bash
# Builds one Argo CD version from its published Go module:
#   tests/rig/argocd/build.sh [VERSION] [all|repo-server]
#     all          (default) the real `argocd` binary, every component chosen by the name it runs
#                  under (../main.go), with argocd-repo-server linked to it beside it: what the node
#                  rig's image holds
#     repo-server  only the repo-server command (./repo-server of the wrapper, ../repo-server.go):
#                  about half the compile, for the versions the tests run as a bare repo-server
# VERSION: a wrapper module here (v<VERSION>/go.mod, go.sum: Argo CD's `replace`s copied,
# gitops-engine from the proxy; kind/pin-version.sh writes one for a new release); default 3.5.1.
# Output: $OUT if set, else target/rig/argocd for 3.5.1 (the default every other rig and test uses)
# and target/rig/v<VERSION>/argocd, or target/rig/v<VERSION>/argocd-repo-server for repo-server.
# A `toolchain` line in the wrapper's go.mod (3.6 needs Go >= 1.27) runs that build, and only it,
# under GOTOOLCHAIN=<that toolchain>, which Go fetches from the module proxy. Idempotent: go's own
# caches make a rebuild cheap. Prints the binary's path on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
version=${1:-3.5.1}
version=${version#v}
what=${2:-all}
case "$what" in all|repo-server) ;; *) echo "build.sh: build \`all\` or \`repo-server\`, not \`$what\`" >&2; exit 2 ;; esac
module="$here/v$version"
[ -f "$module/go.mod" ] || { echo "build.sh: no wrapper module for Argo CD v$version ($module/go.mod)" >&2; exit 2; }
pinned=$(sed -n "s#^[[:space:]]*\(require \)\?github.com/argoproj/argo-cd/v3 v\([0-9.]*\).*#\2#p" "$module/go.mod" | head -n1)
[ "$pinned" = "$version" ] || { echo "build.sh: $module/go.mod requires Argo CD v$pinned, not v$version" >&2; exit 2; }
if [ "$what" = repo-server ]; then default_out=$root/target/rig/v$version/argocd-repo-server
elif [ "$version" = 3.5.1 ]; then default_out=$root/target/rig/argocd
else default_out=$root/target/rig/v$version/argocd; fi
out=${OUT:-$default_out}
command -v go >/dev/null || { echo "build.sh: go is required (Go >= 1.26)" >&2; exit 2; }
toolchain=$(sed -n 's/^toolchain \(go[0-9.]*\)$/\1/p' "$module/go.mod")
if [ -n "$toolchain" ]; then export GOTOOLCHAIN=$toolchain; fi
mkdir -p "$(dirname "$out")"
pkg=github.com/argoproj/argo-cd/v3/common
# The source commit of the tag (DOMAIN.md), so VersionService reports `v3.5.1+109ca7c` like upstream.
# The proxy's .info of the later releases names no commit, so theirs stays empty.
case "$version" in
  3.5.1) commit=109ca7ca71139e514114499d294a492e7910a965 ;;
  *) commit="" ;;
esac
# buildDate: the version's commit time as the module proxy records it (not the time of this build),
# so a rebuild links the same binary and Go's up-to-date check of $out makes a warm run seconds.
cd "$module"
date=$(GOFLAGS=-mod=mod go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' github.com/argoproj/argo-cd/v3)
started=$(date +%s)
if [ "$what" = repo-server ]; then package=./repo-server; else package=.; fi
echo "building argocd v$version ($what)${toolchain:+ with $toolchain} from the Go module proxy (cold: ~13 min on 2 cores for all, ~2 GB of modules)" >&2
# A link left by an `all` build would make go write through it into the whole binary.
if [ -L "$out" ]; then rm -f "$out"; fi
# Straight to $out: go leaves an up-to-date binary alone, and rebuilds one an interrupted copy truncated.
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$out" \
  -ldflags "-s -w -X $pkg.version=$version -X $pkg.gitTag=v$version -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$commit \
            -X $pkg.buildDate=$date" "$package"
if [ "$what" = all ]; then ln -sfn "$(basename "$out")" "$(dirname "$out")/argocd-repo-server"; fi
echo "built $out in $(( $(date +%s) - started ))s" >&2
echo "$out"
