# Shared by the kind rig's scripts. Sourced, not run. The helpers (step, spawn, stop, alive,
# wait_for, die) are the node rig's; only the places differ.
_kind_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
RIG_OUT=$_kind_root/target/rig/kind
RIG_STATE=$RIG_OUT/state
source "$_kind_root/tests/rig/node/lib.sh"
kind_here="$rig_root/tests/rig/kind"
# The node rig's Kubernetes build is reused: same version, same binaries.
NODE_BIN="$rig_root/target/rig/node/bin"
NODE_IMAGES="$rig_root/target/rig/node/images"
KIND_VERSION=v0.33.0
ETCD_VERSION=v3.6.5
KIND_COREDNS_VERSION=v1.12.1
# The node image kind runs: built by build.sh from the pieces above, never pulled.
KIND_NODE_IMAGE=argocd-mtls-verify.test/kind-node:$RIG_K8S_VERSION
KIND_BASE_IMAGE=argocd-mtls-verify.test/kind-base:bookworm
# The rig's own engine: its sockets, data and PIDs live under target/rig/kind, never in /run/docker
# or /run/containerd's socket, never on the host's firewall.
KIND_DOCKER_SOCK=$RIG_STATE/docker.sock
KIND_CONTAINERD_SOCK=$RIG_STATE/containerd.sock
export DOCKER_HOST=unix://$KIND_DOCKER_SOCK
# kind's docker network (made by engine.sh, bridge kindrig0), and the address on it where the
# rig answers the nodes' DNS (dns-refuse.py).
KIND_SUBNET=172.30.0.0/24
KIND_GATEWAY=172.30.0.1
KIND_DNS=172.30.0.254
export PATH="$RIG_BIN:$PATH"
# Host settings a kind node changes (its kubelet writes kernel.* and vm.* machine-wide; docker
# turns on forwarding): recorded by engine.sh up, restored by engine.sh down.
KIND_SYSCTLS="kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward fs.inotify.max_user_watches fs.inotify.max_user_instances"

# Does this machine withhold CAP_SYS_RESOURCE from its containers' bounding set? (kind always runs
# nodes --privileged, and runc cannot grant a capability the bounding set lacks.)
lacks_sys_resource() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  [ $(( (16#$bnd >> 24) & 1 )) -eq 0 ]
}
