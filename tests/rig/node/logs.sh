#!/usr/bin/env bash
# Prints what a failed node scenario needs to be understood: the pods and their events, and the
# tail of every rig component's log (kubelet, containerd, the control plane, the registry).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
dir=$RIG_STATE/log
[ -d "$dir" ] || dir=$RIG_OUT/last-logs
if [ -f "$RIG_STATE/kubeconfig" ]; then
  echo "===== pods (all namespaces)"
  kubectl_rig get pods -A -o wide 2>&1
  echo "===== events (argocd)"
  kubectl_rig get events -n argocd --sort-by=.lastTimestamp 2>&1 | tail -n 40
fi
for log in "$dir"/*.log; do
  [ -f "$log" ] || continue
  case "$log" in */audit.log) continue ;; esac
  echo "===== $(basename "$log") (last 40 lines)"
  tail -n 40 "$log"
done
