# shellcheck shell=bash
# Cluster DNS: stock CoreDNS with its kubernetes plugin, run on the host like the control plane (a pod
# would need an image of it and a route to the host's resolver; the host process needs neither). It
# answers on the host address (controlplane.sh) port 53; hack/addons/coredns.yaml gives it RBAC and the
# kube-dns Service (10.96.0.10) whose only endpoint is that address. Its health and readiness endpoints
# are upstream's ports, on loopback only.

DNS_SERVICE_IP=10.96.0.10
DNS_CLUSTER_DOMAIN=cluster.local
DNS_READY_URL=http://127.0.0.1:8181/ready
DNS_READY_TIMEOUT=${DNS_READY_TIMEOUT:-60}

dns::dir() { echo "$RUDDER_HOME/coredns"; }

# dns::write_corefile FILE: kubeadm's defaults, except where it listens.
dns::write_corefile() {
  cat > "$1" <<COREFILE
.:53 {
    bind $CONTROLPLANE_HOST_IP
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes $DNS_CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $(dns::dir)/kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus 127.0.0.1:9153
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30 {
        disable success $DNS_CLUSTER_DOMAIN
        disable denial $DNS_CLUSTER_DOMAIN
    }
    loadbalance
}
COREFILE
}

# dns::start REPO COREDNS_BINARY applies the add-on objects, then starts CoreDNS and waits until its
# kubernetes plugin has synced.
dns::start() {
  local repo=$1 bin=$2 dir; dir=$(dns::dir)
  mkdir -p "$dir"
  pki::ensure_cert "$(pki::dir)/coredns" "/CN=system:coredns" clientAuth
  pki::write_kubeconfig "$dir/kubeconfig" system:coredns "$(pki::dir)/coredns"
  dns::write_corefile "$dir/Corefile"
  controlplane::kubectl apply -f "$repo/hack/addons/coredns.yaml" >&2 || util::die "failed to apply hack/addons/coredns.yaml"
  components::restart_if_rebuilt coredns "$bin"
  util::start_daemon coredns "$bin" -conf "$dir/Corefile"
  if ! util::wait_for "CoreDNS ready" "$DNS_READY_TIMEOUT" curl -fsS "$DNS_READY_URL"; then
    util::log_tail coredns
    util::die "CoreDNS not ready on $CONTROLPLANE_HOST_IP:53 after ${DNS_READY_TIMEOUT}s"
  fi
}

dns::stop() { util::stop_daemon coredns 10; }
