# shellcheck shell=bash
# rudder's own binaries: building them, and running rudder-controllers and rudder-scheduler.
#
# RUDDER_SKIP_BUILD=1 uses whatever binaries are in $RUDDER_BIN_DIR and skips (with a warning) the
# components whose binary is missing, for trying the launcher while crates are still being written.

COMPONENTS_SA_TIMEOUT=${COMPONENTS_SA_TIMEOUT:-60}

components::bin_dir() {
  if [[ -n ${RUDDER_BIN_DIR:-} ]]; then echo "$RUDDER_BIN_DIR"
  else echo "${CARGO_TARGET_DIR:-$1/target}/release"
  fi
}

# components::build REPO builds every rudder binary in release mode (the first build takes minutes).
components::build() {
  local repo=$1
  if [[ ${RUDDER_SKIP_BUILD:-0} == 1 ]]; then
    util::log "RUDDER_SKIP_BUILD=1: using the binaries already in $(components::bin_dir "$repo")"
    return 0
  fi
  util::log "building rudder (cargo build --release --workspace --bins)"
  (cd "$repo" && cargo build --release --workspace --bins) >&2 || util::die "cargo build of rudder failed"
}

# components::binary REPO NAME prints the path of rudder-NAME; fails if it is missing, unless the build
# was skipped, in which case it prints nothing so the caller skips that component.
components::binary() {
  local path; path="$(components::bin_dir "$1")/rudder-$2"
  if [[ -x $path ]]; then echo "$path"; return 0; fi
  [[ ${RUDDER_SKIP_BUILD:-0} == 1 ]] || util::die "missing $path after the build"
  util::warn "RUDDER_SKIP_BUILD=1 and no $path: not starting rudder-$2"
}

# components::restart_if_rebuilt DAEMON BINARY stops DAEMON when BINARY changed since it started, so that
# the following start_daemon runs the new build.
components::restart_if_rebuilt() {
  local daemon=$1 bin=$2 pid_file
  pid_file=$(util::pid_file "$daemon")
  util::daemon_pid "$daemon" >/dev/null || return 0
  if [[ $bin -nt $pid_file || $bin != "$(<"$RUDDER_HOME/run/$daemon.exe")" ]]; then
    util::log "$bin was rebuilt: restarting $daemon"
    util::stop_daemon "$daemon" 15
  fi
}

# components::start_controllers BINARY
components::start_controllers() {
  local bin=$1
  components::restart_if_rebuilt rudder-controllers "$bin"
  util::start_daemon rudder-controllers "$bin" \
    --kubeconfig "$RUDDER_HOME/controllers.kubeconfig" \
    --health-bind-address 127.0.0.1:10257 \
    --root-ca-file "$(pki::dir)/ca.crt"
}

# components::start_scheduler BINARY
components::start_scheduler() {
  local bin=$1
  components::restart_if_rebuilt rudder-scheduler "$bin"
  util::start_daemon rudder-scheduler "$bin" \
    --kubeconfig "$RUDDER_HOME/scheduler.kubeconfig" \
    --health-bind-address 127.0.0.1:10259
}

# components::start_service_proxy BINARY: one proxy for the host's network namespace, which every local
# node shares, so it serves NodePorts on all node IPs; traffic-policy Local counts node 1's endpoints only.
# It authenticates as system:kube-proxy, which the bootstrap policy binds to system:node-proxier.
components::start_service_proxy() {
  local bin=$1
  components::restart_if_rebuilt rudder-service-proxy "$bin"
  util::start_daemon rudder-service-proxy "$bin" \
    --kubeconfig "$RUDDER_HOME/service-proxy.kubeconfig" \
    --health-bind-address 127.0.0.1:10256 \
    --node-name "$(nodes::name 1)" \
    --node-ip "$(nodes::ip 1)" \
    --nodeport-addresses 127.0.1.0/24 \
    --cluster-cidr 10.244.0.0/16
}

# components::wait_default_sa waits for the `default` ServiceAccount in `default` (made by the
# serviceaccount controller in rudder-controllers).
components::wait_default_sa() {
  local deadline=$((SECONDS + COMPONENTS_SA_TIMEOUT))
  until controlplane::kubectl -n default get serviceaccount default >/dev/null 2>&1; do
    util::require_alive rudder-controllers
    if ((SECONDS >= deadline)); then
      util::log_tail rudder-controllers
      util::die "no default ServiceAccount in namespace default after ${COMPONENTS_SA_TIMEOUT}s"
    fi
    sleep 1
  done
}

# components::check_alive NAME... fails with the log tail of any component that exited after its start.
components::check_alive() {
  local name
  for name in "$@"; do util::require_alive "$name"; done
}

components::stop() {
  util::stop_daemon rudder-service-proxy 15
  # Like kube-proxy it leaves its rules in place when it stops; the cluster going away takes them.
  if nft list table ip rudder-proxy >/dev/null 2>&1; then nft delete table ip rudder-proxy; fi
  util::stop_daemon rudder-scheduler 15
  util::stop_daemon rudder-controllers 15
}
