#!/usr/bin/env bash
# argocd-mtls-verify's own image, built the way deploy/image/Dockerfile lays it out (the static
# binary, user 65532, nothing else) but without Docker: a static debug build (glibc, crt-static,
# its own target dir so the test build's is untouched), images.py `tool`, then pushed into the
# running node rig's registry, which the node pulls ghcr.io through. Prints the image name; its
# tag is the binary's digest, so a rebuilt binary is never taken for the one a node cached.
# `tool-image.sh build` only builds the binary (tests/run starts it early, in the background).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
cd "$rig_root"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$rig_root/target/static" \
  cargo build --locked --quiet --target x86_64-unknown-linux-gnu --bin argocd-mtls-verify >&2
[ "${1:-}" = build ] && exit 0
binary="$rig_root/target/static/x86_64-unknown-linux-gnu/debug/argocd-mtls-verify"
if readelf -d "$binary" | grep -q NEEDED; then
  echo "tool-image: $binary is not static" >&2
  exit 1
fi
stripped="$rig_root/target/static/argocd-mtls-verify.stripped"
strip -o "$stripped" "$binary"
binary=$stripped
digest=$(sha256sum "$binary" | cut -c1-16)
image="ghcr.io/argocd-mtls-verify/argocd-mtls-verify:test-$digest"
mkdir -p "$RIG_IMAGES"
archive="$RIG_IMAGES/argocd-mtls-verify.tar"
python3 "$here/images.py" tool "$archive" "$image" "$binary"
skopeo copy --quiet --dest-tls-verify=false "docker-archive:$archive" "docker://$RIG_REGISTRY/${image#*/}" >&2
echo "$image"
