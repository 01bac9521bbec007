# shellcheck shell=bash
# Shared by scripts/remote/{sftp,swift,keystone,all}: state directory, pid files, waiting for
# ports, and error messages that name the log to read. Sourced, not run.

REMOTE_DIR="${LIFEBOAT_REMOTE_DIR:-/tmp/lifeboat-remote}"
case "$REMOTE_DIR" in
  /*[[:space:]]* | *[[:space:]]*) echo "LIFEBOAT_REMOTE_DIR must not contain whitespace: '$REMOTE_DIR'" >&2; exit 2 ;;
  /*) ;;
  *) echo "LIFEBOAT_REMOTE_DIR must be an absolute path: '$REMOTE_DIR'" >&2; exit 2 ;;
esac
# shellcheck disable=SC2034 # used by the scripts that source this file
SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Debian's python, not whatever python3 comes first on PATH (pyenv, venvs): the Swift,
# Keystone and boto3 modules are installed for /usr/bin/python3 only.
# shellcheck disable=SC2034
PY=/usr/bin/python3

die() {
  echo "${NAME:-remote}: $*" >&2
  exit 1
}

say() { echo "${NAME:-remote}: $*" >&2; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root"
}

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] ||
      die "$c not found: run scripts/remote/install first"
  done
}

# No `cmd | grep -q` anywhere in these scripts: grep -q exits at the first match, the writer
# may then die of SIGPIPE, and with pipefail the pipeline fails although it matched.

# pid_alive PIDFILE MARKER: the pid in PIDFILE is a live process whose command line contains
# MARKER (a path in the state dir), so a recycled pid is never taken for ours.
pid_alive() {
  local pidfile="$1" marker="$2" pid
  [ -s "$pidfile" ] || return 1
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  local cmd
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmd" == *"$marker"* ]]
}

# pids_matching MARKER: every process whose command line contains MARKER (the component's
# state dir), for stop to catch what a lost pid file would leave behind.
pids_matching() {
  local marker="$1" d pid cmd
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    [ "$pid" = "$$" ] && continue
    [ "$pid" = "$BASHPID" ] && continue
    cmd="$(tr '\0' ' ' 2>/dev/null <"$d/cmdline")" || continue
    case "$cmd" in
      # Not our own shell or one of its helpers (their command lines carry the marker too
      # when it was passed as an argument).
      *scripts/remote/*) continue ;;
      *"$marker"*) echo "$pid" ;;
    esac
  done
}

# kill_pids SECONDS PID...: TERM, wait up to SECONDS, then KILL.
kill_pids() {
  local secs="$1" p i alive
  shift
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    alive=""
    for p in "$@"; do
      if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
        alive=1
      fi
    done
    [ -z "$alive" ] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}

# stop_dir_processes DIR: kill the processes of the pid files in DIR/run, then anything still
# running whose command line names DIR (what a lost pid file would leave behind). Zombies do
# not count: on machines whose pid 1 does not reap orphans, killed daemons stay <defunct>.
stop_dir_processes() {
  local dir="$1" pids p f
  pids=""
  for f in "$dir"/run/*.pid; do
    [ -e "$f" ] || continue
    if pid_alive "$f" "$dir"; then pids="$pids $(cat "$f")"; fi
  done
  # shellcheck disable=SC2086
  kill_pids 10 $pids
  pids="$(pids_matching "$dir/")"
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill_pids 5 $pids
  fi
  rm -f "$dir"/run/*.pid
  for p in $(pids_matching "$dir/"); do
    say "warning: process $p still running after stop"
  done
}

# port_busy HOST PORT: something listens there.
port_busy() {
  ss -Htln "sport = :$2" 2>/dev/null | awk '{print $4}' | grep -E "^(${1//./\\.}|\\*|0\\.0\\.0\\.0|\\[::\\]):$2$" >/dev/null
}

# wait_port HOST PORT SECONDS PIDFILE MARKER LOG: wait until HOST:PORT accepts connections;
# fail naming LOG if the process dies or time runs out.
wait_port() {
  local host="$1" port="$2" secs="$3" pidfile="$4" marker="$5" log="$6" i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    if ! pid_alive "$pidfile" "$marker"; then
      show_log "$log"
      die "process for $host:$port exited during start; read $log"
    fi
    sleep 0.1
  done
  show_log "$log"
  die "$host:$port not listening after ${secs}s; read $log"
}

show_log() {
  [ -s "$1" ] || return 0
  echo "---- last lines of $1" >&2
  tail -n 30 "$1" >&2
  echo "----" >&2
}

# spawn PIDFILE LOG CMD...: run CMD in the background, detached from this shell's terminal
# and session, output to LOG, its pid in PIDFILE.
spawn() {
  local pidfile="$1" log="$2"
  shift 2
  setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
}

# random_secret FILE: a 32-character secret kept in FILE (created once, mode 600).
random_secret() {
  local f="$1"
  if [ ! -s "$f" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' 'xy' >"$f")
  fi
  cat "$f"
}

# guard_start DIR: if the start that calls this fails, stop the processes it left in DIR (the
# files, logs included, stay for reading; `stop` deletes them).
guard_start() {
  GUARD_DIR="$1"
  trap guard_exit EXIT
}

guard_exit() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    stop_dir_processes "$GUARD_DIR"
    say "start failed: its processes are stopped, its logs kept in $GUARD_DIR/log; '$0 stop' deletes them"
  fi
}

# emit NAME VALUE: one `export NAME=VALUE` line, VALUE quoted for the shell when it needs it.
emit() {
  printf 'export %s=%q\n' "$1" "$2"
}

usage() {
  echo "usage: $0 {start|stop|status|env}" >&2
  exit 2
}
