#!/usr/bin/env bash
# Brings up a real single-node Kubernetes (v1.34, real kubelet and containerd, real pods) from what
# tests/rig/node/build.sh built, with the pinned manifest's images in a local registry. Idempotent:
# a node that is already up is left as it is. State, logs and PID files live under
# target/rig/node/state; tests/rig/node/down.sh stops it all.
#
# Prints the kubeconfig's path on its last line. Pods live on the rig's own bridge (10.88.0.0/24)
# and in network namespaces the CNI bridge plugin makes; no route leads out of them.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || die "the node rig needs root (network namespaces, mounts, iptables)"
for tool in containerd runc ctr etcd docker-registry skopeo iptables; do
  command -v "$tool" >/dev/null || die "$tool is missing: .ci/run installs it from Debian (see tests/rig/node/build.sh)"
done
for built in kube-apiserver kubelet kubectl coredns; do
  [ -x "$RIG_BIN/$built" ] || die "$RIG_BIN/$built is missing: run tests/rig/node/build.sh"
done

if alive kube-apiserver && alive kubelet && kubectl_rig get --raw /readyz >/dev/null 2>&1; then
  echo "[rig] the node is already up" >&2
  echo "$RIG_STATE/kubeconfig"
  exit 0
fi
if [ -d "$RIG_STATE/pids" ]; then
  echo "[rig] a previous node is partly up: stopping it first" >&2
  "$rig_here/down.sh"
fi

S=$RIG_STATE
mkdir -p "$S"/{pki,log,pids,etcd,registry,kubelet,cni/net.d,containerd/certs.d,coredns}
node=$(hostname)

step "PKI (openssl)"
pki=$S/pki
if [ ! -f "$pki/ca.crt" ]; then
  (
    cd "$pki"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=mtls-rig-ca" 2>/dev/null
    issue() { # name subject [extensions]
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      printf '%s\n' "${3:-extendedKeyUsage=clientAuth}" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out "$1.crt" -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    issue apiserver "/CN=kube-apiserver" "subjectAltName=IP:$RIG_GATEWAY,IP:10.96.0.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$node
extendedKeyUsage=serverAuth"
    issue admin "/O=system:masters/CN=rig-admin"
    issue node "/O=system:nodes/CN=system:node:$node"
    issue kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
fi
kubeconfig() { # file cert
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rig
  cluster: {server: "$RIG_APISERVER", certificate-authority: "$pki/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}
contexts:
- name: rig
  context: {cluster: rig, user: $2}
current-context: rig
EOF
  chmod 600 "$1"
}
kubeconfig "$S/kubeconfig" admin
kubeconfig "$S/node.kubeconfig" node

step "network: bridge $RIG_BRIDGE $RIG_GATEWAY/24 (pods only; no route leads out)"
if ! ip link show "$RIG_BRIDGE" >/dev/null 2>&1; then
  ip link add "$RIG_BRIDGE" type bridge
  ip addr add "$RIG_GATEWAY/24" dev "$RIG_BRIDGE"
fi
ip link set "$RIG_BRIDGE" up
modprobe br_netfilter 2>/dev/null || true
# Routing between the pods and Services needs forwarding; down.sh puts back what was there.
[ -f "$S/sysctl.before" ] || sysctl -n net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables | paste -sd' ' >"$S/sysctl.before"
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
cat >"$S/cni/net.d/10-rig.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "rig",
  "plugins": [
    {
      "type": "bridge", "bridge": "$RIG_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$S/cni/ipam",
        "ranges": [[{"subnet": "$RIG_POD_SUBNET", "gateway": "$RIG_GATEWAY"}]],
        "routes": [{"dst": "$RIG_POD_CIDR"}, {"dst": "$RIG_SERVICE_CIDR"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

step "etcd (Debian etcd-server) on 127.0.0.1:2379"
spawn etcd etcd --name rig --data-dir "$S/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster rig=http://127.0.0.1:2380
wait_for etcd 30 curl -fsS http://127.0.0.1:2379/health

step "kube-apiserver $RIG_K8S_VERSION on $RIG_APISERVER (audit log: $S/log/audit.log)"
cat >"$S/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
EOF
spawn kube-apiserver "$RIG_BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address="$RIG_GATEWAY" --advertise-address="$RIG_GATEWAY" --secure-port=6443 \
  --service-cluster-ip-range="$RIG_SERVICE_CIDR" \
  --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --authorization-mode=Node,RBAC --allow-privileged=true \
  --kubelet-client-certificate="$pki/kubelet-client.crt" --kubelet-client-key="$pki/kubelet-client.key" \
  --kubelet-preferred-address-types=Hostname,InternalIP \
  --audit-policy-file="$S/audit-policy.yaml" --audit-log-path="$S/log/audit.log" --audit-log-maxsize=200
wait_for kube-apiserver 90 kubectl_rig get --raw /readyz

step "kube-controller-manager, kube-scheduler"
spawn kube-controller-manager "$RIG_BIN/kube-controller-manager" --kubeconfig="$S/kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --service-account-private-key-file="$pki/sa.key" \
  --root-ca-file="$pki/ca.crt" --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --use-service-account-credentials=true
spawn kube-scheduler "$RIG_BIN/kube-scheduler" --kubeconfig="$S/kubeconfig" --bind-address=127.0.0.1 --leader-elect=false

step "local registry on $RIG_REGISTRY (Debian docker-registry), mirrors for the manifest's registries"
cat >"$S/registry.yaml" <<EOF
version: 0.1
storage:
  filesystem: {rootdirectory: "$S/registry"}
http: {addr: "$RIG_REGISTRY"}
log: {level: warn}
EOF
spawn registry docker-registry serve "$S/registry.yaml"
wait_for registry 20 curl -fsS "http://$RIG_REGISTRY/v2/"
for upstream in quay.io ghcr.io docker.io public.ecr.aws registry.k8s.io; do
  mkdir -p "$S/containerd/certs.d/$upstream"
  cat >"$S/containerd/certs.d/$upstream/hosts.toml" <<EOF
server = "http://$RIG_REGISTRY"
[host."http://$RIG_REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
done
while read -r image archive; do
  [ -n "$image" ] || continue
  path=${image#*/}
  skopeo copy --quiet --dest-tls-verify=false "docker-archive:$RIG_IMAGES/$archive" "docker://$RIG_REGISTRY/$path"
done <"$RIG_IMAGES/index"

step "containerd (Debian) + runc, CRI with restrict_oom_score_adj and cgroupfs"
cat >"$S/containerd/config.toml" <<EOF
version = 2
root = "$S/containerd/root"
state = "$S/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$S/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$S/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$S/containerd/certs.d"
EOF
spawn containerd containerd --config "$S/containerd/config.toml"
wait_for containerd 30 ctr_rig version
ctr_rig images import --no-unpack=false "$RIG_IMAGES/pause.tar" >/dev/null

step "coredns on $RIG_GATEWAY:53 (cluster.local only; nothing forwarded)"
cat >"$S/coredns/Corefile" <<EOF
.:53 {
  bind $RIG_GATEWAY
  errors
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig $S/kubeconfig rig
    pods insecure
    fallthrough in-addr.arpa ip6.arpa
  }
  cache 5
}
EOF
spawn coredns "$RIG_BIN/coredns" -conf "$S/coredns/Corefile"

step "kubelet + kube-proxy"
: >"$S/kubelet/resolv.conf"
cat >"$S/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$S/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
clusterDNS: ["$RIG_GATEWAY"]
resolvConf: "$S/kubelet/resolv.conf"
hairpinMode: hairpin-veth
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
EOF
spawn kubelet "$RIG_BIN/kubelet" --config="$S/kubelet/config.yaml" --kubeconfig="$S/node.kubeconfig" \
  --root-dir="$S/kubelet/root" --node-ip="$RIG_GATEWAY"
cat >"$S/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$S/kubeconfig"}
mode: iptables
clusterCIDR: "$RIG_POD_CIDR"
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$RIG_GATEWAY/32"]
conntrack: {maxPerCore: 0, min: 0}
EOF
spawn kube-proxy "$RIG_BIN/kube-proxy" --config="$S/kube-proxy.yaml" --hostname-override="$node"
wait_for "node $node Ready" 120 sh -c "'$RIG_BIN/kubectl' --kubeconfig '$S/kubeconfig' get node '$node' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"

done_steps "node $node Ready"
echo "$S/kubeconfig"
