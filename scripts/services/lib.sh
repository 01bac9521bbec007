# shellcheck shell=bash
# Shared helpers for scripts/services/*: the state directory, pid files, waiting for a server,
# error messages that name the log to read, secrets in files, and `export` lines.
# Sourced, not run. The caller sets LB_ME (its name in messages) before sourcing.

set -euo pipefail

LB_ME="${LB_ME:-scripts/services}"
# shellcheck disable=SC2034 # used by the scripts that source this file
LB_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LB_STATE="${LIFEBOAT_SERVICES_DIR:-/tmp/lifeboat-services}"
# Every server listens on this address only.
LB_HOST=127.0.0.1

say() { printf '%s: %s\n' "$LB_ME" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$LB_ME" "$*" >&2
  exit 1
}

# die_log LOG MESSAGE...: fail, naming the log to read, and show its last lines.
die_log() {
  local log=$1
  shift
  printf '%s: error: %s\n' "$LB_ME" "$*" >&2
  printf '%s: read the log: %s\n' "$LB_ME" "$log" >&2
  if [ -s "$log" ]; then
    printf -- '----- last lines of %s -----\n' "$log" >&2
    tail -n 25 "$log" >&2 || true
    printf -- '-----\n' >&2
  fi
  exit 1
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 ||
      die "'$c' not found; install the packages with: scripts/services/install (as root)"
  done
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# The OS user a daemon runs as: its Debian service user when we are root (PostgreSQL refuses
# to run as root; the others are kept off root as in production), else whoever runs this.
svc_user() {
  if is_root; then echo "$1"; else id -un; fi
}

# as_user USER: set LB_AS to the command prefix that runs a program as USER, keeping the
# environment (setpriv: no PAM, no tty); empty when we are USER already.
as_user() {
  if [ "$1" = "$(id -un)" ]; then
    LB_AS=()
  else
    LB_AS=(setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups --)
  fi
}

# run_as USER CMD...: run CMD (a program, not a function) as USER.
run_as() {
  local user=$1
  shift
  as_user "$user"
  "${LB_AS[@]}" "$@"
}

# mkdir_owned USER MODE DIR...: create the dirs, owned by USER (when we are root).
mkdir_owned() {
  local user=$1 mode=$2 d
  shift 2
  for d in "$@"; do
    mkdir -p "$d"
    if is_root; then chown "$user:$(id -gn "$user")" "$d"; fi
    chmod "$mode" "$d"
  done
}

# The state dir must be reachable by the service users (a dir under /root is not).
check_reachable() {
  local user=$1 dir=$2
  if [ "$user" != "$(id -un)" ] && ! run_as "$user" test -x "$dir"; then
    die "user '$user' cannot reach $dir; choose a LIFEBOAT_SERVICES_DIR whose parents are" \
      "searchable by every user (the default /tmp/lifeboat-services is)"
  fi
}

state_root() {
  mkdir -p "$LB_STATE"
  chmod 755 "$LB_STATE"
}

# secret FILE: print the secret kept in FILE, creating it (24 random letters/digits, 0600)
# the first time. Secrets stay across stop/start so option files and data keep matching.
secret() {
  local f=$1
  mkdir -p "$(dirname "$f")"
  chmod 700 "$(dirname "$f")"
  if [ ! -s "$f" ]; then
    (
      umask 077
      head -c 96 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-24 >"$f.tmp"
    )
    mv "$f.tmp" "$f"
  fi
  chmod 600 "$f"
  cat "$f"
}

# write_private FILE OWNER: stdin to FILE, mode 0600, owned by OWNER (when root).
write_private() {
  local f=$1 owner=${2:-}
  (
    umask 077
    cat >"$f.tmp"
  )
  if [ -n "$owner" ] && is_root; then chown "$owner:$(id -gn "$owner")" "$f.tmp"; fi
  mv "$f.tmp" "$f"
}

# proc_alive PID: the process exists and is not a zombie (PID 1 here may be slow to reap the
# orphans our daemons become, and kill -0 succeeds on a zombie).
proc_alive() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [ "${s%% *}" != Z ]
}

# wait_gone PID SECONDS: wait until PID has exited; false if it is still there after SECONDS.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    proc_alive "$1" || return 0
    sleep 0.1
  done
  ! proc_alive "$1"
}

# pid_alive PIDFILE [COMM]: the pid in PIDFILE is a live process (whose command name is COMM).
pid_alive() {
  local f=$1 comm=${2:-} p
  [ -s "$f" ] || return 1
  p=$(head -n1 "$f" 2>/dev/null) || return 1
  [[ $p =~ ^[0-9]+$ ]] || return 1
  proc_alive "$p" || return 1
  if [ -n "$comm" ]; then
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ] || return 1
  fi
  return 0
}

pid_of() { head -n1 "$1" 2>/dev/null || true; }

# stop_pid PIDFILE COMM TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
# Removes PIDFILE. Returns 0 when nothing is left running.
stop_pid() {
  local f=$1 comm=$2 timeout=$3 p
  if pid_alive "$f" "$comm"; then
    p=$(pid_of "$f")
    kill -TERM "$p" 2>/dev/null || true
    if ! wait_gone "$p" "$timeout"; then
      say "pid $p ($comm) did not stop in ${timeout}s; killing it"
      kill -KILL "$p" 2>/dev/null || true
      wait_gone "$p" 10 || say "pid $p ($comm) is still there after SIGKILL"
    fi
  fi
  rm -f "$f"
}

# port_open PORT: something accepts TCP connections on LB_HOST:PORT.
port_open() {
  (exec 3<>"/dev/tcp/$LB_HOST/$1") 2>/dev/null
}

# port_free PORT WHAT: fail when PORT is taken by something else before we start WHAT.
port_free() {
  local port=$1 what=$2 who
  if port_open "$port"; then
    who=$(ss -ltnpH "sport = :$port" 2>/dev/null | head -n3 || true)
    die "port $port on $LB_HOST is already in use, so $what cannot start there: ${who:-unknown process}" \
      "(stop it, or choose another port: see docs/test-servers.md)"
  fi
}

# wait_for TIMEOUT PIDFILE COMM LOG WHAT CMD...: run CMD until it succeeds; fail early if the
# daemon in PIDFILE died, or after TIMEOUT seconds, naming LOG.
wait_for() {
  local timeout=$1 pidfile=$2 comm=$3 log=$4 what=$5 start
  shift 5
  start=$SECONDS
  while ! "$@" >/dev/null 2>&1; do
    if [ -n "$pidfile" ] && ! pid_alive "$pidfile" "$comm"; then
      die_log "$log" "$what exited during start-up"
    fi
    if ((SECONDS - start >= timeout)); then
      die_log "$log" "$what did not become ready within ${timeout}s"
    fi
    sleep 0.3
  done
}

# export_line NAME VALUE: one line for `env`: export NAME='VALUE', safe to source in any
# POSIX shell and easy to parse (a ' in VALUE would be written as '\'').
export_line() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }

# Run a daemon in the background in its own session, stdout/stderr appended to LOG, and
# write its pid to PIDFILE. Usage: spawn PIDFILE LOG CMD... (a program, not a function)
spawn() {
  local pidfile=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

usage_die() {
  printf 'usage: %s %s\n' "$LB_ME" "$1" >&2
  exit 2
}
