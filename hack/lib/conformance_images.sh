# shellcheck shell=bash
# The images the upstream e2e (conformance) suite runs, rebuilt locally and pushed to the local registry
# under the names the suite asks for (`e2e.test --list-images`). containerd mirrors registry.k8s.io to
# that registry, so `registry.k8s.io/e2e-test-images/agnhost:2.59` resolves to what is pushed here as
# `e2e-test-images/agnhost:2.59`.
#
# Nothing comes from Docker Hub or registry.k8s.io: Go programs are built from the same k8s.io/kubernetes
# module as the stock binaries (stock.sh), everything else from Debian packages, with the paths, ports,
# users and entrypoints of the upstream images (test/images/*/Dockerfile in that module):
#   agnhost        Debian base (bash curl nc ip dig iperf) + /agnhost, /agnhost-2, /uploads, porter's
#                  localhost.{crt,key}, uid 1000 user-defined-in-image in gid 50000; ENTRYPOINT /agnhost, CMD pause
#   kitten/nautilus agnhost + /kitten.jpg|/nautilus.jpg + /data.json; CMD test-webserver
#   busybox        Debian's (dynamic) busybox + libc6: its wget and nslookup work, unlike busybox-static's
#   nonroot        Debian base, USER 1234
#   nonewprivs     Debian base + setuid /usr/local/bin/nnp (hack/images/e2e/nonewprivs/nnp.c)
#   jessie-dnsutils, perl  Debian base (dig, nslookup, perl)
#   resource-consumer  Debian base + stress + /consumer + /consume-cpu/consume-cpu; ENTRYPOINT /consumer
#   sample-apiserver   Debian base + /sample-apiserver (k8s.io/sample-apiserver at the staging version)
#   etcd           Debian base + /usr/local/bin/etcd (stock.sh's etcd build)
#   nginx, pause   the cluster's own images (images.sh), retagged in the registry
#
# Caching works as in images.sh: each image has a recipe key (a hash of this file, its files under
# hack/images/e2e/, the versions and an epoch); the registry holds a tag "rudder-<key>" beside the public
# tag, and two HEAD requests tell whether an image is current. Layouts are kept under
# $RUDDER_CACHE/images/e2e/, Go binaries under $RUDDER_CACHE/images/e2e/bin/, the Debian base as a tarball.
# A warm run makes no build and takes seconds.

KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}
CONFORMANCE_IMAGES_EPOCH=1

CONFORMANCE_IMAGES_SH=$(realpath "${BASH_SOURCE[0]}")
CONFORMANCE_IMAGES_RECIPE_DIR=$(realpath "$(dirname "$CONFORMANCE_IMAGES_SH")/../images/e2e")
# shellcheck source-path=SCRIPTDIR source=images.sh
declare -F images::write_oci >/dev/null || source "$(dirname "$CONFORMANCE_IMAGES_SH")/images.sh"
# shellcheck source-path=SCRIPTDIR source=stock.sh
declare -F stock::kube_wrapper_dir >/dev/null || source "$(dirname "$CONFORMANCE_IMAGES_SH")/stock.sh"

# recipe, registry repository, tag. A recipe "=REPO:TAG" copies that image of the registry (images.sh's).
CONFORMANCE_IMAGES=(
  "agnhost e2e-test-images/agnhost 2.59"
  "agnhost e2e-test-images/agnhost 2.55"
  "kitten e2e-test-images/kitten 1.7"
  "nautilus e2e-test-images/nautilus 1.7"
  "busybox e2e-test-images/busybox 1.37.0-1"
  "busybox e2e-test-images/busybox 1.36.1-1"
  "nonroot e2e-test-images/nonroot 1.4"
  "nonewprivs e2e-test-images/nonewprivs 1.3"
  "dnsutils e2e-test-images/jessie-dnsutils 1.7"
  "perl e2e-test-images/perl 5.26"
  "resource_consumer e2e-test-images/resource-consumer 1.13"
  "sample_apiserver e2e-test-images/sample-apiserver 1.29.2"
  "etcd etcd 3.6.6-0"
  "=library/nginx:latest e2e-test-images/nginx 1.14-4"
  "=library/nginx:latest e2e-test-images/nginx 1.15-4"
  "=pause:3.10 pause 3.10.1"
)

# The Debian packages of the shared base: what agnhost's Alpine base installs (bind-tools, curl,
# netcat-openbsd, iproute2, iperf, bash), plus stress for resource-consumer.
CONFORMANCE_IMAGES_BASE_PACKAGES=bash,curl,ca-certificates,netcat-openbsd,iproute2,bind9-dnsutils,iperf,procps,stress

conformance_images::log() { printf '[e2e-images] %s\n' "$*" >&2; }

conformance_images::dir() { echo "$RUDDER_CACHE/images/e2e"; }

# conformance_images::ensure makes every image of CONFORMANCE_IMAGES current in the registry.
conformance_images::ensure() {
  registry::answers || {
    conformance_images::log "failed to ensure images: no registry answers on $RUDDER_REGISTRY_ADDR" \
      "(hack/local-cluster.sh up starts it)"
    return 1
  }
  # The retagged images (nginx, pause) come from images.sh's set.
  images::ensure || return 1
  mkdir -p "$(conformance_images::dir)"
  # images.sh's lock: one builder at a time, as debootstrap's package cache is shared.
  (
    flock 9
    local entry recipe repo tag
    for entry in "${CONFORMANCE_IMAGES[@]}"; do
      read -r recipe repo tag <<<"$entry"
      if [[ $recipe == =* ]]; then
        conformance_images::ensure_copy "${recipe#=}" "$repo" "$tag" || exit 1
      else
        conformance_images::ensure_built "$recipe" "$repo" "$tag" || exit 1
      fi
    done
  ) 9>"$RUDDER_CACHE/images/.lock"
}

# conformance_images::ensure_copy SRC_REPO:SRC_TAG REPO TAG makes REPO:TAG the same manifest as SRC.
conformance_images::ensure_copy() {
  local src=$1 repo=$2 tag=$3 want have
  want=$(registry::manifest_digest "${src%%:*}" "${src#*:}") || {
    conformance_images::log "failed to copy $src to $repo:$tag: the registry does not serve $src"
    return 1
  }
  have=$(registry::manifest_digest "$repo" "$tag") || have=
  [[ $want == "$have" ]] && return 0
  skopeo copy --quiet --insecure-policy --src-tls-verify=false --dest-tls-verify=false \
    "docker://$RUDDER_REGISTRY_ADDR/$src" "docker://$RUDDER_REGISTRY_ADDR/$repo:$tag" >&2 || {
    conformance_images::log "failed to copy $src to $repo:$tag"
    return 1
  }
  conformance_images::log "pushed $RUDDER_REGISTRY_ADDR/$repo:$tag (copy of $src)"
}

# conformance_images::ensure_built RECIPE REPO TAG builds RECIPE's layout unless cached and pushes it.
conformance_images::ensure_built() {
  local recipe=$1 repo=$2 tag=$3 key layout
  key=$(conformance_images::recipe_key "$recipe") || return 1
  images::is_current "$repo" "$tag" "$key" && return 0
  layout=$(conformance_images::layout "$recipe" "$key") || return 1
  images::push_layout "$layout" "$repo" "$tag" || return 1
  images::push_layout "$layout" "$repo" "rudder-$key" || return 1
  conformance_images::log "pushed $RUDDER_REGISTRY_ADDR/$repo:$tag"
}

# conformance_images::build_all builds every recipe's layout (no registry needed); for warming the cache.
conformance_images::build_all() {
  mkdir -p "$(conformance_images::dir)"
  (
    flock 9
    local entry recipe repo tag key done=" "
    for entry in "${CONFORMANCE_IMAGES[@]}"; do
      read -r recipe repo tag <<<"$entry"
      [[ $recipe == =* || $done == *" $recipe "* ]] && continue
      key=$(conformance_images::recipe_key "$recipe") || exit 1
      conformance_images::layout "$recipe" "$key" >/dev/null || exit 1
      done+="$recipe "
    done
  ) 9>"$RUDDER_CACHE/images/.lock"
}

# conformance_images::layout RECIPE KEY prints the cached OCI layout of RECIPE, building it if missing.
conformance_images::layout() {
  local recipe=$1 key=$2 dir; dir=$(conformance_images::dir)
  local layout="$dir/$recipe-$key" log="$dir/build-$recipe.log"
  if [[ ! -f $layout/index.json ]]; then
    conformance_images::log "building $recipe (recipe $key); log: $log"
    local start=$SECONDS
    rm -rf "$layout.tmp"
    # A child bash, so that errexit holds inside the recipe whatever the caller's context.
    if ! RUDDER_CACHE=$RUDDER_CACHE KUBE_VERSION=$KUBE_VERSION ETCD_VERSION=$ETCD_VERSION \
      bash -euo pipefail -c 'source "$1"; shift; "$@"' conformance_images \
      "$CONFORMANCE_IMAGES_SH" conformance_images::build "$recipe" "$layout.tmp" "$key" >"$log" 2>&1; then
      conformance_images::log "failed to build $recipe; last lines of $log:"
      tail -n 25 "$log" >&2 || true
      rm -rf "$layout.tmp"
      return 1
    fi
    local old
    for old in "$dir/$recipe"-*; do
      [[ -d $old && $old != "$layout.tmp" ]] && rm -rf "$old"
    done
    mv "$layout.tmp" "$layout"
    conformance_images::log "built $recipe in $((SECONDS - start))s"
  fi
  echo "$layout"
}

# conformance_images::recipe_key RECIPE prints the 16-hex-digit key of RECIPE.
conformance_images::recipe_key() {
  local recipe=$1 files f
  files=$(find "$CONFORMANCE_IMAGES_RECIPE_DIR" \( -path "$CONFORMANCE_IMAGES_RECIPE_DIR/$recipe/*" \
    -o -name "$recipe.*" \) -type f | LC_ALL=C sort) || return 1
  {
    echo "epoch=$CONFORMANCE_IMAGES_EPOCH kube=$KUBE_VERSION etcd=$ETCD_VERSION suite=$IMAGES_DEBIAN_SUITE"
    cat "$CONFORMANCE_IMAGES_SH"
    for f in $files; do
      echo "== ${f#"$CONFORMANCE_IMAGES_RECIPE_DIR"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
}

# --- Everything below runs in the child bash started by conformance_images::layout, under errexit. ---

# conformance_images::build RECIPE LAYOUT KEY writes the OCI layout of RECIPE.
conformance_images::build() {
  local recipe=$1 layout=$2 key=$3 work config
  work=$(mktemp -d "$(conformance_images::dir)/work.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "images::remove_work '$work'" EXIT
  mkdir "$work/rootfs"
  "conformance_images::rootfs_$recipe" "$work/rootfs" "$work"
  config=$("conformance_images::config_$recipe")
  config=${config%\}}",\"Labels\":{\"io.rudder.image-recipe\":\"e2e-$recipe-$key\"}}"
  images::write_oci "$work/rootfs" "$layout" "$config" "hack/lib/conformance_images.sh $recipe recipe $key"
}

# conformance_images::module_dir prints the k8s.io/kubernetes module's source in the Go module cache.
conformance_images::module_dir() {
  local dir
  dir="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION"
  [[ -d $dir ]] || (cd "$(stock::kube_wrapper_dir)" && GOFLAGS=-mod=mod go mod download k8s.io/kubernetes)
  echo "$dir"
}

# conformance_images::go_binary NAME PACKAGE prints the path of PACKAGE's static binary, building it
# once per Kubernetes version in a copy of stock.sh's wrapper module (so that one is never modified).
conformance_images::go_binary() {
  local name=$1 package=$2 bin_dir src
  bin_dir="$(conformance_images::dir)/bin"
  local out="$bin_dir/$name-$KUBE_VERSION"
  if [[ -x $out ]]; then echo "$out"; return 0; fi
  src="$RUDDER_CACHE/src/e2e-images-$KUBE_VERSION"
  if [[ ! -f $src/go.mod ]]; then
    local wrapper; wrapper=$(stock::kube_wrapper_dir)
    mkdir -p "$src"
    sed 's#^module .*#module rudder.local/e2e-images#' "$wrapper/go.mod" > "$src/go.mod"
    [[ -f $wrapper/go.sum ]] && cp "$wrapper/go.sum" "$src/go.sum"
    printf 'package main\n\nfunc main() {}\n' > "$src/pin.go"
  fi
  mkdir -p "$bin_dir"
  conformance_images::log "building $package ($KUBE_VERSION)"
  (
    cd "$src"
    GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -o "$out.tmp" -ldflags "-s -w" "$package"
  ) >&2
  mv "$out.tmp" "$out"
  echo "$out"
}

# conformance_images::base_rootfs ROOTFS fills ROOTFS with the shared Debian base, debootstrapping it
# into a cached tarball the first time (in ROOTFS's parent, the build's work dir, which the build's
# trap unmounts and removes whatever happens).
conformance_images::base_rootfs() {
  local rootfs=$1 key tarball
  key=$(echo "epoch=$CONFORMANCE_IMAGES_EPOCH suite=$IMAGES_DEBIAN_SUITE $CONFORMANCE_IMAGES_BASE_PACKAGES" |
    sha256sum | cut -c1-16)
  tarball="$(conformance_images::dir)/base-$key.tar"
  if [[ ! -f $tarball ]]; then
    local base; base="$(dirname "$rootfs")/base"
    mkdir "$base"
    images::debian_rootfs "$base" "$CONFORMANCE_IMAGES_BASE_PACKAGES"
    images::slim_debian "$base"
    rm -rf "$base/debootstrap"
    tar --numeric-owner --sort=name -C "$base" -cf "$tarball.tmp" .
    images::remove_work "$base"
    rm -f "$(conformance_images::dir)"/base-*.tar
    mv "$tarball.tmp" "$tarball"
  fi
  tar --numeric-owner -xpf "$tarball" -C "$rootfs"
}

conformance_images::path_env() { echo '"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'; }

conformance_images::rootfs_agnhost() {
  local rootfs=$1 agnhost porter
  agnhost=$(conformance_images::go_binary agnhost k8s.io/kubernetes/test/images/agnhost)
  porter="$(conformance_images::module_dir)/test/images/agnhost/porter"
  conformance_images::base_rootfs "$rootfs"
  install -m 0755 "$agnhost" "$rootfs/agnhost"
  # Entrypoint tests run the image with its entrypoint replaced by this second name.
  ln -s agnhost "$rootfs/agnhost-2"
  mkdir -p "$rootfs/uploads"
  install -m 0644 "$porter/localhost.crt" "$rootfs/localhost.crt"
  install -m 0644 "$porter/localhost.key" "$rootfs/localhost.key"
  # For the SupplementalGroups test with a user and group defined in the image.
  echo 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh' >> "$rootfs/etc/passwd"
  echo 'user-defined-in-image:x:1000:' >> "$rootfs/etc/group"
  echo 'group-defined-in-image:x:50000:user-defined-in-image' >> "$rootfs/etc/group"
  install -d -o 1000 -g 1000 "$rootfs/home/user-defined-in-image"
}

conformance_images::config_agnhost() {
  echo "{$(conformance_images::path_env),\"Entrypoint\":[\"/agnhost\"],\"Cmd\":[\"pause\"],\"WorkingDir\":\"/\","\
'"ExposedPorts":{"80/tcp":{},"8080/tcp":{},"8081/tcp":{},"9376/tcp":{},"5000/tcp":{}}}'
}

# conformance_images::rootfs_webserver ROOTFS NAME: agnhost serving NAME's picture and data.json.
conformance_images::rootfs_webserver() {
  local rootfs=$1 name=$2 html
  conformance_images::rootfs_agnhost "$rootfs"
  html="$(conformance_images::module_dir)/test/images/$name/html"
  install -m 0644 "$html/$name.jpg" "$rootfs/$name.jpg"
  install -m 0644 "$html/data.json" "$rootfs/data.json"
}

conformance_images::rootfs_kitten() { conformance_images::rootfs_webserver "$1" kitten; }
conformance_images::rootfs_nautilus() { conformance_images::rootfs_webserver "$1" nautilus; }
conformance_images::config_kitten() { conformance_images::config_agnhost | sed 's/"Cmd":\["pause"\]/"Cmd":["test-webserver"]/'; }
conformance_images::config_nautilus() { conformance_images::config_kitten; }

conformance_images::rootfs_busybox() {
  local rootfs=$1 work=$2 deb applet
  for deb in libc6 busybox; do
    dpkg-deb -x "$(images::debian_package "$deb")" "$work/pkg"
  done
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,tmp,var,proc,sys,dev}
  chmod 1777 "$rootfs/tmp" && chmod 0700 "$rootfs/root"
  # The dynamic loader and the C library (with its NSS and resolver modules) only; no locales, no docs.
  cp -a "$work/pkg/lib" "$rootfs/lib"
  [[ -d $work/pkg/lib64 ]] && cp -a "$work/pkg/lib64" "$rootfs/lib64"
  install -m 0755 "$work/pkg/bin/busybox" "$rootfs/bin/busybox"
  while read -r applet; do
    [[ -e $rootfs/$applet || -L $rootfs/$applet ]] || ln -s /bin/busybox "$rootfs/$applet"
    # Upstream's image (Docker Hub's busybox) has every applet in /bin too: tests run /bin/sysctl.
    [[ -e $rootfs/bin/${applet##*/} || -L $rootfs/bin/${applet##*/} ]] || ln -s busybox "$rootfs/bin/${applet##*/}"
  done < <(chroot "$rootfs" /bin/busybox --list-full)
  local f
  for f in passwd group nsswitch.conf; do
    install -m 0644 "$CONFORMANCE_IMAGES_RECIPE_DIR/busybox/$f" "$rootfs/etc/$f"
  done
  mkdir -p "$rootfs/usr/share/doc/busybox" "$rootfs/usr/share/doc/libc6"
  cp "$work/pkg/usr/share/doc/busybox/copyright" "$rootfs/usr/share/doc/busybox/"
  cp "$work/pkg/usr/share/doc/libc6/copyright" "$rootfs/usr/share/doc/libc6/"
}

conformance_images::config_busybox() { echo "{$(conformance_images::path_env),\"Cmd\":[\"sh\"]}"; }

conformance_images::rootfs_nonroot() { conformance_images::base_rootfs "$1"; }
conformance_images::config_nonroot() { echo "{$(conformance_images::path_env),\"Cmd\":[\"/bin/sh\"],\"User\":\"1234\"}"; }

conformance_images::rootfs_nonewprivs() {
  local rootfs=$1
  conformance_images::base_rootfs "$rootfs"
  images::need_commands gcc:gcc
  [[ $(gcc -print-file-name=libc.a) == /* ]] || images::apt_install libc6-dev
  gcc -static -Os -s -Wall -Wextra -Werror -o "$rootfs/usr/local/bin/nnp" \
    "$CONFORMANCE_IMAGES_RECIPE_DIR/nonewprivs/nnp.c"
  chown 0:0 "$rootfs/usr/local/bin/nnp"
  chmod 4755 "$rootfs/usr/local/bin/nnp"
}

conformance_images::config_nonewprivs() { echo "{$(conformance_images::path_env),\"Cmd\":[\"nnp\"]}"; }

conformance_images::rootfs_dnsutils() { conformance_images::base_rootfs "$1"; }
conformance_images::config_dnsutils() { echo "{$(conformance_images::path_env),\"Cmd\":[\"bash\"]}"; }

# perl-base, part of every Debian base, is the interpreter.
conformance_images::rootfs_perl() { conformance_images::base_rootfs "$1"; }
conformance_images::config_perl() { echo "{$(conformance_images::path_env),\"Cmd\":[\"perl\",\"-de0\"]}"; }

conformance_images::rootfs_resource_consumer() {
  local rootfs=$1 consumer cpu
  consumer=$(conformance_images::go_binary resource-consumer k8s.io/kubernetes/test/images/resource-consumer)
  cpu=$(conformance_images::go_binary consume-cpu k8s.io/kubernetes/test/images/resource-consumer/consume-cpu)
  conformance_images::base_rootfs "$rootfs"
  install -m 0755 "$consumer" "$rootfs/consumer"
  # The consumer runs ./consume-cpu/consume-cpu from its working directory, /.
  install -D -m 0755 "$cpu" "$rootfs/consume-cpu/consume-cpu"
}

conformance_images::config_resource_consumer() {
  echo "{$(conformance_images::path_env),\"Entrypoint\":[\"/consumer\"],\"WorkingDir\":\"/\",\"ExposedPorts\":{\"8080/tcp\":{}}}"
}

conformance_images::rootfs_sample_apiserver() {
  local rootfs=$1 bin
  bin=$(conformance_images::go_binary sample-apiserver k8s.io/sample-apiserver)
  conformance_images::base_rootfs "$rootfs"
  install -m 0755 "$bin" "$rootfs/sample-apiserver"
}

conformance_images::config_sample_apiserver() {
  echo "{$(conformance_images::path_env),\"Entrypoint\":[\"/sample-apiserver\"]}"
}

conformance_images::rootfs_etcd() {
  local rootfs=$1 bin
  bin=$(stock::build_etcd)
  conformance_images::base_rootfs "$rootfs"
  install -D -m 0755 "$bin" "$rootfs/usr/local/bin/etcd"
}

conformance_images::config_etcd() { echo "{$(conformance_images::path_env),\"Cmd\":[\"/usr/local/bin/etcd\"]}"; }
