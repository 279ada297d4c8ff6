#!/usr/bin/env bash
# argocd-mtls-verify's own image, built the way deploy/image/Dockerfile lays it out (the static
# binary, user 65532, nothing else) but without Docker, then pushed into the running node rig's
# registry, which the node pulls ghcr.io through:
#   tests/rig/node/tool-image.sh BINARY
# BINARY is the tool the tests ran (the scenarios pass their own): tests/run's one Rust build makes
# it static (tests/rust-build.sh), so the image needs no second build. Nothing is built here:
# scenarios call this while cargo holds its build directory. Prints the image name; its tag is the
# binary's digest, so a rebuilt binary is never taken for the one a node cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
[ $# -eq 1 ] && [ -f "$1" ] || die "usage: tool-image.sh BINARY (the argocd-mtls-verify binary to put in the image)"
binary=$1
if readelf -d "$binary" | grep -q NEEDED; then
  die "$binary is not static: build it as tests/run does (source tests/rust-build.sh; cargo build --features rig)"
fi
stripped="$rig_root/target/rig/argocd-mtls-verify.stripped"
mkdir -p "$rig_root/target/rig"
strip -o "$stripped" "$binary"
binary=$stripped
digest=$(sha256sum "$binary" | cut -c1-16)
image="ghcr.io/argocd-mtls-verify/argocd-mtls-verify:test-$digest"
mkdir -p "$RIG_IMAGES"
archive="$RIG_IMAGES/argocd-mtls-verify.tar"
python3 "$here/images.py" tool "$archive" "$image" "$binary"
skopeo copy --quiet --dest-tls-verify=false "docker-archive:$archive" "docker://$RIG_REGISTRY/${image#*/}" >&2
echo "$image"
