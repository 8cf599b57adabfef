#!/usr/bin/env bash
# Runs every test: the unit tests of each crate, then the end-to-end tests against a local cluster.
#
# If a local cluster is already up it is reused and left up; otherwise this brings one up (installing and
# building whatever is missing) and takes it down at the end. E2E_KEEP_CLUSTER=1 keeps it up.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export RUDDER_HOME=${RUDDER_HOME:-/var/lib/rudder}

started_here=0
if ! hack/local-cluster.sh status >/dev/null 2>&1; then
  started_here=1
fi

dump_logs() {
  echo "=== component logs (last lines) ===" >&2
  for f in "$RUDDER_HOME"/logs/*.log; do
    [[ -f $f ]] || continue
    echo "--- $f" >&2
    tail -n 40 "$f" >&2
  done
}

finish() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then dump_logs; fi
  if [[ $started_here -eq 1 && -z ${E2E_KEEP_CLUSTER:-} ]]; then
    hack/local-cluster.sh down || rc=1
  fi
  exit $rc
}
trap finish EXIT

SECONDS=0
if [[ $started_here -eq 1 ]]; then
  hack/local-cluster.sh up
fi
echo "cluster ready after ${SECONDS}s"

# Same profile as the launcher's build, so dependencies compile once.
cargo test --release --workspace --exclude rudder-e2e
export KUBECONFIG="$RUDDER_HOME/admin.kubeconfig"
cargo test --release -p rudder-e2e -- --test-threads="${E2E_THREADS:-4}"
echo "all tests done after ${SECONDS}s"
