# shellcheck shell=bash
# The benchmarks' throwaway control plane (etcd + kube-apiserver from the cached stock binaries, certificates
# under $RUDDER_HOME) and its teardown, shared by hack/bench.sh (scheduler) and tests/bench/proxy/run.sh.
# Source it first (with REPO set): it sets the knobs' defaults below; its functions call hack/lib/util.sh
# and hack/lib/pki.sh, sourced later, once RUDDER_HOME points at the benchmark's temp dir.
#
# The caller sets, before bench::install_teardown:
#   BENCH_ETCD_NAME, BENCH_APISERVER_NAME   daemon names (PID files and logs under $RUDDER_HOME)
#   BENCH_APISERVER_STOP_SECONDS            how long the teardown waits for the apiserver to stop
#   BENCH_OUT_DIR                           where tables (and saved logs) go
#   BENCH_SAVE_LOGS_AS (optional)           on failure, copy the logs to $BENCH_OUT_DIR/<this>-<UTC time>/
#                                           and remove the temp dir; unset: keep the temp dir instead
# and may define bench::extra_teardown (run after the children are stopped, before the daemons).

KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}
RUDDER_BIN_DIR=${RUDDER_BIN_DIR:-$REPO/target/release}
BENCH_OUT_DIR=/var/tmp/rudder-bench

# bench::usage SCRIPT [PREFIX] prints SCRIPT's synopsis (its comment lines up to the first empty "#"),
# each "# " replaced by PREFIX, and exits 2.
bench::usage() {
  sed -n '2,/^#$/p' "$1" | sed '$d' | sed "s/^# /${2:-}/" >&2
  exit 2
}

# bench::stop_children stops the processes the benchmark binary recorded (it stops them itself; this is
# for when it was killed first). Each PID file holds "PID START_TIME" so a reused PID is left alone.
bench::stop_children() {
  local f pid start
  for f in "$RUDDER_HOME"/run/child-*.pid; do
    [[ -e $f ]] || continue
    read -r pid start < "$f" || continue
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if util::pid_alive "$pid" && [[ $(util::proc_start_time "$pid") == "$start" ]]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

bench::teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n ${BENCH_PID:-} ]] && util::pid_alive "$BENCH_PID"; then
    kill -TERM "$BENCH_PID" 2>/dev/null || true
    wait "$BENCH_PID" 2>/dev/null || true
  fi
  bench::stop_children
  if declare -F bench::extra_teardown >/dev/null; then
    bench::extra_teardown
  fi
  util::stop_daemon "$BENCH_APISERVER_NAME" "$BENCH_APISERVER_STOP_SECONDS"
  util::stop_daemon "$BENCH_ETCD_NAME" 15
  if [[ ${BENCH_KEEP:-0} == 1 || (-z ${BENCH_SAVE_LOGS_AS:-} && $rc != 0 && -d $RUDDER_HOME/logs) ]]; then
    util::log "kept $RUDDER_HOME (logs under logs/)"
  else
    # With BENCH_SAVE_LOGS_AS the logs outlive the temp dir on failure (certificates and etcd data do not).
    if [[ -n ${BENCH_SAVE_LOGS_AS:-} && $rc != 0 && -d $RUDDER_HOME/logs ]]; then
      local saved
      saved="$BENCH_OUT_DIR/$BENCH_SAVE_LOGS_AS-$(date -u +%Y%m%dT%H%M%SZ)"
      mkdir -p "$saved" && cp -r "$RUDDER_HOME/logs/." "$saved/" && util::log "logs saved to $saved"
    fi
    rm -rf "$RUDDER_HOME"
  fi
  exit "$rc"
}

bench::install_teardown() {
  trap bench::teardown EXIT
  trap 'exit 130' INT TERM
}

bench::port_free() { ! (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# bench::preflight ETCD_CLIENT ETCD_PEER APISERVER_PORT BINARY... fails unless every stock binary is
# there (the runners build them with hack/lib/stock.sh first) and every port is free.
bench::preflight() {
  local client=$1 peer=$2 api_port=$3 f port
  shift 3
  for f in "$@"; do
    [[ -x $f ]] || util::die "missing stock binary $f"
  done
  for port in "${client##*:}" "${peer##*:}" "$api_port"; do
    bench::port_free "$port" || util::die "port $port is in use (another benchmark running?)"
  done
}

# bench::build_component PACKAGE BINARY: with the default RUDDER_BIN_DIR (this checkout's target/release)
# runs `cargo build --release -p PACKAGE` every time, which is quick when nothing changed and never
# measures a stale binary; with another RUDDER_BIN_DIR only checks that BINARY is there.
bench::build_component() {
  local package=$1 binary=$2
  if [[ $RUDDER_BIN_DIR != "$REPO/target/release" ]]; then
    [[ -x $binary ]] || util::die "$binary not found (RUDDER_BIN_DIR=$RUDDER_BIN_DIR)"
    return 0
  fi
  util::log "building $package (release)"
  (cd "$REPO" && cargo build --release -p "$package") || util::die "failed to build $package"
}

# bench::build_exe NAME prints the executable of the rudder-e2e bench target NAME, built now (before
# anything starts, so compile time does not overlap the measurement).
bench::build_exe() {
  local name=$1 exe
  util::log "building the benchmark (cargo bench --no-run)"
  exe=$(cd "$REPO" && cargo bench -p rudder-e2e --bench "$name" --no-run --message-format=json-render-diagnostics \
    | BENCH_TARGET=$name python3 -c 'import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == os.environ["BENCH_TARGET"] and m.get("executable"):
        print(m["executable"])') || util::die "failed to build the benchmark"
  [[ -x $exe ]] || util::die "cargo did not report the benchmark's executable"
  echo "$exe"
}

# bench::make_pki URL SANS: the CA, the apiserver's serving certificate (SANS), the admin's client
# certificate, the service-account key pair and $RUDDER_HOME/admin.kubeconfig pointing at URL.
bench::make_pki() {
  # shellcheck disable=SC2034 # read by pki::write_kubeconfig
  PKI_APISERVER_URL=$1
  local sans=$2 p
  util::log "certificates under $RUDDER_HOME/pki"
  p=$(pki::dir)
  pki::ensure_ca
  pki::ensure_cert "$p/apiserver" "/CN=kube-apiserver" serverAuth "$sans"
  pki::ensure_cert "$p/admin" "/O=system:masters/CN=kubernetes-admin" clientAuth
  pki::_key "$p/sa.key"
  openssl pkey -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null || util::die "failed to write sa.pub"
  pki::write_kubeconfig "$RUDDER_HOME/admin.kubeconfig" kubernetes-admin "$p/admin"
}

# bench::start_etcd BIN MEMBER CLIENT PEER [EXTRA_FLAG...] starts $BENCH_ETCD_NAME and waits until healthy.
bench::start_etcd() {
  local bin=$1 member=$2 client=$3 peer=$4 port
  shift 4
  # Again, right before starting: another benchmark may have taken them while this one was building, and
  # the health check below would then pass against that benchmark's etcd.
  for port in "${client##*:}" "${peer##*:}"; do
    bench::port_free "$port" || util::die "port $port is in use (another benchmark running?)"
  done
  mkdir -p "$RUDDER_HOME/etcd" && chmod 700 "$RUDDER_HOME/etcd"
  util::start_daemon "$BENCH_ETCD_NAME" "$bin" \
    --name "$member" \
    --data-dir "$RUDDER_HOME/etcd" \
    --listen-client-urls "http://$client" \
    --advertise-client-urls "http://$client" \
    --listen-peer-urls "http://$peer" \
    --initial-advertise-peer-urls "http://$peer" \
    --initial-cluster "$member=http://$peer" \
    "$@" \
    --log-level warn
  if ! util::wait_for "etcd health" 60 curl -fsS "http://$client/health"; then
    util::log_tail "$BENCH_ETCD_NAME"
    util::die "etcd did not become healthy on $client"
  fi
  util::require_alive "$BENCH_ETCD_NAME"
}

# bench::start_apiserver BIN ETCD_CLIENT ADDRESS PORT [EXTRA_FLAG...] starts $BENCH_APISERVER_NAME on
# ADDRESS:PORT with the certificates of bench::make_pki. No endpoint reconciler: nothing here needs the
# `kubernetes` Service's endpoints (and a loopback advertise address is not a valid endpoint).
bench::start_apiserver() {
  local bin=$1 etcd=$2 address=$3 port=$4 p
  shift 4
  bench::port_free "$port" || util::die "port $port is in use (another benchmark running?)"
  p=$(pki::dir)
  util::start_daemon "$BENCH_APISERVER_NAME" "$bin" \
    --etcd-servers="http://$etcd" \
    --secure-port="$port" --bind-address="$address" --advertise-address="$address" \
    --endpoint-reconciler-type=none \
    --authorization-mode=RBAC \
    --client-ca-file="$p/ca.crt" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" \
    "$@" \
    --cert-dir="$RUDDER_HOME/run/apiserver-certs"
}

# bench::wait_apiserver_ready URL [WRAPPER...] polls URL/readyz (through WRAPPER, e.g. `ip netns exec NS`)
# for up to 120s.
bench::wait_apiserver_ready() {
  local url=$1 p deadline
  shift
  p=$(pki::dir)
  deadline=$((SECONDS + 120))
  until [[ $("$@" curl -sS --max-time 5 --cacert "$p/ca.crt" --cert "$p/admin.crt" --key "$p/admin.key" \
    "$url/readyz" 2>/dev/null) == ok ]]; do
    util::require_alive "$BENCH_APISERVER_NAME"
    if ((SECONDS >= deadline)); then
      util::log_tail "$BENCH_APISERVER_NAME" 40
      util::die "kube-apiserver not ready after 120s"
    fi
    sleep 0.5
  done
}

# bench::run EXE ARG... runs the benchmark binary in the background and waits for it, so a TERM to the
# script runs the teardown at once (bash defers traps while it waits for a foreground child); the teardown
# then stops the benchmark and the processes it started.
bench::run() {
  mkdir -p "$BENCH_OUT_DIR"
  cd "$REPO" || util::die "failed to enter $REPO"
  "$@" --out-dir "$BENCH_OUT_DIR" &
  BENCH_PID=$!
  wait "$BENCH_PID"
}
