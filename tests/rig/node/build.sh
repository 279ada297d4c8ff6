#!/usr/bin/env bash
# Builds everything a real single-node Kubernetes with Argo CD needs, from the package registries
# only (Go module proxy, Debian), into target/rig/node/:
#   bin/      kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
#             (k8s.io/kubernetes v1.34.4, wrapper module tests/rig/node/kube), coredns, pause
#   images/   docker-archive tarballs for the pinned manifest's images: quay.io/argoproj/argocd (the
#             real argocd binary of tests/rig/argocd), public.ecr.aws/.../redis (Debian's
#             redis-server), registry.k8s.io/pause
#   crds/     CRDs as their projects publish them, from the Go modules that carry them:
#             OpenReports' Report (openreports/reports-api), the PolicyReport Kyverno installs
#             (kyverno/kyverno), and the Argo CD Operator's ArgoCD (argoproj-labs/argocd-operator)
# Not built: ghcr.io/dexidp/dex (SSO, unrelated to repo-server mTLS); its pod stays ImagePullBackOff.
# Debian packages it needs are installed by .ci/run (containerd, runc, containernetworking-plugins,
# docker-registry, skopeo, etcd-server, redis-server, busybox-static, gpg, gpg-agent, iptables).
# Idempotent: Go's caches make a second run take seconds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v go >/dev/null || die "go (>= 1.26) is required"
command -v cc >/dev/null || die "cc is required for the pause program (build-essential)"
mkdir -p "$RIG_BIN" "$RIG_IMAGES"

step "kubernetes $RIG_K8S_VERSION: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl (cold: ~5 min)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  minor=${RIG_K8S_VERSION#v1.}
  ldflags="$ldflags -X $pkg.gitVersion=$RIG_K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*} -X $pkg.gitTreeState=clean"
done
(cd "$rig_here/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$RIG_BIN/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)

step "coredns $RIG_COREDNS_VERSION (cold: ~2 min)"
GOBIN="$RIG_BIN" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$RIG_COREDNS_VERSION"

step "argocd (tests/rig/argocd; cold: ~13 min)"
version=3.5.1
argocd=$(OUT="$rig_root/target/rig/argocd" "$rig_root/tests/rig/argocd/build.sh" "$version")
hack="$(go env GOMODCACHE)/github.com/argoproj/argo-cd/v3@v$version/hack"
[ -f "$hack/gpg-wrapper.sh" ] || die "no $hack/gpg-wrapper.sh: the argocd build did not leave Argo CD's module in the cache"

step "pause (static C)"
cc -static -O2 -o "$RIG_BIN/pause" "$rig_here/pause.c"

step "images"
manifest="$(go env GOMODCACHE)/github.com/argoproj/argo-cd/v3@v$version/manifests/install.yaml"
redis_image=$(sed -n 's#^ *image: \(public.ecr.aws/docker/library/redis:[^ ]*\)#\1#p' "$manifest" | head -n1)
[ -n "$redis_image" ] || die "no redis image in $manifest"
python3 "$rig_here/images.py" argocd "$RIG_IMAGES/argocd.tar" "quay.io/argoproj/argocd:v$version" "$argocd" "$hack"
python3 "$rig_here/images.py" redis "$RIG_IMAGES/redis.tar" "$redis_image"
python3 "$rig_here/images.py" pause "$RIG_IMAGES/pause.tar" "registry.k8s.io/pause:3.10" "$RIG_BIN/pause"
printf '%s\n' "quay.io/argoproj/argocd:v$version argocd.tar" "$redis_image redis.tar" >"$RIG_IMAGES/index"
step "CRDs: policy reports (openreports/reports-api $RIG_OPENREPORTS_VERSION, kyverno $RIG_KYVERNO_VERSION), the Operator's ArgoCD ($RIG_ARGOCD_OPERATOR_VERSION)"
mkdir -p "$RIG_OUT/crds"
for module in "github.com/openreports/reports-api@$RIG_OPENREPORTS_VERSION:config/crd/openreports.io_reports.yaml" \
              "github.com/kyverno/kyverno@$RIG_KYVERNO_VERSION:config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml" \
              "github.com/argoproj-labs/argocd-operator@$RIG_ARGOCD_OPERATOR_VERSION:config/crd/bases/argoproj.io_argocds.yaml"; do
  dir=$(go mod download -json "${module%%:*}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -f "$dir/${module#*:}" ] || die "no ${module#*:} in ${module%%:*}"
  install -m 0644 "$dir/${module#*:}" "$RIG_OUT/crds/"
done

done_steps "built into $RIG_OUT"
