#!/usr/bin/env bash
# Builds everything `kind create cluster --image` needs, from the package registries only (Go
# module proxy, Debian), into target/rig/kind/ and the rig's own docker (engine.sh):
#   bin/      kind (sigs.k8s.io/kind), kubeadm (the node rig's Kubernetes module and version),
#             etcd (wrapper module etcd/), coredns (the version kubeadm names)
#   images/   the four control-plane images, etcd and CoreDNS as docker-archives; the base
#             image's root filesystem (base.sh); the Kubernetes "server tarball" kind builds from
#   docker    the base image with etcd, CoreDNS and pause preloaded, the node image
#             ($KIND_NODE_IMAGE, by `kind build node-image --type file`), and the Argo CD images
#             the node rig built (argocd, redis), loaded so `run --target kind --preload-images`
#             finds them in the engine instead of pulling them
# Needs the node rig's build (tests/rig/node/build.sh) and root (the engine). Idempotent: Go's
# caches and the input stamps make a second run take seconds. Starts the engine if it is not up
# and stops it again if it started it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || die "the kind rig needs root (its engine, mmdebstrap)"
for f in kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy pause; do
  [ -x "$NODE_BIN/$f" ] || die "no $NODE_BIN/$f: run tests/rig/node/build.sh first"
done
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (.ci/run installs it)"
mkdir -p "$RIG_BIN" "$RIG_IMAGES"

step "kind $KIND_VERSION"
GOBIN="$RIG_BIN" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
kind_module="$(go env GOMODCACHE)/sigs.k8s.io/kind@$KIND_VERSION"

step "kubeadm $RIG_K8S_VERSION (the node rig's module; cold: ~3 min)"
minor=${RIG_K8S_VERSION#v1.}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$RIG_K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
done
(cd "$rig_root/tests/rig/node/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$RIG_BIN/" k8s.io/kubernetes/cmd/kubeadm)

step "etcd $ETCD_VERSION (cold: ~1 min), coredns $KIND_COREDNS_VERSION"
(cd "$kind_here/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$RIG_BIN/etcd" go.etcd.io/etcd/server/v3)
GOBIN="$RIG_BIN" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$KIND_COREDNS_VERSION"

step "images and the Kubernetes server tarball"
images_py="$rig_root/tests/rig/node/images.py"
etcd_tag="registry.k8s.io/etcd:${ETCD_VERSION#v}-0"
coredns_tag="registry.k8s.io/coredns/coredns:$KIND_COREDNS_VERSION"
images_stamp=$(cat "$images_py" "$NODE_BIN"/kube* "$RIG_BIN"/kubeadm "$RIG_BIN"/etcd "$RIG_BIN"/coredns | sha256sum | cut -c1-16)
if [ "$(cat "$RIG_IMAGES/images.stamp" 2>/dev/null)" != "$images_stamp" ]; then
  tree="$RIG_IMAGES/tree/kubernetes"
  mkdir -p "$tree/server/bin"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    python3 "$images_py" static "$tree/server/bin/$c.tar" "registry.k8s.io/$c:$RIG_K8S_VERSION" "$NODE_BIN/$c" "usr/local/bin/$c"
  done
  python3 "$images_py" kube-proxy "$tree/server/bin/kube-proxy.tar" "registry.k8s.io/kube-proxy:$RIG_K8S_VERSION" "$NODE_BIN/kube-proxy"
  cp "$NODE_BIN/kubelet" "$NODE_BIN/kubectl" "$RIG_BIN/kubeadm" "$tree/server/bin/"
  echo "$RIG_K8S_VERSION" >"$tree/version"
  tar -C "$RIG_IMAGES/tree" --mtime=@0 --owner=0 --group=0 --sort=name -czf "$RIG_IMAGES/kubernetes-server-linux-amd64.tar.gz" kubernetes
  rm -rf "$RIG_IMAGES/tree"
  python3 "$images_py" static "$RIG_IMAGES/etcd.tar" "$etcd_tag" "$RIG_BIN/etcd" usr/local/bin/etcd
  python3 "$images_py" static "$RIG_IMAGES/coredns.tar" "$coredns_tag" "$RIG_BIN/coredns" coredns /coredns
  echo "$images_stamp" >"$RIG_IMAGES/images.stamp"
fi

step "base root filesystem (mmdebstrap; cold: ~3 min)"
base_inputs=$(cat "$kind_here/base.sh" | sha256sum | cut -c1-16)
if [ "$(cat "$RIG_IMAGES/base-rootfs.stamp" 2>/dev/null)" != "$base_inputs" ] || [ ! -f "$RIG_IMAGES/base-rootfs.tar" ]; then
  "$kind_here/base.sh" "$RIG_IMAGES/base-rootfs.tar" "$kind_module"
  echo "$base_inputs" >"$RIG_IMAGES/base-rootfs.stamp"
fi

started_engine=false
if ! alive kind-dockerd; then
  "$kind_here/engine.sh" up
  started_engine=true
fi
stop_engine() { if [ "$started_engine" = true ]; then "$kind_here/engine.sh" down; fi; }
trap stop_engine EXIT

step "base image with etcd, CoreDNS and pause preloaded"
stamp=$(cat "$RIG_IMAGES/base-rootfs.stamp" "$RIG_IMAGES/etcd.tar" "$RIG_IMAGES/coredns.tar" "$NODE_IMAGES/pause.tar" | sha256sum | cut -c1-16)
label() { docker image inspect --format "{{index .Config.Labels \"argocd-mtls-verify.inputs\"}}" "$1" 2>/dev/null || true; }
if [ "$(label "$KIND_BASE_IMAGE")" != "$stamp" ]; then
  python3 "$images_py" kind-base "$RIG_IMAGES/base.tar" "$KIND_BASE_IMAGE-bare" "$RIG_IMAGES/base-rootfs.tar"
  docker load -i "$RIG_IMAGES/base.tar" >/dev/null
  rm -f "$RIG_IMAGES/base.tar"
  box=$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined "$KIND_BASE_IMAGE-bare" infinity)
  for tar in "$RIG_IMAGES/etcd.tar" "$RIG_IMAGES/coredns.tar" "$NODE_IMAGES/pause.tar"; do
    docker cp "$tar" "$box:/tmp/"
  done
  docker exec "$box" bash -c 'set -e
    nohup containerd >/tmp/containerd.log 2>&1 &
    for i in $(seq 1 60); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.5; done
    for t in /tmp/*.tar; do
      ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --no-unpack --digests "$t" >/dev/null
    done
    ctr --namespace=k8s.io images list -q
    pkill containerd; sleep 1; rm -f /tmp/*.tar /tmp/containerd.log'
  docker commit --change "LABEL argocd-mtls-verify.inputs=$stamp" \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$box" "$KIND_BASE_IMAGE" >/dev/null
  docker rm -f "$box" >/dev/null
  docker rmi "$KIND_BASE_IMAGE-bare" >/dev/null
fi

step "node image $KIND_NODE_IMAGE (kind build node-image --type file)"
node_stamp=$( (echo "$stamp"; sha256sum <"$RIG_IMAGES/kubernetes-server-linux-amd64.tar.gz") | sha256sum | cut -c1-16)
if [ "$(cat "$RIG_IMAGES/node-image.stamp" 2>/dev/null)" != "$node_stamp" ] || ! docker image inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1; then
  kind build node-image --type file --base-image "$KIND_BASE_IMAGE" --image "$KIND_NODE_IMAGE" \
    "$RIG_IMAGES/kubernetes-server-linux-amd64.tar.gz"
  echo "$node_stamp" >"$RIG_IMAGES/node-image.stamp"
fi

step "Argo CD's images into the engine (the node rig's archives)"
while read -r tag file; do
  docker image inspect "$tag" >/dev/null 2>&1 || docker load -i "$NODE_IMAGES/$file" >/dev/null
done <"$NODE_IMAGES/index"
done_steps "built into $RIG_OUT and the rig's engine"
