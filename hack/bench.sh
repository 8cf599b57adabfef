#!/usr/bin/env bash
# hack/bench.sh scheduler [--cases NAME,...] [--quick] [--timeout SECONDS] [--schedulers rudder,kube-scheduler,noop]
# hack/bench.sh proxy [--proxies rudder,kube] [--services N] [--endpoints N] [--changes N] [--quick]
# hack/bench.sh controllers [--managers rudder,kube] [--replicas N] [--quick] [--kube-content-type application/json]
#
# The scheduler benchmark (modelled on upstream's scheduler_perf): starts a throwaway control plane (its
# own etcd on 127.0.0.1:23790/23800 and kube-apiserver on 127.0.0.1:16443, certificates under a temp dir),
# runs tests/benches/scheduler.rs against it with rudder-scheduler, the stock kube-scheduler and a no-op
# binder one after the other, prints one table per case (also written to /var/tmp/rudder-bench/), and tears
# the control plane down on every exit path. It never touches the shared local cluster (6443/2379).
# The control plane and its teardown are hack/lib/bench.sh's, shared with the other benchmarks' runners
# (`hack/bench.sh proxy` → tests/bench/proxy/run.sh, `hack/bench.sh controllers` → tests/bench/controllers/run.sh).
#
# Knobs: RUDDER_CACHE (stock binaries, default /var/cache/rudder), KUBE_VERSION (v1.35.4),
# ETCD_VERSION (v3.6.16), RUDDER_BIN_DIR (default target/release), BENCH_KEEP=1 (keep the temp dir).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/bench.sh
source "$REPO/hack/lib/bench.sh"

BENCH_ETCD_CLIENT=127.0.0.1:23790
BENCH_ETCD_PEER=127.0.0.1:23800
BENCH_APISERVER_PORT=16443

usage() { bench::usage "${BASH_SOURCE[0]}" 'usage: '; }

# The service-proxy benchmark (issue #5) has its own runner: a network namespace, etcd on
# 127.0.0.1:23793/23803, kube-apiserver on 10.250.0.1:16447 (tests/bench/proxy/README.md).
[[ ${1:-} == proxy ]] && exec "$REPO/tests/bench/proxy/run.sh" "${@:2}"
# The controllers benchmark (issue #4) likewise (tests/bench/controllers/run.sh).
[[ ${1:-} == controllers && -x $REPO/tests/bench/controllers/run.sh ]] \
  && exec "$REPO/tests/bench/controllers/run.sh" "${@:2}"
[[ ${1:-} == scheduler ]] || usage
shift
BENCH_ARGS=()
while (($#)); do
  case $1 in
    --quick) BENCH_ARGS+=(--quick) ;;
    --cases | --timeout | --schedulers)
      (($# >= 2)) || usage
      BENCH_ARGS+=("$1" "$2"); shift ;;
    --cases=* | --timeout=* | --schedulers=*) BENCH_ARGS+=("$1") ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
  shift
done

# The launcher's helpers, pointed at a private home: PID files, logs and certificates all live there, so
# nothing here can stop or overwrite a daemon of the shared cluster.
RUDDER_HOME=$(mktemp -d /tmp/rudder-bench.XXXXXX)
export RUDDER_HOME RUDDER_CACHE
# shellcheck source=hack/lib/util.sh
source "$REPO/hack/lib/util.sh"
# shellcheck source=hack/lib/pki.sh
source "$REPO/hack/lib/pki.sh"
# shellcheck source=hack/lib/stock.sh
source "$REPO/hack/lib/stock.sh"

# The stock binaries, built from their Go modules on first use and cached by version.
ETCD_BIN=$(stock::build_etcd) || util::die "failed to build etcd $ETCD_VERSION"
APISERVER_BIN=$(stock::build_kube kube-apiserver) || util::die "failed to build kube-apiserver $KUBE_VERSION"
KUBE_SCHEDULER_BIN=$(stock::build_kube kube-scheduler) || util::die "failed to build kube-scheduler $KUBE_VERSION"
RUDDER_SCHEDULER_BIN=$RUDDER_BIN_DIR/rudder-scheduler

# Read by hack/lib/bench.sh's teardown; on failure the temp dir (with the logs) is kept.
BENCH_ETCD_NAME=bench-etcd
BENCH_APISERVER_NAME=bench-kube-apiserver
BENCH_APISERVER_STOP_SECONDS=15
bench::install_teardown

bench::preflight "$BENCH_ETCD_CLIENT" "$BENCH_ETCD_PEER" "$BENCH_APISERVER_PORT" \
  "$ETCD_BIN" "$APISERVER_BIN" "$KUBE_SCHEDULER_BIN"

bench::build_component rudder-scheduler "$RUDDER_SCHEDULER_BIN"
BENCH_EXE=$(bench::build_exe scheduler)
"$BENCH_EXE" --check-args --rudder-scheduler "$RUDDER_SCHEDULER_BIN" --kube-scheduler "$KUBE_SCHEDULER_BIN" \
  "${BENCH_ARGS[@]}" || exit 2

bench::make_pki "https://127.0.0.1:$BENCH_APISERVER_PORT" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc"
bench::start_etcd "$ETCD_BIN" bench "$BENCH_ETCD_CLIENT" "$BENCH_ETCD_PEER" --quota-backend-bytes 8589934592

# Loopback only; no ServiceAccount admission (nothing creates the `default` ServiceAccount here) nor
# TaintNodesByCondition (its not-ready taint on new nodes is removed only by a node lifecycle controller,
# and none runs); the in-flight limits raised, so the apiserver is not the first thing to throttle.
bench::start_apiserver "$APISERVER_BIN" "$BENCH_ETCD_CLIENT" 127.0.0.1 "$BENCH_APISERVER_PORT" \
  --disable-admission-plugins=ServiceAccount,TaintNodesByCondition \
  --service-cluster-ip-range=10.98.0.0/16 \
  --max-requests-inflight=3000 --max-mutating-requests-inflight=1000
bench::wait_apiserver_ready "https://127.0.0.1:$BENCH_APISERVER_PORT"
util::log "kube-apiserver is ready on https://127.0.0.1:$BENCH_APISERVER_PORT"

bench::run "$BENCH_EXE" \
  --kubeconfig "$RUDDER_HOME/admin.kubeconfig" \
  --rudder-scheduler "$RUDDER_SCHEDULER_BIN" \
  --kube-scheduler "$KUBE_SCHEDULER_BIN" \
  --work-dir "$RUDDER_HOME" \
  "${BENCH_ARGS[@]}"
