#!/usr/bin/env bash
# tests/bench/controllers/run.sh [--managers rudder,kube] [--replicas N] [--timeout SECONDS] [--quick]
#   [--kube-content-type application/json]
# (normally run as `hack/bench.sh controllers …`)
#
# The controllers benchmark (issue #4): a throwaway etcd (127.0.0.1:23795/23805) and kube-apiserver
# (127.0.0.1:16449, certificates under a temp dir), then tests/benches/controllers.rs, which measures the
# apiserver's raw pod-create ceiling and starts rudder-controllers and the stock kube-controller-manager one
# after the other (deployment, replicaset and garbage-collector controllers only). Prints the tables (also
# written to /var/tmp/rudder-bench/) and tears everything down on every exit path. It never touches the
# shared cluster (6443/2379).
#
# Knobs: RUDDER_CACHE (default /var/cache/rudder), KUBE_VERSION (v1.35.4), ETCD_VERSION (v3.6.16),
# RUDDER_BIN_DIR (default target/release), BENCH_KEEP=1 (keep the temp dir with all logs; on a failure
# without it, the logs are copied to /var/tmp/rudder-bench/controllers-logs-<UTC time>/).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=hack/lib/bench.sh
source "$REPO/hack/lib/bench.sh"

BENCH_ETCD_CLIENT=127.0.0.1:23795
BENCH_ETCD_PEER=127.0.0.1:23805
BENCH_APISERVER_PORT=16449

usage() { bench::usage "${BASH_SOURCE[0]}"; }

BENCH_ARGS=()
while (($#)); do
  case $1 in
    --quick) BENCH_ARGS+=(--quick) ;;
    --managers | --replicas | --timeout | --concurrency | --kube-api-qps | --kube-content-type)
      (($# >= 2)) || usage
      BENCH_ARGS+=("$1" "$2"); shift ;;
    --managers=* | --replicas=* | --timeout=* | --concurrency=* | --kube-api-qps=* | --kube-content-type=*) BENCH_ARGS+=("$1") ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
  shift
done

# The launcher's helpers, pointed at a private home: PID files, logs and certificates all live there, so
# nothing here can stop or overwrite a daemon of the shared cluster.
RUDDER_HOME=$(mktemp -d /tmp/rudder-bench-controllers.XXXXXX)
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
KCM_BIN=$(stock::build_kube kube-controller-manager) || util::die "failed to build kube-controller-manager $KUBE_VERSION"
RUDDER_CONTROLLERS_BIN=$RUDDER_BIN_DIR/rudder-controllers
APISERVER_URL=https://127.0.0.1:$BENCH_APISERVER_PORT

# Read by hack/lib/bench.sh's teardown; on failure the logs are saved to the output directory.
BENCH_ETCD_NAME=bench-controllers-etcd
BENCH_APISERVER_NAME=bench-controllers-kube-apiserver
BENCH_APISERVER_STOP_SECONDS=15
BENCH_SAVE_LOGS_AS=controllers-logs
bench::install_teardown

bench::preflight "$BENCH_ETCD_CLIENT" "$BENCH_ETCD_PEER" "$BENCH_APISERVER_PORT" \
  "$ETCD_BIN" "$APISERVER_BIN" "$KCM_BIN"

bench::build_component rudder-controllers "$RUDDER_CONTROLLERS_BIN"
BENCH_EXE=$(bench::build_exe controllers)
"$BENCH_EXE" --check-args --rudder-controllers "$RUDDER_CONTROLLERS_BIN" --kube-controller-manager "$KCM_BIN" \
  "${BENCH_ARGS[@]}" || exit 2

bench::make_pki "$APISERVER_URL" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc"
bench::start_etcd "$ETCD_BIN" bench-controllers "$BENCH_ETCD_CLIENT" "$BENCH_ETCD_PEER" \
  --quota-backend-bytes 8589934592

# Loopback only; no ServiceAccount admission (nothing creates the `default` ServiceAccount here); the
# in-flight limits raised, so the apiserver is not the first thing to throttle.
bench::start_apiserver "$APISERVER_BIN" "$BENCH_ETCD_CLIENT" 127.0.0.1 "$BENCH_APISERVER_PORT" \
  --disable-admission-plugins=ServiceAccount \
  --service-cluster-ip-range=10.97.0.0/16 \
  --max-requests-inflight=3000 --max-mutating-requests-inflight=1000
bench::wait_apiserver_ready "$APISERVER_URL"
util::log "kube-apiserver is ready on $APISERVER_URL"

bench::run "$BENCH_EXE" \
  --kubeconfig "$RUDDER_HOME/admin.kubeconfig" \
  --rudder-controllers "$RUDDER_CONTROLLERS_BIN" \
  --kube-controller-manager "$KCM_BIN" \
  --work-dir "$RUDDER_HOME" \
  "${BENCH_ARGS[@]}"
