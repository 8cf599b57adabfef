#!/usr/bin/env bash
# tests/bench/proxy/run.sh [--proxies rudder,kube] [--services N] [--endpoints N] [--changes N] [--quick]
# (normally run as `hack/bench.sh proxy …`)
#
# The service-proxy benchmark (issue #5): makes a network namespace (netns rudder-bench, veth
# rbench0 10.250.0.1/24 on the host ↔ rbench1 10.250.0.2/24 inside), a throwaway etcd
# (127.0.0.1:23793/23803) and kube-apiserver (10.250.0.1:16447, certificates under a temp dir), runs
# tests/benches/service_proxy.rs, which starts rudder-service-proxy and stock kube-proxy (nftables mode)
# inside the namespace one after the other, prints the table (also written to /var/tmp/rudder-bench/),
# and tears everything down on every exit path. Every nft command runs inside the namespace: the host's
# ruleset (the shared cluster's `table ip rudder-proxy`) is never touched.
#
# Knobs: RUDDER_CACHE (default /var/cache/rudder), KUBE_VERSION (v1.35.4), ETCD_VERSION (v3.6.16),
# RUDDER_BIN_DIR (default target/release), BENCH_KEEP=1 (keep the temp dir with all logs; on a failure
# without it, the logs are copied to /var/tmp/rudder-bench/service-proxy-logs-<UTC time>/).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=hack/lib/bench.sh
source "$REPO/hack/lib/bench.sh"

NETNS=rudder-bench
VETH_HOST=rbench0
VETH_NS=rbench1
HOST_IP=10.250.0.1
NS_IP=10.250.0.2
BENCH_ETCD_CLIENT=127.0.0.1:23793
BENCH_ETCD_PEER=127.0.0.1:23803
BENCH_APISERVER_PORT=16447

usage() { bench::usage "${BASH_SOURCE[0]}"; }

BENCH_ARGS=()
QUICK=0
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --proxies | --services | --endpoints | --changes | --change-interval-ms)
      (($# >= 2)) || usage
      BENCH_ARGS+=("$1" "$2"); shift ;;
    --proxies=* | --services=* | --endpoints=* | --changes=* | --change-interval-ms=*) BENCH_ARGS+=("$1") ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
  shift
done
# --quick: 100 Services and 5 changes, unless given explicitly.
if ((QUICK)); then
  [[ " ${BENCH_ARGS[*]} " == *" --services"* ]] || BENCH_ARGS+=(--services 100)
  [[ " ${BENCH_ARGS[*]} " == *" --changes"* ]] || BENCH_ARGS+=(--changes 5)
fi

# The launcher's helpers, pointed at a private home: PID files, logs and certificates all live there, so
# nothing here can stop or overwrite a daemon of the shared cluster.
RUDDER_HOME=$(mktemp -d /tmp/rudder-bench-proxy.XXXXXX)
export RUDDER_HOME RUDDER_CACHE KUBE_VERSION
# shellcheck source=hack/lib/util.sh
source "$REPO/hack/lib/util.sh"
# shellcheck source=hack/lib/pki.sh
source "$REPO/hack/lib/pki.sh"
# shellcheck source=hack/lib/stock.sh
source "$REPO/hack/lib/stock.sh"

# The stock binaries, built from their Go modules on first use and cached by version.
ETCD_BIN=$(stock::build_etcd) || util::die "failed to build etcd $ETCD_VERSION"
APISERVER_BIN=$(stock::build_kube kube-apiserver) || util::die "failed to build kube-apiserver $KUBE_VERSION"
RUDDER_PROXY_BIN=$RUDDER_BIN_DIR/rudder-service-proxy
APISERVER_URL=https://$HOST_IP:$BENCH_APISERVER_PORT
NETNS_MADE=0

# bench::extra_teardown (called by hack/lib/bench.sh's teardown) kills what still runs inside the
# namespace (only processes of that namespace: `ip netns pids`), then deletes it; the veth pair goes with it.
bench::extra_teardown() {
  ((NETNS_MADE)) || return 0
  local pid
  for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  ip netns delete "$NETNS" 2>/dev/null || util::warn "could not delete netns $NETNS"
  ip link delete "$VETH_HOST" 2>/dev/null || true
}

# Read by hack/lib/bench.sh's teardown; on failure the logs are saved to the output directory.
BENCH_ETCD_NAME=bench-proxy-etcd
BENCH_APISERVER_NAME=bench-proxy-kube-apiserver
BENCH_APISERVER_STOP_SECONDS=5
BENCH_SAVE_LOGS_AS=service-proxy-logs
bench::install_teardown

bench::preflight "$BENCH_ETCD_CLIENT" "$BENCH_ETCD_PEER" "$BENCH_APISERVER_PORT" "$ETCD_BIN" "$APISERVER_BIN"
if ip netns list | grep -qw "$NETNS"; then
  util::die "netns $NETNS exists (another benchmark running? remove it with: ip netns delete $NETNS)"
fi
command -v nft >/dev/null || util::die "nft not found (apt-get install nftables)"

# Stock kube-proxy, built from the same wrapper module as the apiserver (cached after the first time).
# Failing to build it is not fatal: the benchmark then reports rudder's numbers alone.
KUBE_PROXY_BIN=$(stock::build_kube kube-proxy) || {
  util::warn "could not build kube-proxy $KUBE_VERSION; only rudder-service-proxy will be measured"
  KUBE_PROXY_BIN=$RUDDER_CACHE/bin/kube-proxy-$KUBE_VERSION
}
bench::build_component rudder-service-proxy "$RUDDER_PROXY_BIN"
BENCH_EXE=$(bench::build_exe service_proxy)
"$BENCH_EXE" --check-args --rudder-proxy "$RUDDER_PROXY_BIN" --kube-proxy "$KUBE_PROXY_BIN" "${BENCH_ARGS[@]}" || exit 2

util::log "network namespace $NETNS ($VETH_HOST $HOST_IP ↔ $VETH_NS $NS_IP)"
ip netns add "$NETNS" || util::die "failed to create netns $NETNS"
NETNS_MADE=1
ip link add "$VETH_HOST" type veth peer name "$VETH_NS" || util::die "failed to create the veth pair"
ip link set "$VETH_NS" netns "$NETNS"
ip addr add "$HOST_IP/24" dev "$VETH_HOST"
ip link set "$VETH_HOST" up
ip netns exec "$NETNS" ip addr add "$NS_IP/24" dev "$VETH_NS"
ip netns exec "$NETNS" ip link set "$VETH_NS" up
ip netns exec "$NETNS" ip link set lo up

bench::make_pki "$APISERVER_URL" "IP:$HOST_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc"
bench::start_etcd "$ETCD_BIN" bench-proxy "$BENCH_ETCD_CLIENT" "$BENCH_ETCD_PEER"

# On the veth's host address only, so the proxies reach it from inside the namespace; service range
# 10.99.0.0/16, from which the benchmark picks explicit cluster IPs.
bench::start_apiserver "$APISERVER_BIN" "$BENCH_ETCD_CLIENT" "$HOST_IP" "$BENCH_APISERVER_PORT" \
  --disable-admission-plugins=ServiceAccount \
  --service-cluster-ip-range=10.99.0.0/16 \
  --max-requests-inflight=1000 --max-mutating-requests-inflight=500
bench::wait_apiserver_ready "$APISERVER_URL" ip netns exec "$NETNS"
util::log "kube-apiserver is ready on $APISERVER_URL (checked from inside $NETNS)"

bench::run "$BENCH_EXE" \
  --kubeconfig "$RUDDER_HOME/admin.kubeconfig" \
  --netns "$NETNS" \
  --node-ip "$NS_IP" \
  --rudder-proxy "$RUDDER_PROXY_BIN" \
  --kube-proxy "$KUBE_PROXY_BIN" \
  --work-dir "$RUDDER_HOME" \
  "${BENCH_ARGS[@]}"
