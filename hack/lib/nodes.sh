# shellcheck shell=bash
# The nodes: node N (1-based) is rudder-node-N on 127.0.1.N with pod CIDR 10.244.N.0/24, its own
# containerd (containerd.sh) and a rudder-node-agent.

NODES_READY_TIMEOUT=${NODES_READY_TIMEOUT:-180}

nodes::name() { echo "rudder-node-$1"; }
nodes::ip() { echo "127.0.1.$1"; }
nodes::agent_daemon() { echo "node-agent-$1"; }

# nodes::indexes prints the index of every node that has state under $RUDDER_HOME/nodes.
nodes::indexes() {
  local dir
  for dir in "$RUDDER_HOME"/nodes/rudder-node-*; do
    [[ -d $dir ]] && echo "${dir##*-}"
  done | sort -n
  return 0
}

# The sysctls the cluster turns on, restored by `down` to what they were before the first `up`:
# ip_forward, because pods reach other nodes' bridges through the host; route_localnet, because the node
# IPs are loopback addresses and a NodePort on one is DNATed to a pod (kube-proxy sets it for the same
# reason; the service proxy then drops packets for loopback addresses that come from other hosts).
NODES_SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.route_localnet)

nodes::enable_sysctls() {
  local key saved
  for key in "${NODES_SYSCTLS[@]}"; do
    saved="$RUDDER_HOME/run/$key.orig"
    [[ -f $saved ]] || sysctl -n "$key" > "$saved"
    sysctl -qw "$key=1" || util::die "failed to set $key=1"
  done
}

nodes::restore_sysctls() {
  local key saved
  for key in "${NODES_SYSCTLS[@]}"; do
    saved="$RUDDER_HOME/run/$key.orig"
    [[ -f $saved ]] && { sysctl -qw "$key=$(<"$saved")" 2>/dev/null || true; }
  done
  return 0
}

# nodes::start_agent INDEX AGENT_BINARY (re)starts the node agent of node INDEX. It is restarted when the
# binary is newer than the running process, so re-running `up` after a rebuild deploys the new code.
nodes::start_agent() {
  local n=$1 bin=$2 node ip nd daemon
  node=$(nodes::name "$n"); ip=$(nodes::ip "$n"); nd="$RUDDER_HOME/nodes/$node"
  daemon=$(nodes::agent_daemon "$node")
  components::restart_if_rebuilt "$daemon" "$bin"
  mkdir -p "$nd/agent"
  util::start_daemon "$daemon" "$bin" \
    --kubeconfig "$nd/kubeconfig" \
    --health-bind-address "$ip:10248" \
    --node-name "$node" \
    --node-ip "$ip" \
    --kubelet-port 10250 \
    --container-runtime-endpoint "unix://$(containerd::socket "$node")" \
    --root-dir "$nd/agent" \
    --pod-cidr "10.244.$n.0/24" \
    --cluster-dns "$DNS_SERVICE_IP" \
    --cluster-domain "$DNS_CLUSTER_DOMAIN" \
    --tls-cert-file "$nd/pki/kubelet-serving.crt" \
    --tls-private-key-file "$nd/pki/kubelet-serving.key" \
    --client-ca-file "$(pki::dir)/ca.crt"
}

# nodes::up INDEX AGENT_BINARY: certs, containerd and (if the binary exists) the agent of one node.
nodes::up() {
  local n=$1 bin=$2 node; node=$(nodes::name "$n")
  pki::ensure_node "$node" "$(nodes::ip "$n")"
  containerd::start "$node" "$n"
  if [[ -x $bin ]]; then
    nodes::start_agent "$n" "$bin"
  else
    util::warn "no node agent binary at $bin: $node has a containerd but no agent"
  fi
}

# nodes::down INDEX stops node INDEX's agent, pods and containerd and removes its host state.
nodes::down() {
  local n=$1 node; node=$(nodes::name "$n")
  util::stop_daemon "$(nodes::agent_daemon "$node")" 15
  containerd::teardown "$node" "$n"
}

# nodes::remove_extra COUNT tears down nodes above COUNT left by an earlier, larger `up`, and deletes
# their Node objects.
nodes::remove_extra() {
  local count=$1 n node
  for n in $(nodes::indexes); do
    ((n > count)) || continue
    node=$(nodes::name "$n")
    util::log "removing $node (the cluster now has $count nodes)"
    nodes::down "$n"
    controlplane::kubectl delete node "$node" --ignore-not-found >&2 || true
    rm -rf "${RUDDER_HOME:?}/nodes/$node"
  done
}

nodes::_all_ready() {
  local count=$1 ready
  ready=$(controlplane::kubectl get nodes -o \
    jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null \
    | grep -c '^rudder-node-[0-9]*=True$')
  ((ready >= count))
}

# nodes::wait_ready COUNT waits until COUNT nodes report Ready, failing with the agents' log tails when an
# agent dies or the timeout passes.
nodes::wait_ready() {
  local count=$1 deadline=$((SECONDS + NODES_READY_TIMEOUT)) n
  until nodes::_all_ready "$count"; do
    for ((n = 1; n <= count; n++)); do
      util::require_alive "$(nodes::agent_daemon "$(nodes::name "$n")")"
    done
    if ((SECONDS >= deadline)); then
      for ((n = 1; n <= count; n++)); do util::log_tail "$(nodes::agent_daemon "$(nodes::name "$n")")" 15; done
      controlplane::kubectl get nodes -o wide >&2 || true
      util::die "nodes not Ready after ${NODES_READY_TIMEOUT}s"
    fi
    sleep 1
  done
  util::log "all $count nodes are Ready"
}
