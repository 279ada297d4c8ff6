#!/usr/bin/env bash
# Stops the node tests/rig/node/up.sh started and removes what it made: every component by its PID
# file, the pods' containers and their shims (by the PIDs containerd recorded), mounts under the
# state directory, the CNI network namespaces, the KUBE-* iptables chains, the bridge. Idempotent.
# The component logs are kept in target/rig/node/last-logs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
S=$RIG_STATE
[ -d "$S" ] || { echo "[rig] nothing to stop" >&2; exit 0; }

step "kubelet, kube-proxy"
stop kubelet
stop kube-proxy

step "pods' containers and shims"
if alive containerd; then
  for task in $(ctr_rig tasks list -q 2>/dev/null); do
    ctr_rig tasks kill -s KILL "$task" >/dev/null 2>&1 || true
  done
  sleep 1
  for task in $(ctr_rig tasks list -q 2>/dev/null); do
    ctr_rig tasks delete -f "$task" >/dev/null 2>&1 || true
  done
  for container in $(ctr_rig containers list -q 2>/dev/null); do
    ctr_rig containers delete "$container" >/dev/null 2>&1 || true
  done
fi
stop containerd
# Shims outlive containerd by design; containerd wrote each one's PID under its state directory.
for shim in "$S"/containerd/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
  [ -f "$shim" ] && kill -KILL "$(cat "$shim")" 2>/dev/null || true
done
# Container processes a killed shim left behind: runc's state names their init PIDs.
for init in "$S"/containerd/state/io.containerd.runtime.v2.task/*/*/init.pid; do
  [ -f "$init" ] && kill -KILL "$(cat "$init")" 2>/dev/null || true
done

step "mounts under $S, CNI network namespaces"
{ grep -o " $S[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r mnt; do
  umount -l "$mnt" 2>/dev/null || true
done
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
  ip netns delete "$ns" 2>/dev/null || true
done

step "control plane, coredns, registry, etcd"
for name in coredns kube-scheduler kube-controller-manager kube-apiserver registry etcd; do
  stop "$name"
done

step "iptables KUBE-* chains, bridge $RIG_BRIDGE"
for table in filter nat mangle; do
  iptables-save -t "$table" 2>/dev/null | grep -q KUBE- || continue
  for builtin in INPUT OUTPUT FORWARD PREROUTING POSTROUTING; do
    { iptables -t "$table" -S "$builtin" 2>/dev/null || true; } | { grep -- '-j KUBE-' || true; } | sed "s/^-A /-D /" | while read -r rule; do
      eval "iptables -t $table $rule" 2>/dev/null || true
    done
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do
    iptables -t "$table" -F "$chain" 2>/dev/null || true
  done
  for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do
    iptables -t "$table" -X "$chain" 2>/dev/null || true
  done
done
ip link delete "$RIG_BRIDGE" 2>/dev/null || true
if [ -f "$S/sysctl.before" ]; then
  read -r forward bridge_nf <"$S/sysctl.before"
  sysctl -qw "net.ipv4.ip_forward=$forward" "net.bridge.bridge-nf-call-iptables=$bridge_nf" || true
fi

step "state"
rm -rf "$RIG_OUT/last-logs"
[ -d "$S/log" ] && mv "$S/log" "$RIG_OUT/last-logs"
rm -rf "$S"
done_steps "node stopped; its logs: $RIG_OUT/last-logs"
