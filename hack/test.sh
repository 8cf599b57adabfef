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

results=$(mktemp)
# Same profile as the launcher's build, so dependencies compile once. No doc tests: there are none.
cargo test --release --workspace --exclude rudder-e2e --lib --bins --tests 2>&1 | tee -a "$results"
# The benchmarks' pure helpers (the benchmarks themselves are not tests: hack/bench.sh).
cargo test --release -p rudder-e2e --test bench_unit --test bench_proxy_unit 2>&1 | tee -a "$results"
export KUBECONFIG="$RUDDER_HOME/admin.kubeconfig"
# Upstream's test images (agnhost for the gRPC probe test, and the conformance focus below) into the
# local registry before any test pulls them; a fresh clone has none yet.
hack/conformance.sh --images
cargo test --release -p rudder-e2e --test e2e -- --test-threads="${E2E_THREADS:-4}" 2>&1 | tee -a "$results"
# A small, stable focus of the upstream conformance suite (hack/conformance.sh --ci), so regressions show.
hack/conformance.sh --ci

# These stop a node: alone, after the others.
cargo test --release -p rudder-e2e --test e2e_serial -- --test-threads=1 2>&1 | tee -a "$results"

# One closing line over every test binary (cargo prints one per binary).
awk -v secs="$SECONDS" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "all tests done after %ss\n%d passed, %d failed, %d skipped\n", secs, p, f, s }' "$results"
rm -f "$results"
