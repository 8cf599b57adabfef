# shellcheck shell=bash
# Runs the upstream conformance suite (e2e.test from the same k8s.io/kubernetes version as the stock
# kube-apiserver) against a running cluster, then prints the scoreboard (hack/conformance_scoreboard.py).
# hack/conformance.sh is the command; this file holds its parts.
#
# The suite is selected by Ginkgo labels: "Conformance", minus "Serial" and "Disruptive" unless asked,
# then narrowed by the user's --focus/--skip regular expressions on the test names.

KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
RUDDER_HOME=${RUDDER_HOME:-/var/lib/rudder}
RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}
# Conformance tests in the release (e2e.test --ginkgo.dry-run --ginkgo.label-filter=Conformance).
CONFORMANCE_EXPECTED=${CONFORMANCE_EXPECTED:-441}

CONFORMANCE_SH=$(realpath "${BASH_SOURCE[0]}")
# shellcheck source-path=SCRIPTDIR source=stock.sh
declare -F stock::build_kube >/dev/null || source "$(dirname "$CONFORMANCE_SH")/stock.sh"

# The CI focus: small, fast tests of what rudder implements (Deployment, ReplicaSet, garbage collection,
# pod lifecycle), each a few seconds to a minute. Exact test names, without the trailing tags.
CONFORMANCE_CI_TESTS=(
  "[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones"
  "[sig-apps] Deployment RecreateDeployment should delete old pods and create new ones"
  "[sig-apps] Deployment deployment should delete old replica sets"
  "[sig-apps] Deployment Deployment should have a working scale subresource"
  "[sig-apps] ReplicaSet should adopt matching pods on creation and release no longer matching pods"
  "[sig-apps] ReplicaSet Replicaset should have a working scale subresource"
  "[sig-apps] ReplicaSet should serve a basic image on each replica with a public image"
  "[sig-api-machinery] Garbage collector should delete RS created by deployment when not orphaning"
  "[sig-node] Pods should get a host IP"
  "[sig-node] Pods should be submitted and removed"
  "[sig-node] Pods should be updated"
  "[sig-node] Containers should use the image defaults if command and args are blank"
  "[sig-node] Kubelet when scheduling a busybox command in a pod should print the output to logs"
  "[sig-node] InitContainer [NodeConformance] should invoke init containers on a RestartNever pod"
  "[sig-node] Container Runtime blackbox test on terminated container should report termination message from file when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set"
  "[sig-node] Container Lifecycle Hook when create a pod with lifecycle hook should execute poststart exec hook properly"
  "[sig-node] KubeletManagedEtcHosts should test kubelet managed /etc/hosts file"
  "[sig-node] Probing container with readiness probe that fails should never be ready and never restart"
  "[sig-storage] EmptyDir volumes should support (root,0666,tmpfs)"
  "[sig-apps] ReplicationController should serve a basic image on each replica with a public image"
  "[sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic] should have a working scale subresource"
  "[sig-network] DNS should provide DNS for services"
  "[sig-network] Services should serve a basic endpoint from pods"
  "[sig-network] API Server should have Endpoints and EndpointSlices pointing to API Server"
)

conformance::log() { printf '[conformance] %s\n' "$*" >&2; }

# conformance::ci_focus prints one regular expression matching exactly the CI tests.
conformance::ci_focus() {
  local name escaped out=""
  for name in "${CONFORMANCE_CI_TESTS[@]}"; do
    # shellcheck disable=SC2016 # a sed expression: $ is a character to escape
    escaped=$(printf '%s' "$name" | sed 's/[][\\.*^$()+?{}|]/\\&/g')
    # Ginkgo's full text is not anchored at ^; the " [" after the name keeps it from matching longer names.
    out+="${out:+|}${escaped} \\["
  done
  echo "$out"
}

# conformance::label_filter SERIAL DISRUPTIVE prints the Ginkgo label filter (SERIAL, DISRUPTIVE: 0|1).
conformance::label_filter() {
  local filter="Conformance"
  (($1)) || filter+=" && !Serial"
  (($2)) || filter+=" && !Disruptive"
  echo "$filter"
}

# conformance::ginkgo prints the Ginkgo CLI (needed for parallel runs), built once at the version the
# k8s.io/kubernetes module requires.
conformance::ginkgo() {
  local out="$RUDDER_CACHE/bin/ginkgo-$KUBE_VERSION" dir
  if [[ -x $out ]]; then echo "$out"; return 0; fi
  dir=$(stock::kube_wrapper_dir) || return 1
  conformance::log "building the ginkgo CLI for $KUBE_VERSION (first time only)"
  # go run would edit the wrapper's go.mod; building from a throwaway copy leaves it as it is.
  local tmp; tmp=$(mktemp -d)
  if ! { cp "$dir/go.mod" "$tmp/" && { [[ ! -f $dir/go.sum ]] || cp "$dir/go.sum" "$tmp/"; } &&
    printf 'package main\n\nfunc main() {}\n' > "$tmp/pin.go"; }; then
    rm -rf "$tmp"
    return 1
  fi
  if ! (cd "$tmp" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
    go build -o "$out.tmp" github.com/onsi/ginkgo/v2/ginkgo) >&2; then
    rm -rf "$tmp"
    conformance::log "failed to build the ginkgo CLI"
    return 1
  fi
  rm -rf "$tmp"
  mv "$out.tmp" "$out"
  echo "$out"
}

# conformance::write_repo_list FILE writes the KUBE_TEST_REPO_LIST file: every registry the suite pulls
# from, mapped to a name the nodes' containerd resolve through the local registry (registry.k8s.io and
# docker.io are mirrored there). The private and invalid registries stay as they are: tests expect
# pulls from them to fail.
conformance::write_repo_list() {
  cat > "$1" <<'EOF'
# Written by hack/lib/conformance.sh: the images behind these names are built by
# hack/lib/conformance_images.sh and pushed to the local registry, which containerd uses as the
# mirror of registry.k8s.io and docker.io.
promoterE2eRegistry: registry.k8s.io/e2e-test-images
buildImageRegistry: registry.k8s.io/build-image
gcEtcdRegistry: registry.k8s.io
gcRegistry: registry.k8s.io
sigStorageRegistry: registry.k8s.io/sig-storage
dockerLibraryRegistry: docker.io/library
cloudProviderGcpRegistry: registry.k8s.io/cloud-provider-gcp
invalidRegistry: invalid.registry.k8s.io/invalid
privateRegistry: gcr.io/k8s-authenticated-test
EOF
}

# conformance::run REPORT_DIR PARALLEL TIMEOUT VERBOSE LABEL_FILTER FOCUS SKIP runs the suite, writing
# e2e.log, junit.xml and report.json into REPORT_DIR. Returns e2e.test's exit status.
conformance::run() {
  local report_dir=$1 parallel=$2 timeout=$3 verbose=$4 label_filter=$5 focus=$6 skip=$7
  local e2e kubectl_dir
  e2e=$(stock::build_kube e2e.test) || { conformance::log "failed to build e2e.test"; return 1; }
  kubectl_dir="$RUDDER_CACHE/kubectl-layer/kubectl"
  [[ -x $kubectl_dir/kubectl ]] || stock::install_kubectl_helm >/dev/null || return 1
  mkdir -p "$report_dir/output"
  conformance::write_repo_list "$report_dir/repo-list.yaml"

  # Ginkgo's own flags, without prefix: e2e.test takes them as --ginkgo.NAME, the ginkgo CLI as --NAME.
  local ginkgo_flags=(
    "label-filter=$label_filter" "timeout=$timeout" "no-color" "silence-skips"
    "junit-report=$report_dir/junit.xml" "json-report=$report_dir/report.json"
  )
  [[ -n $focus ]] && ginkgo_flags+=("focus=$focus")
  [[ -n $skip ]] && ginkgo_flags+=("skip=$skip")
  ((verbose)) && ginkgo_flags+=("v")
  # The framework's: no cloud provider; nothing runs in kube-system here, so waiting for system pods
  # and daemonsets must end at once rather than time out; no SSH log gathering.
  local e2e_flags=(
    "--kubeconfig=$KUBECONFIG" "--provider=skeleton" "--node-os-distro=debian"
    "--report-dir=$report_dir" "--e2e-output-dir=$report_dir/output"
    "--kubectl-path=$kubectl_dir/kubectl"
    "--dump-logs-on-failure=false" "--disable-log-dump=true"
    "--allowed-not-ready-nodes=0" "--minStartupPods=0"
    "--system-pods-startup-timeout=1m" "--system-daemonsets-startup-timeout=1m"
    "--node-schedulable-timeout=5m"
  )
  local cmd=() f
  if ((parallel > 1)); then
    local ginkgo; ginkgo=$(conformance::ginkgo) || return 1
    # The ginkgo CLI only takes a precompiled suite whose name ends in ".test".
    mkdir -p "$report_dir/bin"
    ln -sfn "$e2e" "$report_dir/bin/e2e.test"
    cmd=("$ginkgo" "--procs=$parallel")
    for f in "${ginkgo_flags[@]}"; do cmd+=("--$f"); done
    cmd+=("$report_dir/bin/e2e.test" -- "${e2e_flags[@]}")
  else
    cmd=("$e2e")
    for f in "${ginkgo_flags[@]}"; do cmd+=("--ginkgo.$f"); done
    cmd+=("${e2e_flags[@]}")
  fi
  printf '%q ' "${cmd[@]}" > "$report_dir/command.txt"
  echo >> "$report_dir/command.txt"
  conformance::log "running: $(<"$report_dir/command.txt")"
  conformance::log "log: $report_dir/e2e.log"
  # The suite's status goes through a file: it must survive the pipe to tee whatever the caller's
  # errexit and pipefail settings.
  rm -f "$report_dir/exit-code"
  (
    # e2e.test writes relative paths under its working directory.
    cd "$report_dir/output" || exit 1
    rc=0
    KUBE_TEST_REPO_LIST="$report_dir/repo-list.yaml" PATH="$kubectl_dir:$PATH" "${cmd[@]}" || rc=$?
    echo "$rc" > "$report_dir/exit-code"
  ) 2>&1 | tee "$report_dir/e2e.log" || true
  local rc
  rc=$(cat "$report_dir/exit-code" 2>/dev/null) || rc=1
  return "$rc"
}
