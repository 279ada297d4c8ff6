#!/usr/bin/env bash
# The kind rig's container engine: Debian's dockerd on a containerd of its own, both started and
# stopped by PID, their sockets, data and logs under target/rig/kind. Root only.
#   engine.sh up     start (idempotent); records the host settings a kind node changes
#   engine.sh down   delete every container and network it holds, stop both daemons, restore the
#                    host settings and remove the /lib/modules docker created (idempotent)
# Export DOCKER_HOST=unix://target/rig/kind/state/docker.sock to talk to it (lib.sh does).
#
# Kept off the host: --iptables=false and --bridge=none (no firewall rules, no docker0; containers
# use user-defined bridge networks such as kind's, which the rig's docker creates and removes),
# --ip-forward=false (kind's nodes share one bridge; pods route inside their node). The nodes'
# upstream DNS is dns-refuse.py on the network's gateway (see there). containerd 1.6
# still puts its shims' sockets under /run/containerd/s (a fixed path): they go when their
# containers do.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || die "the kind rig's engine needs root"
S=$RIG_STATE

up() {
  for tool in dockerd containerd runc docker; do
    command -v "$tool" >/dev/null || die "$tool is missing (.ci/run installs docker.io, containerd, runc)"
  done
  mkdir -p "$S/pids" "$S/log"
  if ! [ -f "$S/host.before" ]; then
    {
      for name in $KIND_SYSCTLS; do echo "$name $(sysctl -n "$name")"; done
      if [ -e /lib/modules ]; then echo "lib-modules present"; else echo "lib-modules absent"; fi
    } >"$S/host.before"
  fi
  if ! alive kind-containerd; then
    cat >"$S/containerd.toml" <<TOML
version = 2
root = "$RIG_OUT/containerd"
state = "$S/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$KIND_CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$RIG_OUT/containerd-opt"
TOML
    spawn kind-containerd containerd --config "$S/containerd.toml"
    wait_for "the kind rig's containerd" 30 ctr --address "$KIND_CONTAINERD_SOCK" version
  fi
  if ! alive kind-dockerd; then
    echo '{}' >"$S/daemon.json"
    local runtime=()
    if lacks_sys_resource; then
      # This machine's containers cannot hold CAP_SYS_RESOURCE: see runc-wrapper.
      runtime=(--add-runtime "rig-runc=$kind_here/runc-wrapper" --default-runtime rig-runc)
      echo "[rig] CAP_SYS_RESOURCE is not in this machine's bounding set: runc goes through tests/rig/kind/runc-wrapper" >&2
    fi
    spawn kind-dockerd dockerd --config-file "$S/daemon.json" --containerd "$KIND_CONTAINERD_SOCK" \
      -H "unix://$KIND_DOCKER_SOCK" --data-root "$RIG_OUT/docker" --exec-root "$S/docker-exec" \
      --pidfile "$S/docker.pid" --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
      --dns "$KIND_DNS" \
      "${runtime[@]}"
    wait_for "the kind rig's dockerd" 60 docker version
  fi
  # kind's network, made here with a fixed range (kind uses a network named `kind` that exists),
  # and on its bridge a second host address where dns-refuse.py answers docker's embedded DNS.
  # (Not the gateway: kind's nodes redirect the gateway's port 53 to the embedded DNS itself.)
  if ! docker network inspect kind >/dev/null 2>&1; then
    docker network create --subnet "$KIND_SUBNET" --gateway "$KIND_GATEWAY" \
      -o com.docker.network.bridge.name=kindrig0 kind >/dev/null
  fi
  ip addr show dev kindrig0 | grep -q "inet $KIND_DNS/" || ip addr add "$KIND_DNS/24" dev kindrig0
  if ! alive kind-dns; then
    spawn kind-dns python3 "$kind_here/dns-refuse.py" "$KIND_DNS"
  fi
}

down() {
  [ -d "$S" ] || { echo "[rig] the kind engine is not running" >&2; return 0; }
  if alive kind-dockerd; then
    local all
    all=$(docker ps -aq 2>/dev/null || true)
    [ -z "$all" ] || docker rm -f -v $all >/dev/null 2>&1 || true
    for net in $(docker network ls -q --filter type=custom 2>/dev/null); do
      docker network rm "$net" >/dev/null 2>&1 || true
    done
  fi
  stop kind-dns
  stop kind-dockerd
  stop kind-containerd
  # Shims outlive containerd by design; containerd recorded their PIDs under its state.
  for pid in "$S"/containerd-state/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [ -f "$pid" ] && kill -KILL "$(cat "$pid")" 2>/dev/null || true
  done
  { grep -o " $RIG_OUT/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done
  if [ -f "$S/host.before" ]; then
    while read -r name value; do
      case "$name" in
        lib-modules) [ "$value" = absent ] && rmdir /lib/modules 2>/dev/null || true ;;
        *) sysctl -qw "$name=$value" 2>/dev/null || true ;;
      esac
    done <"$S/host.before"
  fi
  rm -rf "$RIG_OUT/last-logs"
  mv "$S/log" "$RIG_OUT/last-logs" 2>/dev/null || true
  rm -rf "$S"
  echo "[rig] the kind engine is stopped; its logs: $RIG_OUT/last-logs" >&2
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: engine.sh up|down" ;;
esac
