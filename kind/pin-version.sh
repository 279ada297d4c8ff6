#!/usr/bin/env bash
# Adds an Argo CD release to what this project pins, from the Go module proxy alone:
#   kind/pin-version.sh VERSION        e.g. kind/pin-version.sh v3.6.3
# 1. kind/argocd-versions.toml: the SHA-256 of manifests/install.yaml, manifests/ha/install.yaml and
#    manifests/namespace-install.yaml as Argo CD's module zip holds them (the same bytes as the tag's
#    files); an entry already there with another digest stops the script.
# 2. tests/rig/argocd/v<VERSION>/: the wrapper module the test rig builds that release from
#    (go.mod with every `replace` of Argo CD's own go.mod but its local ./gitops-engine, go.sum from
#    `go mod tidy`, main.go and repo-server/main.go linked to the shared programs).
# Idempotent: a second run changes nothing. Go >= 1.26; a release that needs a newer Go gets a
# `toolchain` line (the newest patch of that Go the proxy serves) and is tidied under it.
# Then: add the version to tests/rig/build.sh and tests/common/rig.rs (ArgoCd) to test it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "pin-version.sh: $*" >&2; exit 2; }
[ $# -eq 1 ] || die "usage: kind/pin-version.sh VERSION (e.g. v3.6.3)"
version=${1#v}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "\`$1\` is not a release like v3.6.3"
command -v go >/dev/null || die "go (>= 1.26) is required"
command -v python3 >/dev/null || die "python3 is required (it reads go's JSON)"
module=github.com/argoproj/argo-cd/v3
json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get(sys.argv[1]) or "")' "$1"; }

echo "[pin] $module@v$version: its go.mod" >&2
# The .mod alone downloads under any Go; the zip needs the Go the module asks for.
gomod=$(GOTOOLCHAIN=local go mod download -json "$module@v$version" | json_field GoMod) || true
[ -n "$gomod" ] && [ -f "$gomod" ] || die "the module proxy does not serve $module@v$version"
needs=$(go mod edit -json "$gomod" | json_field Go)
local_go=$(go env GOVERSION); local_go=${local_go#go}
toolchain=
if [ "$(printf '%s\n%s\n' "$needs" "$local_go" | sort -V | tail -n1)" != "$local_go" ]; then
  minor=$(echo "$needs" | cut -d. -f1,2)
  toolchain=$(go list -m -versions golang.org/toolchain | tr ' ' '\n' | sed -n "s/^v0\.0\.1-\(go$minor\.[0-9]*\)\.linux-amd64$/\1/p" | sort -V | tail -n1)
  [ -n "$toolchain" ] || die "v$version needs Go $needs and the proxy serves no go$minor toolchain"
  echo "[pin] v$version needs Go $needs: the wrapper builds with $toolchain" >&2
  export GOTOOLCHAIN=$toolchain
fi

echo "[pin] the module zip (cold: ~20 MB)" >&2
dir=$(go mod download -json "$module@v$version" | json_field Dir)
[ -n "$dir" ] && [ -d "$dir" ] || die "could not download $module@v$version"

table="$root/kind/argocd-versions.toml"
for file in manifests/install.yaml manifests/ha/install.yaml manifests/namespace-install.yaml; do
  [ -f "$dir/$file" ] || die "v$version's module has no $file"
  sha=$(sha256sum "$dir/$file" | cut -d' ' -f1)
  pinned=$(python3 - "$table" "v$version" "$file" <<'PY'
import sys, tomllib
table = tomllib.load(open(sys.argv[1], "rb"))
print(next((m["sha256"] for m in table["manifest"] if m["version"] == sys.argv[2] and m["file"] == sys.argv[3]), ""))
PY
)
  if [ -z "$pinned" ]; then
    printf '\n[[manifest]]\nversion = "v%s"\nfile = "%s"\nsha256 = "%s"\n' "$version" "$file" "$sha" >>"$table"
    echo "[pin] pinned v$version $file $sha" >&2
  elif [ "$pinned" != "$sha" ]; then
    die "kind/argocd-versions.toml pins v$version $file at $pinned, the module holds $sha: resolve by hand"
  fi
done

wrapper="$root/tests/rig/argocd/v$version"
mkdir -p "$wrapper/repo-server"
ln -sfn ../main.go "$wrapper/main.go"
ln -sfn ../../repo-server.go "$wrapper/repo-server/main.go"
# Argo CD's `replace`s, but the local ./gitops-engine one: that nested module is not in the zip.
replaces=$(go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]
    if new["Path"].startswith("."):
        print("LOCAL", r["Old"]["Path"])
    else:
        print("\t%s => %s %s" % (r["Old"]["Path"], new["Path"], new.get("Version", "")))
')
engine_lines=
while read -r kind path; do
  [ "$kind" = LOCAL ] || continue
  required=$(go mod edit -json "$gomod" | python3 -c '
import json, sys
print(next((r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"] == sys.argv[1]), ""))' "$path")
  if [ -n "$required" ] && go mod download "$path@$required" 2>/dev/null; then
    chosen=$required why="v$version requires this version; the proxy serves it"
  else
    # The proxy refuses some pseudo-versions (403): take the one a pinned release of the same minor
    # line was built with.
    chosen=$(grep -h "^[[:space:]]*$path => $path " "$root"/tests/rig/argocd/v"$(echo "$version" | cut -d. -f1,2)".*/go.mod 2>/dev/null \
             | awk '{print $4}' | sort -V | tail -n1)
    [ -n "$chosen" ] && go mod download "$path@$chosen" 2>/dev/null \
      || die "the proxy does not serve $path@$required (v$version's nested module) and no pinned release of the same line names one that it serves"
    why="v$version requires $required, which the proxy refuses;"$'\n'$'\t'"// an earlier release of this line builds with this one"
  fi
  engine_lines+=$'\t'"// The nested $path is not in Argo CD's module zip:"$'\n'$'\t'"// $why."$'\n'$'\t'"$path => $path $chosen"$'\n'
done <<<"$replaces"

{
  echo "// Wrapper module that builds the real Argo CD v$version from its published Go module, written by"
  echo "// kind/pin-version.sh (see ../v3.5.1/go.mod for why a wrapper is needed). ../main.go builds the"
  echo "// whole \`argocd\` binary, ./repo-server only the repo-server command."
  echo "module argocd-mtls-verify/rig/argocd-$version"
  echo
  echo "go $needs"
  [ -z "$toolchain" ] || { echo; echo "toolchain $toolchain"; }
  echo
  echo "require github.com/argoproj/argo-cd/v3 v$version"
  echo
  echo "replace ("
  printf '%s' "$engine_lines"
  echo
  echo "	// Copied from Argo CD v$version's go.mod."
  grep -v '^LOCAL ' <<<"$replaces"
  echo ")"
} >"$wrapper/go.mod.new"
if [ -f "$wrapper/go.mod" ] && [ -f "$wrapper/go.sum" ]; then
  rm -f "$wrapper/go.mod.new"
  echo "[pin] $wrapper/go.mod is there already: left as it is" >&2
else
  mv "$wrapper/go.mod.new" "$wrapper/go.mod"
  echo "[pin] go mod tidy in $wrapper (cold: the release's whole module graph, ~2 GB)" >&2
  (cd "$wrapper" && go mod tidy)
fi
echo "[pin] v$version pinned: kind/argocd-versions.toml, $wrapper" >&2
