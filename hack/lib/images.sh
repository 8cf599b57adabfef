# shellcheck shell=bash
# The cluster's container images, built locally from Debian packages (no Docker engine, no Docker Hub)
# and pushed to the local registry (registry.sh), which the nodes' containerd use as docker.io's and
# registry.k8s.io's mirror:
#   docker.io/library/nginx:latest    Debian bookworm minbase + nginx + procps + wget (bash, coreutils, iproute2)
#   docker.io/library/busybox:latest  Debian's busybox-static (its wget segfaults: do not use it)
#   registry.k8s.io/pause:3.10        hack/images/pause.c, static
#
# Each image is keyed by a recipe key: a hash of this file, the image's files under hack/images/ and
# IMAGES_RECIPE_EPOCH. The registry holds, beside the public tag, a tag "rudder-<key>"; when both point
# at the same manifest the image is up to date (two HEAD requests), otherwise it is rebuilt (or pushed
# from the OCI layout cached in $RUDDER_CACHE/images/<name>-<key>). Bump the epoch to force a rebuild,
# e.g. to pick up Debian security updates.
#
# Needs the registry started (registry::start); registry.sh is sourced here if it was not already.

RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}
IMAGES_RECIPE_EPOCH=1
IMAGES_DEBIAN_SUITE=${IMAGES_DEBIAN_SUITE:-bookworm}
# Empty: the Debian mirror this host's apt uses.
IMAGES_DEBIAN_MIRROR=${IMAGES_DEBIAN_MIRROR:-}

IMAGES_SH=$(realpath "${BASH_SOURCE[0]}")
IMAGES_RECIPE_DIR=$(realpath "$(dirname "$IMAGES_SH")/../images")
# shellcheck source-path=SCRIPTDIR source=registry.sh
declare -F registry::manifest_digest >/dev/null || source "$(dirname "$IMAGES_SH")/registry.sh"

# name, registry repository, public tag
IMAGES_TABLE=(
  "nginx library/nginx latest"
  "busybox library/busybox latest"
  "pause pause 3.10"
)

images::log() { printf '[images] %s\n' "$*" >&2; }

# images::ensure makes every image of IMAGES_TABLE current in the registry, building what is missing.
images::ensure() {
  registry::answers || {
    images::log "failed to ensure images: no registry answers on $RUDDER_REGISTRY_ADDR (registry::start first)"
    return 1
  }
  local entry name repo tag key stale=()
  for entry in "${IMAGES_TABLE[@]}"; do
    read -r name repo tag <<<"$entry"
    key=$(images::recipe_key "$name") || return 1
    images::is_current "$repo" "$tag" "$key" || stale+=("$entry")
  done
  ((${#stale[@]} == 0)) && return 0

  mkdir -p "$RUDDER_CACHE/images"
  # One builder at a time: debootstrap's package cache and the layout cache are shared.
  (
    flock 9
    for entry in "${stale[@]}"; do
      read -r name repo tag <<<"$entry"
      key=$(images::recipe_key "$name") || exit 1
      # Another ensure may have finished it while this one waited for the lock.
      images::is_current "$repo" "$tag" "$key" && continue
      images::ensure_one "$name" "$repo" "$tag" "$key" || exit 1
    done
  ) 9>"$RUDDER_CACHE/images/.lock"
}

# images::is_current REPO TAG KEY: the registry serves REPO:TAG and it is the image recipe KEY built.
images::is_current() {
  local want have
  want=$(registry::manifest_digest "$1" "rudder-$3") || return 1
  have=$(registry::manifest_digest "$1" "$2") || return 1
  [[ $want == "$have" ]]
}

# images::ensure_one NAME REPO TAG KEY builds NAME's layout unless cached, then pushes it under both tags.
images::ensure_one() {
  local name=$1 repo=$2 tag=$3 key=$4
  local layout="$RUDDER_CACHE/images/$name-$key" log="$RUDDER_CACHE/images/build-$name.log"
  if [[ ! -f $layout/index.json ]]; then
    images::log "building $name (recipe $key); log: $log"
    local start=$SECONDS
    rm -rf "$layout.tmp"
    # A child bash, so that errexit holds inside the recipe whatever the caller's context.
    if ! RUDDER_CACHE=$RUDDER_CACHE IMAGES_DEBIAN_SUITE=$IMAGES_DEBIAN_SUITE \
      IMAGES_DEBIAN_MIRROR=$IMAGES_DEBIAN_MIRROR bash -euo pipefail -c 'source "$1"; shift; "$@"' images \
      "$IMAGES_SH" images::build "$name" "$layout.tmp" "$key" >"$log" 2>&1; then
      images::log "failed to build $name; last lines of $log:"
      tail -n 25 "$log" >&2 || true
      rm -rf "$layout.tmp"
      return 1
    fi
    # Layouts of older recipes are dead weight.
    local old
    for old in "$RUDDER_CACHE/images/$name"-*; do
      [[ -d $old && $old != "$layout.tmp" ]] && rm -rf "$old"
    done
    mv "$layout.tmp" "$layout"
    images::log "built $name in $((SECONDS - start))s"
  fi
  images::push_layout "$layout" "$repo" "$tag" || return 1
  images::push_layout "$layout" "$repo" "rudder-$key" || return 1
  images::log "pushed $RUDDER_REGISTRY_ADDR/$repo:$tag"
}

# images::recipe_key NAME prints the 16-hex-digit key of NAME's recipe.
images::recipe_key() {
  local name=$1 files
  files=$(find "$IMAGES_RECIPE_DIR" \( -path "$IMAGES_RECIPE_DIR/$name/*" -o -name "$name.*" \) -type f |
    LC_ALL=C sort) || return 1
  {
    echo "epoch=$IMAGES_RECIPE_EPOCH suite=$IMAGES_DEBIAN_SUITE"
    cat "$IMAGES_SH"
    local f
    for f in $files; do
      echo "== ${f#"$IMAGES_RECIPE_DIR"/}"
      cat "$f"
    done
  } | sha256sum | cut -c1-16
}

# images::push_layout LAYOUT REPO TAG pushes the image of an OCI layout written by images::write_oci.
images::push_layout() {
  local layout=$1 repo=$2 tag=$3
  images::need_commands skopeo:skopeo || return 1
  skopeo copy --quiet --insecure-policy --dest-tls-verify=false \
    "oci:$layout:image" "docker://$RUDDER_REGISTRY_ADDR/$repo:$tag" >&2 || {
    images::log "failed to push $layout to $RUDDER_REGISTRY_ADDR/$repo:$tag"
    return 1
  }
}

# images::push_rootfs ROOTFS REPO TAG CONFIG_JSON pushes a directory as a one-layer image; CONFIG_JSON
# is the image config's "config" object, e.g. '{"Entrypoint":["/agnhost"]}'. For test images.
images::push_rootfs() {
  local rootfs=$1 repo=$2 tag=$3 config=$4 layout
  layout=$(mktemp -d "${TMPDIR:-/tmp}/rudder-oci.XXXXXX") || return 1
  if ! images::write_oci "$rootfs" "$layout" "$config" "images::push_rootfs $repo:$tag"; then
    rm -rf "$layout"
    return 1
  fi
  images::push_layout "$layout" "$repo" "$tag"
  local rc=$?
  rm -rf "$layout"
  return "$rc"
}

# images::need_commands CMD:PKG... apt-installs PKG for each CMD that is not on PATH.
images::need_commands() {
  local spec missing=()
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
  done
  ((${#missing[@]} == 0)) || images::apt_install "${missing[@]}"
}

# images::apt_install PKG... installs packages, refreshing apt's lists first if that is what it takes.
images::apt_install() {
  images::log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 && return 0
  apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 && return 0
  images::log "failed to install $*"
  return 1
}

# --- Everything below runs in the child bash started by images::ensure_one, under errexit. ---

# images::build NAME LAYOUT KEY writes the OCI layout of image NAME.
images::build() {
  local name=$1 layout=$2 key=$3 work
  mkdir -p "$RUDDER_CACHE/images"
  work=$(mktemp -d "$RUDDER_CACHE/images/work.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "images::remove_work '$work'" EXIT
  mkdir "$work/rootfs"
  "images::rootfs_$name" "$work/rootfs" "$work"
  local config
  config=$("images::config_$name")
  config=${config%\}}",\"Labels\":{\"io.rudder.image-recipe\":\"$name-$key\"}}"
  images::write_oci "$work/rootfs" "$layout" "$config" "hack/lib/images.sh $name recipe $key"
}

# images::remove_work DIR unmounts whatever a failed chroot step left mounted under DIR, then removes it
# without ever crossing into another file system.
images::remove_work() {
  local dir=${1:?work dir} target
  while read -r target; do
    if [[ -n $target ]]; then umount -l "$target" 2>/dev/null || true; fi
  done < <(findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r)
  rm -rf --one-file-system "$dir"
}

images::config_nginx() {
  echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],'\
'"Cmd":["nginx","-g","daemon off;"],"ExposedPorts":{"80/tcp":{}},"StopSignal":"SIGQUIT","WorkingDir":"/"}'
}

images::rootfs_nginx() {
  local rootfs=$1
  images::debian_rootfs "$rootfs" nginx,procps,wget
  rm -f "$rootfs"/etc/nginx/sites-enabled/default "$rootfs"/var/www/html/index.nginx-debian.html
  install -m 0644 "$IMAGES_RECIPE_DIR/nginx/default.conf" "$rootfs/etc/nginx/conf.d/default.conf"
  install -D -m 0644 "$IMAGES_RECIPE_DIR/nginx/index.html" "$rootfs/usr/share/nginx/html/index.html"
  # Fail the build, not the pod, on a bad config (while the log files are still plain files).
  chroot "$rootfs" /usr/sbin/nginx -t
  # As upstream's image does: logs go to the container's stdout/stderr.
  rm -rf "$rootfs"/var/log/nginx && mkdir -p "$rootfs"/var/log/nginx
  ln -s /dev/stdout "$rootfs"/var/log/nginx/access.log
  ln -s /dev/stderr "$rootfs"/var/log/nginx/error.log
  images::slim_debian "$rootfs"
}

images::config_busybox() {
  echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}'
}

images::rootfs_busybox() {
  local rootfs=$1 work=$2 deb applet
  deb=$(images::debian_package busybox-static)
  dpkg-deb -x "$deb" "$work/pkg"
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,tmp,var,proc,sys,dev}
  chmod 1777 "$rootfs/tmp" && chmod 0700 "$rootfs/root"
  install -m 0755 "$work/pkg/bin/busybox" "$rootfs/bin/busybox"
  # What `busybox --install -s` would do, without running it inside the rootfs.
  while read -r applet; do
    [[ -e $rootfs/$applet || -L $rootfs/$applet ]] || ln -s /bin/busybox "$rootfs/$applet"
  done < <("$rootfs/bin/busybox" --list-full)
  install -m 0644 "$IMAGES_RECIPE_DIR/busybox/passwd" "$rootfs/etc/passwd"
  install -m 0644 "$IMAGES_RECIPE_DIR/busybox/group" "$rootfs/etc/group"
  mkdir -p "$rootfs/usr/share/doc/busybox-static"
  cp "$work/pkg/usr/share/doc/busybox-static/copyright" "$rootfs/usr/share/doc/busybox-static/" 2>/dev/null || true
}

images::config_pause() {
  echo '{"Entrypoint":["/pause"],"User":"65535:65535","WorkingDir":"/"}'
}

images::rootfs_pause() {
  local rootfs=$1
  images::need_commands gcc:gcc
  # gcc prints the bare name when it has no static libc to link against.
  [[ $(gcc -print-file-name=libc.a) == /* ]] || images::apt_install libc6-dev
  gcc -static -Os -s -Wall -Wextra -Werror -o "$rootfs/pause" "$IMAGES_RECIPE_DIR/pause.c"
}

# images::debian_mirror prints the Debian archive this host's apt uses (deb.debian.org if none is found).
images::debian_mirror() {
  if [[ -n $IMAGES_DEBIAN_MIRROR ]]; then echo "$IMAGES_DEBIAN_MIRROR"; return; fi
  local found
  found=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list \
    2>/dev/null | awk '
      /^URIs:/ { for (i = 2; i <= NF; i++) print $i }
      /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' |
    grep -E '/debian/?$' | head -n1) || true
  echo "${found:-http://deb.debian.org/debian}"
}

# images::debian_rootfs ROOTFS PACKAGES makes a minbase Debian root with PACKAGES (comma-separated).
images::debian_rootfs() {
  local rootfs=$1 packages=$2 debs="$RUDDER_CACHE/images/debs"
  images::need_commands debootstrap:debootstrap
  mkdir -p "$debs"
  # Two stages, so that a policy-rc.d denying service starts is in place before any postinst runs.
  debootstrap --variant=minbase --foreign --include="$packages" --cache-dir="$debs" \
    "$IMAGES_DEBIAN_SUITE" "$rootfs" "$(images::debian_mirror)"
  printf '#!/bin/sh\n# Containers do not start services when packages are installed.\nexit 101\n' \
    > "$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  chroot "$rootfs" /debootstrap/debootstrap --second-stage
}

# images::slim_debian ROOTFS drops what a container image does not need: apt lists and caches, docs
# (except copyrights), man pages, locales, logs, device nodes (the runtime mounts its own /dev).
images::slim_debian() {
  local r=${1:?rootfs}
  [[ $r != / ]] || return 1
  rm -rf "${r:?}"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/usr/share/man/* "$r"/usr/share/info/* \
    "$r"/usr/share/lintian "${r:?}"/dev/* "$r"/var/log/*.log "$r"/var/log/apt/*
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  : > "$r/etc/resolv.conf"
  echo localhost > "$r/etc/hostname"
  # Keep later `apt-get install`s in the container as slim.
  cat > "$r/etc/dpkg/dpkg.cfg.d/rudder-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
}

# images::debian_package PKG prints the path of PKG's .deb, downloading it into the package cache.
images::debian_package() {
  local pkg=$1 debs="$RUDDER_CACHE/images/debs" found
  mkdir -p "$debs"
  found=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | LC_ALL=C sort | tail -n1)
  if [[ -z $found ]]; then
    (cd "$debs" && apt-get download "$pkg" >&2) ||
      { apt-get update -qq >&2 && (cd "$debs" && apt-get download "$pkg" >&2); }
    found=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | LC_ALL=C sort | tail -n1)
  fi
  [[ -n $found ]] || { images::log "failed to download $pkg"; return 1; }
  echo "$found"
}

# images::write_oci ROOTFS LAYOUT CONFIG_JSON CREATED_BY writes ROOTFS as a one-layer linux image in an
# OCI image layout whose only image is named "image" (skopeo: oci:LAYOUT:image).
images::write_oci() {
  local rootfs=$1 layout=$2 config=$3 created_by=$4 arch now
  arch=$(dpkg --print-architecture) || return 1 # Debian and OCI agree on amd64 and arm64
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  mkdir -p "$layout/blobs/sha256" || return 1

  local tar="$layout/layer.tar" gz="$layout/layer.tar.gz" diff_id layer layer_size
  tar --numeric-owner --sort=name -C "$rootfs" -cf "$tar" . || return 1
  diff_id=$(sha256sum "$tar" | cut -d' ' -f1)
  if command -v pigz >/dev/null; then pigz -n -c "$tar" > "$gz"; else gzip -n -c "$tar" > "$gz"; fi || return 1
  rm -f "$tar"
  read -r layer layer_size < <(images::add_blob "$layout" "$gz") || return 1

  local cfg="$layout/config.json" cfg_digest cfg_size
  printf '{"created":"%s","architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"%s"}]}' \
    "$now" "$arch" "$config" "$diff_id" "$now" "$created_by" > "$cfg" || return 1
  read -r cfg_digest cfg_size < <(images::add_blob "$layout" "$cfg") || return 1

  local manifest="$layout/manifest.json" man_digest man_size
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$cfg_digest" "$cfg_size" "$layer" "$layer_size" > "$manifest" || return 1
  read -r man_digest man_size < <(images::add_blob "$layout" "$manifest") || return 1

  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"image"},"platform":{"architecture":"%s","os":"linux"}}]}' \
    "$man_digest" "$man_size" "$arch" > "$layout/index.json" || return 1
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
}

# images::add_blob LAYOUT FILE moves FILE into LAYOUT's blobs; prints "<sha256 hex> <size>".
images::add_blob() {
  local layout=$1 file=$2 hex size
  hex=$(sha256sum "$file" | cut -d' ' -f1) || return 1
  size=$(stat -c %s "$file") || return 1
  mv "$file" "$layout/blobs/sha256/$hex" || return 1
  echo "$hex $size"
}
