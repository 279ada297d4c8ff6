# Shared by the node rig's scripts: where things live, progress with timings, PID bookkeeping.
# Sourced, not run.
rig_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
rig_here="$rig_root/tests/rig/node"
# Everything the rig builds (binaries, images) and runs (state, logs, PIDs) lives under these.
RIG_OUT=${RIG_OUT:-$rig_root/target/rig/node}
RIG_STATE=${RIG_STATE:-$RIG_OUT/state}
RIG_BIN="$RIG_OUT/bin"
RIG_IMAGES="$RIG_OUT/images"

# The network the rig makes: a bridge of its own, the pods on it, Services on a range no route
# leads out of. Nothing is aimed at any other address.
RIG_BRIDGE=mtlsrig0
RIG_GATEWAY=10.88.0.1
RIG_POD_SUBNET=10.88.0.0/24
RIG_POD_CIDR=10.88.0.0/16
RIG_SERVICE_CIDR=10.96.0.0/16
RIG_APISERVER="https://$RIG_GATEWAY:6443"
RIG_REGISTRY=127.0.0.1:5000
RIG_K8S_VERSION=v1.34.4
# The CoreDNS kubeadm v1.34.4 names, as the kind rig runs: one build serves both rigs.
RIG_COREDNS_VERSION=v1.12.1
# The CRDs the scenarios validate against (build.sh: crds/).
RIG_OPENREPORTS_VERSION=v0.2.1
RIG_KYVERNO_VERSION=v1.15.2
# The Operator's ArgoCD resource the Operator-shaped scenario writes its fix into.
RIG_ARGOCD_OPERATOR_VERSION=v0.18.0

rig_step_started=0
rig_started=$(date +%s)

# `step "what"` prints what starts; the next step (or `done_steps`) prints how long it took.
step() {
  local now
  now=$(date +%s)
  if [ "$rig_step_started" -ne 0 ]; then
    echo "[rig]   ... $((now - rig_step_started))s" >&2
  fi
  rig_step_started=$now
  echo "[rig] $*" >&2
}

done_steps() {
  step "$1 (total $(($(date +%s) - rig_started))s)"
  rig_step_started=0
}

die() {
  echo "[rig] error: $*" >&2
  exit 2
}

pidfile() { echo "$RIG_STATE/pids/$1.pid"; }

# Is the process named by its PID file alive?
alive() {
  local f
  f=$(pidfile "$1")
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# `spawn NAME CMD...`: start a long-running component in the background, its output in
# $RIG_STATE/log/NAME.log and its PID in $RIG_STATE/pids/NAME.pid.
spawn() {
  local name=$1
  shift
  mkdir -p "$RIG_STATE/log" "$RIG_STATE/pids"
  if alive "$name"; then
    return 0
  fi
  setsid "$@" >>"$RIG_STATE/log/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# `stop NAME`: TERM the process by its PID, KILL it after 10 s.
stop() {
  local f pid i
  f=$(pidfile "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# `wait_for WHAT SECONDS CMD...`: poll CMD every half second until it succeeds, bounded.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for i in $(seq 1 $((secs * 2))); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  die "$what not ready after ${secs}s (logs: $RIG_STATE/log/)"
}

kubectl_rig() {
  "$RIG_BIN/kubectl" --kubeconfig "$RIG_STATE/kubeconfig" "$@"
}

ctr_rig() {
  ctr --address "$RIG_STATE/containerd/containerd.sock" --namespace k8s.io "$@"
}
