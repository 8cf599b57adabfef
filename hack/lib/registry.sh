# shellcheck shell=bash
# The local image registry: Debian's docker-registry (docker/distribution 2.8) serving the images built
# by images.sh. The nodes' containerd instances mirror docker.io and registry.k8s.io to it.
#
# Its storage lives in the cache ($RUDDER_CACHE/registry) so pushed images survive down/up; its config,
# pid and log live with the cluster state ($RUDDER_HOME). Started by hand: there is no systemd here.

RUDDER_HOME=${RUDDER_HOME:-/var/lib/rudder}
RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}
# host:port; the contract (hack/README.md) is 127.0.0.1:5000, overridable only for side-by-side tests.
RUDDER_REGISTRY_ADDR=${RUDDER_REGISTRY_ADDR:-127.0.0.1:5000}

# Manifest media types a registry may store our images under; a HEAD without them gets a 404 for OCI.
REGISTRY_MANIFEST_ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"
REGISTRY_MANIFEST_ACCEPT+=",application/vnd.docker.distribution.manifest.v2+json"
REGISTRY_MANIFEST_ACCEPT+=",application/vnd.docker.distribution.manifest.list.v2+json"

registry::log() { printf '[registry] %s\n' "$*" >&2; }

registry::pidfile() { echo "$RUDDER_HOME/run/registry.pid"; }

# registry::running_pid prints the PID of the registry this cluster started, if it is still that process.
registry::running_pid() {
  local pidfile pid cmdline
  pidfile=$(registry::pidfile)
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # A PID alone could have been recycled by an unrelated process since the pidfile was written.
  cmdline=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") || return 1
  [[ $cmdline == *docker-registry* ]] || return 1
  echo "$pid"
}

# registry::answers succeeds when the registry's API root answers.
registry::answers() {
  curl -fsS --max-time 2 -o /dev/null "http://$RUDDER_REGISTRY_ADDR/v2/" 2>/dev/null
}

# registry::binary prints the docker-registry binary, unpacking Debian's package into the cache when
# it is not installed. Unpacked rather than apt-get installed: the package's init script would start a
# second registry, on the same port, with its own storage and auth.
registry::binary() {
  if command -v docker-registry >/dev/null; then command -v docker-registry; return 0; fi
  local dir="$RUDDER_CACHE/tools/docker-registry"
  if [[ ! -x $dir/usr/bin/docker-registry ]]; then
    registry::log "docker-registry is not installed: unpacking Debian's package into $dir"
    local tmp; tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download docker-registry >/dev/null 2>&1) &&
      ! { apt-get update -qq >&2 && (cd "$tmp" && apt-get download docker-registry >&2); }; then
      rm -rf "$tmp"
      registry::log "failed to download the docker-registry package"
      return 1
    fi
    if ! { mkdir -p "$dir" && dpkg-deb -x "$tmp"/docker-registry_*.deb "$dir"; }; then
      rm -rf "$tmp"
      registry::log "failed to unpack the docker-registry package into $dir"
      return 1
    fi
    rm -rf "$tmp"
  fi
  echo "$dir/usr/bin/docker-registry"
}

# registry::write_config writes the registry's config: no auth, bound to loopback only.
registry::write_config() {
  local config=$1
  mkdir -p "$(dirname "$config")" "$RUDDER_CACHE/registry"
  cat > "$config" <<EOF
# Written by hack/lib/registry.sh: rewritten on every start.
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $RUDDER_CACHE/registry
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $RUDDER_REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

# registry::start starts the registry unless it already runs; returns once /v2/ answers.
registry::start() {
  local pidfile log config bin pid
  pidfile=$(registry::pidfile)
  log="$RUDDER_HOME/logs/registry.log"
  config="$RUDDER_HOME/registry/config.yml"

  if pid=$(registry::running_pid); then
    registry::wait_ready "$pid" "$log" && return 0
    return 1
  fi
  if registry::answers; then
    registry::log "failed to start: $RUDDER_REGISTRY_ADDR is already served by a registry this cluster did" \
      "not start (no live PID in $pidfile); stop it first (ss -ltnp | grep ${RUDDER_REGISTRY_ADDR##*:})"
    return 1
  fi
  command -v curl >/dev/null || { registry::log "failed to start: curl is required"; return 1; }

  bin=$(registry::binary) || return 1
  mkdir -p "$RUDDER_HOME/run" "$RUDDER_HOME/logs"
  registry::write_config "$config"
  rm -f "$pidfile"
  # setsid + exec: the pidfile holds the registry's own PID, and it outlives the launcher's shell.
  # shellcheck disable=SC2016 # $$ and $1.. belong to the inner sh
  setsid sh -c 'echo $$ > "$1"; exec "$2" serve "$3"' registry "$pidfile" "$bin" "$config" \
    >>"$log" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && break
    sleep 0.1
  done
  [[ -s $pidfile ]] || { registry::log "failed to start: no pidfile at $pidfile"; return 1; }
  pid=$(<"$pidfile")
  registry::wait_ready "$pid" "$log" || return 1
  registry::log "serving on http://$RUDDER_REGISTRY_ADDR (pid $pid, storage $RUDDER_CACHE/registry)"
}

# registry::wait_ready PID LOG waits up to 30 s for /v2/ to answer while PID lives.
registry::wait_ready() {
  local pid=$1 log=$2 i
  for ((i = 0; i < 300; i++)); do
    registry::answers && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      registry::log "failed to start: docker-registry (pid $pid) exited; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  registry::log "failed to start: http://$RUDDER_REGISTRY_ADDR/v2/ did not answer within 30s; see $log"
  return 1
}

# registry::stop stops the registry this cluster started; does nothing when it is not running.
registry::stop() {
  local pidfile pid i
  pidfile=$(registry::pidfile)
  if ! pid=$(registry::running_pid); then
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    registry::log "docker-registry (pid $pid) ignored SIGTERM for 10s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  registry::log "stopped (pid $pid)"
}

# registry::manifest_digest REPO REF prints the digest the registry serves for REPO:REF (a tag), or
# fails when it has none.
registry::manifest_digest() {
  local repo=$1 ref=$2 digest
  digest=$(curl -fsS --max-time 5 -I -H "Accept: $REGISTRY_MANIFEST_ACCEPT" \
    "http://$RUDDER_REGISTRY_ADDR/v2/$repo/manifests/$ref" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }') || return 1
  [[ -n $digest ]] || return 1
  echo "$digest"
}
