#!/usr/bin/env bash
# Runs a whole rudder cluster on this machine: stock etcd and kube-apiserver, stock CoreDNS for cluster
# DNS, rudder's controllers, scheduler and service proxy, and N nodes (each a containerd plus a
# rudder-node-agent). The contract (paths, addresses,
# identities, flags) is hack/README.md.
#
#   hack/local-cluster.sh up [--nodes N] [--no-default-kubeconfig]   start or update (re-runnable)
#   hack/local-cluster.sh down                                       stop everything, remove $RUDDER_HOME
#   hack/local-cluster.sh status                                     what is running; fails if no cluster is up
#   hack/local-cluster.sh env                                        export lines: eval "$(... env)"
#   hack/local-cluster.sh stop-node N | start-node N                 stop or start node N's agent (its
#                                                                    containers keep running), to play a node failure
#
# Unless --no-default-kubeconfig is given, `up` links kubectl and helm into /usr/local/bin and writes
# ~/.kube/config, so the FLOW.md walkthrough runs as written — but only where that replaces nothing of
# anyone else's: an existing kubectl/helm or a kubeconfig that is not rudder's is left alone.
#
# Environment: RUDDER_HOME (/var/lib/rudder), RUDDER_CACHE (/var/cache/rudder), RUDDER_NODES (3),
# RUDDER_SKIP_BUILD=1 (use existing binaries; skip missing ones), RUDDER_BIN_DIR (target/release),
# KUBE_VERSION, ETCD_VERSION, CONTROLPLANE_READY_TIMEOUT, NODES_READY_TIMEOUT, COMPONENTS_SA_TIMEOUT.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUDDER_HOME=${RUDDER_HOME:-/var/lib/rudder}
RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}
RUDDER_NODES=${RUDDER_NODES:-3}

for lib in util stock pki controlplane dns containerd nodes components registry images; do
  # registry.sh and images.sh come from another part of the project and may not exist yet.
  # shellcheck source=/dev/null
  if [[ -f $REPO_ROOT/hack/lib/$lib.sh ]]; then source "$REPO_ROOT/hack/lib/$lib.sh"; fi
done

kubectl_dir() { echo "$RUDDER_CACHE/kubectl-layer/kubectl"; }

cmd_env() {
  echo "export KUBECONFIG=$RUDDER_HOME/admin.kubeconfig"
  echo "export PATH=$(kubectl_dir):\$PATH"
}

# is_ours PATH: a kubeconfig this launcher wrote (its cluster is named rudder and its server is ours).
is_ours() {
  grep -q '^- name: rudder$' "$1" 2>/dev/null && grep -q 'server: https://127.0.0.1:6443' "$1" 2>/dev/null
}

# install_user_defaults puts kubectl and helm on the PATH and makes the cluster kubectl's default, where
# that overwrites nothing that is not rudder's.
install_user_defaults() {
  local tool target
  for tool in kubectl helm; do
    target="$RUDDER_CACHE/kubectl-layer/$tool/$tool"
    if [[ ! -e /usr/local/bin/$tool || $(readlink /usr/local/bin/$tool) == "$RUDDER_CACHE"/* ]]; then
      ln -sfn "$target" "/usr/local/bin/$tool"
    elif [[ $(command -v "$tool") != "$target" ]]; then
      util::warn "left /usr/local/bin/$tool alone (not rudder's); use $target"
    fi
  done
  mkdir -p "$HOME/.kube"
  if [[ ! -e $HOME/.kube/config ]] || is_ours "$HOME/.kube/config"; then
    install -m 600 "$RUDDER_HOME/admin.kubeconfig" "$HOME/.kube/config"
  else
    util::warn "left ~/.kube/config alone (not rudder's); export KUBECONFIG=$RUDDER_HOME/admin.kubeconfig"
  fi
}

cmd_up() {
  local set_default=1
  while (($#)); do
    case $1 in
      --nodes) [[ ${2:-} =~ ^[1-9][0-9]?$ ]] || util::die "--nodes needs a count from 1 to 99"; RUDDER_NODES=$2; shift 2 ;;
      --nodes=*) RUDDER_NODES=${1#--nodes=}; shift ;;
      --set-default-kubeconfig) set_default=1; shift ;;
      --no-default-kubeconfig) set_default=0; shift ;;
      *) util::die "unknown flag for up: $1" ;;
    esac
  done
  [[ $RUDDER_NODES =~ ^[1-9][0-9]?$ ]] || util::die "RUDDER_NODES/--nodes must be a count from 1 to 99, got '$RUDDER_NODES'"
  ((EUID == 0)) || util::die "up must run as root (it runs containerd and configures the network)"
  local started=$SECONDS

  util::ensure_host_packages
  local etcd apiserver coredns
  etcd=$(stock::build_etcd) || util::die "failed to build etcd"
  apiserver=$(stock::build_kube kube-apiserver) || util::die "failed to build kube-apiserver"
  coredns=$(stock::build_coredns) || util::die "failed to build CoreDNS"
  stock::install_kubectl_helm >/dev/null || util::die "failed to unpack kubectl and helm"
  components::build "$REPO_ROOT"
  local controllers scheduler agent proxy
  controllers=$(components::binary "$REPO_ROOT" controllers)
  proxy=$(components::binary "$REPO_ROOT" service-proxy)
  scheduler=$(components::binary "$REPO_ROOT" scheduler)
  agent=$(components::binary "$REPO_ROOT" node-agent)

  mkdir -p "$RUDDER_HOME"/{run,logs,nodes}
  pki::ensure_control_plane
  controlplane::start_etcd "$etcd"
  controlplane::start_apiserver "$apiserver"
  controlplane::apply_rbac "$REPO_ROOT"
  dns::start "$REPO_ROOT" "$coredns"

  if declare -F registry::start >/dev/null; then
    registry::start || util::die "failed to start the local registry; see $RUDDER_HOME/logs/registry.log"
  else
    util::warn "hack/lib/registry.sh not there yet: no local registry"
  fi
  if declare -F images::ensure >/dev/null; then
    images::ensure || util::die "failed to build or push the cluster's images"
  else
    util::warn "hack/lib/images.sh not there yet: no images pushed"
  fi

  nodes::remove_extra "$RUDDER_NODES"
  nodes::enable_sysctls
  local n
  for ((n = 1; n <= RUDDER_NODES; n++)); do
    nodes::up "$n" "$agent"
  done
  if [[ -n $controllers ]]; then components::start_controllers "$controllers"; fi
  if [[ -n $scheduler ]]; then components::start_scheduler "$scheduler"; fi
  if [[ -n $proxy ]]; then components::start_service_proxy "$proxy"; fi

  # A bad flag or config makes a component exit at once: report that before any long wait.
  local started_components=()
  [[ -n $controllers ]] && started_components+=(rudder-controllers)
  [[ -n $scheduler ]] && started_components+=(rudder-scheduler)
  [[ -n $proxy ]] && started_components+=(rudder-service-proxy)
  started_components+=(coredns)
  if [[ -n $agent ]]; then
    for ((n = 1; n <= RUDDER_NODES; n++)); do started_components+=("$(nodes::agent_daemon "$(nodes::name "$n")")"); done
  fi
  sleep 1
  components::check_alive "${started_components[@]}"
  if [[ -n $agent ]]; then nodes::wait_ready "$RUDDER_NODES"; fi
  if [[ -n $controllers ]]; then components::wait_default_sa; fi
  components::check_alive "${started_components[@]}"

  if ((set_default)); then install_user_defaults; fi

  util::log "cluster up in $((SECONDS - started))s"
  controlplane::kubectl get nodes -o wide 2>/dev/null || true
  echo
  echo "Logs: $RUDDER_HOME/logs/   PIDs: $RUDDER_HOME/run/"
  echo "To use it:"
  cmd_env | sed 's/^/  /'
}

cmd_down() {
  local n
  # Components first so nothing recreates pods while they are being removed.
  components::stop
  for n in $(nodes::indexes); do
    util::stop_daemon "$(nodes::agent_daemon "$(nodes::name "$n")")" 15
  done
  for n in $(nodes::indexes); do
    containerd::teardown "$(nodes::name "$n")" "$n"
  done
  # Bridges of nodes whose state directory is already gone.
  local br
  for br in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '$2 ~ /^rudder-cni[0-9]+$/ { print $2 }'); do
    containerd::remove_bridge "${br#rudder-cni}"
  done
  containerd::clean_host_state
  dns::stop
  if declare -F registry::stop >/dev/null; then
    registry::stop
  else
    util::stop_daemon registry 10
  fi
  controlplane::stop
  nodes::restore_sysctls
  util::unmount_under "$RUDDER_HOME"
  if [[ -d $RUDDER_HOME ]]; then
    rm -rf "${RUDDER_HOME:?}" || util::die "could not remove $RUDDER_HOME"
    util::log "removed $RUDDER_HOME"
  fi
  util::log "down: nothing left running"
}

cmd_status() {
  if [[ ! -d $RUDDER_HOME/run ]]; then
    echo "no cluster (no $RUDDER_HOME/run)"
    return 1
  fi
  local f name pid
  printf '%-28s %-8s %s\n' COMPONENT PID STATE
  for f in "$RUDDER_HOME"/run/*.pid; do
    [[ -e $f ]] || continue
    name=${f##*/}; name=${name%.pid}
    if pid=$(util::daemon_pid "$name"); then
      printf '%-28s %-8s %s\n' "$name" "$pid" running
    else
      printf '%-28s %-8s %s\n' "$name" "$(cat "$f" 2>/dev/null)" "NOT RUNNING (log: $(util::log_file "$name"))"
    fi
  done
  echo
  if controlplane::_readyz; then
    echo "kube-apiserver: ready (https://127.0.0.1:6443)"
    controlplane::kubectl get nodes -o wide 2>/dev/null || true
  else
    echo "kube-apiserver: not ready"
    return 1
  fi
}

# cmd_node_agent stop|start N: a node agent going away and coming back, as when a kubelet dies.
cmd_node_agent() {
  local action=$1 n=${2:-}
  [[ $n =~ ^[1-9][0-9]?$ && -d $RUDDER_HOME/nodes/$(nodes::name "$n") ]] || util::die "no node $n in this cluster"
  local daemon; daemon=$(nodes::agent_daemon "$(nodes::name "$n")")
  case $action in
    stop) util::stop_daemon "$daemon" 15 ;;
    start) nodes::start_agent "$n" "$(components::binary "$REPO_ROOT" node-agent)" ;;
  esac
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    stop-node) cmd_node_agent stop "$@" ;;
    start-node) cmd_node_agent start "$@" ;;
    *) echo "usage: $0 up [--nodes N] [--no-default-kubeconfig] | down | status | env | stop-node N | start-node N" >&2; exit 2 ;;
  esac
}

main "$@"
