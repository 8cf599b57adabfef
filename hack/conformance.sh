#!/usr/bin/env bash
# Runs the upstream Kubernetes conformance suite against the local rudder cluster and prints a scoreboard.
#
#   hack/conformance.sh [--focus REGEX] [--skip REGEX] [--serial] [--disruptive] [--parallel N]
#                       [--timeout DURATION] [--report-dir DIR] [--verbose] [--no-images]
#   hack/conformance.sh --ci            the small, fixed CI focus (CONFORMANCE_CI_TESTS in lib/conformance.sh)
#   hack/conformance.sh --dry-run ...   list what would run; needs no cluster
#   hack/conformance.sh --images        only build the test images and push them to the local registry
#   hack/conformance.sh --scoreboard REPORT.json   print the scoreboard of an earlier run
#
# Selection: every [Conformance] test (441 in v1.35) except [Serial] ones (--serial adds them) and
# [Disruptive] ones (--disruptive adds them), narrowed by --focus and --skip (Go regular expressions on
# the full test name). Reports go to --report-dir (default /var/tmp/rudder-conformance/<UTC time>,
# also linked as /var/tmp/rudder-conformance/latest): e2e.log, junit.xml, report.json, scoreboard.txt.
#
# Environment: KUBECONFIG (default $RUDDER_HOME/admin.kubeconfig), RUDDER_HOME, RUDDER_CACHE, KUBE_VERSION.
# Exit status: 0 when every selected test passed, 1 otherwise, 2 on bad usage.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export RUDDER_HOME=${RUDDER_HOME:-/var/lib/rudder}
export RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}
export KUBECONFIG=${KUBECONFIG:-$RUDDER_HOME/admin.kubeconfig}
# shellcheck source-path=SCRIPTDIR source=lib/conformance.sh
source "$REPO_ROOT/hack/lib/conformance.sh"
# shellcheck source-path=SCRIPTDIR source=lib/conformance_images.sh
source "$REPO_ROOT/hack/lib/conformance_images.sh"

usage() { sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die_usage() { printf 'conformance.sh: %s\n\n' "$*" >&2; usage >&2; exit 2; }

focus="" skip="" serial=0 disruptive=0 parallel=1 timeout=6h report_dir="" verbose=0 images=1
mode=run scoreboard_report=""
while (($#)); do
  case $1 in
    --focus | --skip | --parallel | --timeout | --report-dir | --scoreboard)
      (($# >= 2)) || die_usage "$1 needs a value"
      case $1 in
        --focus) focus=$2 ;;
        --skip) skip=$2 ;;
        --parallel) parallel=$2 ;;
        --timeout) timeout=$2 ;;
        --report-dir) report_dir=$2 ;;
        --scoreboard) mode=scoreboard scoreboard_report=$2 ;;
      esac
      shift 2 ;;
    --serial) serial=1; shift ;;
    --disruptive) disruptive=1; shift ;;
    --verbose | -v) verbose=1; shift ;;
    --no-images) images=0; shift ;;
    --ci) focus=$(conformance::ci_focus); timeout=30m; parallel=3; shift ;;
    --dry-run) mode=dry-run; shift ;;
    --images) mode=images; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown argument: $1" ;;
  esac
done
[[ $parallel =~ ^[1-9][0-9]?$ ]] || die_usage "--parallel needs a process count from 1 to 99, got '$parallel'"
[[ $timeout =~ ^[0-9]+(s|m|h)$|^[0-9]+h[0-9]+m$ ]] || die_usage "--timeout needs a duration such as 90m or 6h, got '$timeout'"

scoreboard() {
  local report=$1 wall=${2:-}
  local args=("$report" --expected "$CONFORMANCE_EXPECTED")
  [[ -n $wall ]] && args+=(--wall-seconds "$wall")
  python3 "$REPO_ROOT/hack/conformance_scoreboard.py" "${args[@]}"
}

case $mode in
  scoreboard)
    scoreboard "$scoreboard_report"
    exit $? ;;
  images)
    registry::answers || { conformance::log "no registry on $RUDDER_REGISTRY_ADDR: building the layouts only" \
      "(they are pushed by the first run with the cluster up)"; conformance_images::build_all; exit $?; }
    conformance_images::ensure
    exit $? ;;
esac

if [[ -z $report_dir ]]; then
  base=/var/tmp/rudder-conformance
  report_dir="$base/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$report_dir"
  ln -sfn "$report_dir" "$base/latest"
fi
mkdir -p "$report_dir"
report_dir=$(realpath "$report_dir")
label_filter=$(conformance::label_filter "$serial" "$disruptive")

if [[ $mode == dry-run ]]; then
  # A dry run walks the tree without running any node: no cluster, no images.
  e2e=$(stock::build_kube e2e.test)
  args=(--ginkgo.dry-run --ginkgo.no-color "--ginkgo.label-filter=$label_filter"
    "--ginkgo.json-report=$report_dir/report.json" "--kubeconfig=$KUBECONFIG")
  [[ -n $focus ]] && args+=("--ginkgo.focus=$focus")
  [[ -n $skip ]] && args+=("--ginkgo.skip=$skip")
  "$e2e" "${args[@]}" > "$report_dir/e2e.log" 2>&1 || true
  python3 - "$report_dir/report.json" <<'EOF'
import json, sys
specs = json.load(open(sys.argv[1]))[0]["SpecReports"]
names = sorted(" ".join((s["ContainerHierarchyTexts"] or []) + [s["LeafNodeText"]])
               for s in specs if s["LeafNodeType"] == "It" and s["State"] == "passed")
print("\n".join(names))
print(f"{len(names)} tests selected")
EOF
  exit 0
fi

if ! kubectl_out=$("$RUDDER_CACHE/kubectl-layer/kubectl/kubectl" --kubeconfig "$KUBECONFIG" \
  --request-timeout=10s get nodes --no-headers 2>&1); then
  conformance::log "failed to reach the cluster with $KUBECONFIG: $kubectl_out"
  conformance::log "is it up? hack/local-cluster.sh status"
  exit 1
fi
conformance::log "cluster nodes:"$'\n'"$kubectl_out"
if ((images)); then
  conformance_images::ensure || { conformance::log "failed to build or push the test images"; exit 1; }
fi

started=$SECONDS
rc=0
conformance::run "$report_dir" "$parallel" "$timeout" "$verbose" "$label_filter" "$focus" "$skip" || rc=$?
wall=$((SECONDS - started))
if [[ ! -f $report_dir/report.json ]]; then
  conformance::log "e2e.test exited $rc without a JSON report; see $report_dir/e2e.log"
  exit 1
fi
echo
scoreboard "$report_dir/report.json" "$wall" | tee "$report_dir/scoreboard.txt" || true
conformance::log "reports: $report_dir (e2e.log junit.xml report.json scoreboard.txt)"
((rc == 0)) || exit 1
