#!/usr/bin/env bash
# Backup and restore over SFTP, S3 and Swift (issue 5): lifeboat against restic and rustic on
# the same corpus, against the project's own test servers on this machine (scripts/remote/all:
# OpenSSH sftp on 127.0.0.2:2222, Swift all-in-one with tempauth and s3api on 127.0.0.1:8080).
#
# usage: bench/remote.sh [--small] [--tools lifeboat,restic,rustic] [--backends sftp,s3,swift]
#                        [--repeat N] [--no-build] [--no-faults] [--keep]
#
#   --small      the ~100 MiB tree of `corpus.sh --small` plus a 256 MiB SQL dump (~360 MiB,
#                ~5-10 min for everything); without it the >= 1 GiB tree plus a 1 GiB dump
#   --tools      subset of lifeboat,restic,rustic (rustic is skipped, with a note, when absent)
#   --backends   subset of sftp,s3,swift
#   --repeat N   N rounds (fresh repositories each, tools in rotated order); medians reported
#   --no-build   do not run `cargo build --release -p lifeboat` first
#   --no-faults  skip lifeboat's backup under injected request failures
#   --keep       keep the repositories (SFTP dir, Swift containers) after the run
#
# Per backend and tool, each under `/usr/bin/time -f '%e %U %S %M'` (lib/measure.sh): the first
# backup of the corpus into an empty repository, and the restore of that snapshot into a fresh
# local directory (verified against the source: listing with modes and mtimes, SHA-1 of every
# file). For lifeboat also a first backup into another empty repository with
# LIFEBOAT_FAULTS="error=0.05,seed=1" (5% of storage requests fail with a retryable error and
# are retried with backoff), followed by an untimed `check` of that repository.
# Targets (issue 5): lifeboat <= 0.5x restic's wall time for first backup and restore on each
# backend; the backup under 5% failures <= 1.5x the fault-free one.
#
# Every tool uses its default number of connections (lifeboat 4 sftp / 8 s3,swift; restic 5;
# rustic: opendal without a limit) and authenticates the same way: SFTP with the test server's
# ssh_config (key, port, known_hosts); Swift with tempauth on 8080 (ST_AUTH/ST_USER/ST_KEY,
# OS_* unset; rustic's opendal swift takes a pre-issued tempauth token); S3 with the tempauth
# user's access key, path-style, on the same proxy. rustic's opendal sftp runs the system ssh
# without a config option, so an `ssh` wrapper adding `-F <ssh_config>` is put first in its PATH.
#
# Environment: LIFEBOAT_BIN, RUSTIC_BIN, BENCH_WORK like run.sh; BENCH_FAULTS (default
# "error=0.05,seed=1"); LIFEBOAT_REMOTE_ARGS (extra lifeboat options, e.g. "--connections 8");
# BENCH_RESTORE_DIR (where the restored trees go, default the run dir; e.g. /dev/shm).
# Output: the table on stdout, bench/work/results-remote-<date>[-small].md and
# bench/work/remote-<set>/ (results.tsv, meta.txt, every command's log).
set -uo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
WORK="${BENCH_WORK:-$BENCH/work}"
export BENCH_WORK="$WORK"

SMALL=""
TOOLS="lifeboat,restic,rustic"
BACKENDS="sftp,s3,swift"
BUILD=1
ROUNDS=1
FAULT_RUN=1
KEEP=0
while (($#)); do
    case "$1" in
        --small) SMALL=--small ;;
        --tools) TOOLS="$2"; shift ;;
        --backends) BACKENDS="$2"; shift ;;
        --repeat) ROUNDS="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --no-faults) FAULT_RUN=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
SET=full; [[ -n $SMALL ]] && SET=small
IFS=, read -r -a TOOL_LIST <<< "$TOOLS"
IFS=, read -r -a BACKEND_LIST <<< "$BACKENDS"

LIFEBOAT="${LIFEBOAT_BIN:-$ROOT/target/release/lifeboat}"
RUSTIC="${RUSTIC_BIN:-$WORK/tools/bin/rustic}"
TIME=/usr/bin/time
PASSWORD="lifeboat-bench-password"
FAULTS="${BENCH_FAULTS:-error=0.05,seed=1}"
read -r -a LB_EXTRA <<< "${LIFEBOAT_REMOTE_ARGS:-}"

die() { echo "remote.sh: $*" >&2; exit 1; }
note() { echo "== $*" >&2; }

# shellcheck source=lib/measure.sh
source "$BENCH/lib/measure.sh"

# ---------------------------------------------------------------- preparation
[[ -x $TIME ]] || die "GNU time missing: run bench/install.sh"
command -v curl >/dev/null || die "curl missing"
SKIPPED=()
TOOLS_OK=()
for t in "${TOOL_LIST[@]}"; do
    case $t in
        lifeboat) TOOLS_OK+=(lifeboat) ;;
        restic) if command -v restic >/dev/null; then TOOLS_OK+=(restic); else SKIPPED+=("restic: not installed (bench/install.sh)"); fi ;;
        rustic) if [[ -x $RUSTIC ]]; then TOOLS_OK+=(rustic); else SKIPPED+=("rustic: not installed at $RUSTIC (bench/install.sh builds it, ~16 min)"); fi ;;
        *) die "unknown tool $t" ;;
    esac
done
TOOL_LIST=("${TOOLS_OK[@]}")
((${#TOOL_LIST[@]})) || die "no tool to run"
for b in "${BACKEND_LIST[@]}"; do
    case $b in sftp|s3|swift) ;; *) die "unknown backend $b" ;; esac
done
for s in "${SKIPPED[@]}"; do note "skipped: $s"; done

mkdir -p "$WORK"
if [[ $BUILD == 1 && -z ${LIFEBOAT_BIN:-} ]]; then
    build_lifeboat "$ROOT" "$WORK" || die "lifeboat build failed"
fi
[[ -x $LIFEBOAT ]] || die "no lifeboat binary at $LIFEBOAT"

note "test servers: scripts/remote/all start (idempotent)"
"$ROOT/scripts/remote/all" start >&2 || die "scripts/remote/all start failed"
eval "$("$ROOT/scripts/remote/all" env)" || die "scripts/remote/all env failed"

# -- corpus: the set's tree (a private copy, so corpus.sh change/reset of run.sh cannot touch
# it mid-run) plus a deterministic SQL dump from lib/gen_sql.py
"$BENCH/corpus.sh" $SMALL build 2>&1 | sed 's/^/   /' >&2
CORPUS="$("$BENCH/corpus.sh" $SMALL path)"
if [[ $SET == small ]]; then SQL_BYTES=$((256 * 1024 * 1024)); else SQL_BYTES=$((1024 * 1024 * 1024)); fi
SRC="$WORK/corpus/remote-$SET"
DATA="$SRC/data"   # the backed-up directory: tree/ and dump.sql
if ! cmp -s "$SRC/MANIFEST.tree" "$CORPUS/MANIFEST" || [[ ! -f $SRC/.tree-done ]]; then
    note "copying the $SET tree into $DATA/tree"
    rm -rf "$DATA/tree" "$SRC/.tree-done"
    mkdir -p "$DATA"
    cp -a "$CORPUS/tree" "$DATA/tree" || die "copy of the tree failed"
    # a run.sh in progress may have its 1% change applied: undo it in the copy only
    if [[ -d $CORPUS/change-stash ]]; then
        python3 "$BENCH/lib/change1pct.py" reset "$DATA/tree" "$CORPUS/change-stash" >/dev/null || die "undoing the change in the copy failed"
    fi
    cp "$CORPUS/MANIFEST" "$SRC/MANIFEST.tree"
    touch "$SRC/.tree-done"
fi
if [[ ! -f $DATA/dump.sql || $(cat "$SRC/.sql-done" 2>/dev/null) != "$SQL_BYTES" ]]; then
    note "generating a $((SQL_BYTES / 1048576)) MiB SQL dump (lib/gen_sql.py)"
    rm -f "$SRC/.sql-done"
    python3 "$BENCH/lib/gen_sql.py" "$SQL_BYTES" > "$DATA/dump.sql.tmp" && mv "$DATA/dump.sql.tmp" "$DATA/dump.sql" \
        || die "gen_sql.py failed"
    echo "$SQL_BYTES" > "$SRC/.sql-done"   # gen_sql.py ends on a whole row: a few KiB more
fi

RUN="$WORK/remote-$SET"
rm -rf "$RUN"
# BENCH_RESTORE_DIR puts the restored trees elsewhere, e.g. /dev/shm to compare the tools
# without the disk's write-back (which dominates and varies on a slow disk).
RESTORE_ROOT="${BENCH_RESTORE_DIR:-$RUN}/restore"
mkdir -p "$RUN/logs" "$RUN/cache" "$RUN/config" "$RUN/bin" "$RESTORE_ROOT"
TSV="$RUN/results.tsv"
META="$RUN/meta.txt"
: > "$TSV"
: > "$RUN/anomalies.txt"

export LIFEBOAT_PASSWORD="$PASSWORD" RESTIC_PASSWORD="$PASSWORD" RUSTIC_PASSWORD="$PASSWORD"
export LIFEBOAT_CACHE_DIR="$RUN/cache/lifeboat"
export XDG_CONFIG_HOME="$RUN/config"
unset RESTIC_REPOSITORY RUSTIC_REPOSITORY LIFEBOAT_REPOSITORY LIFEBOAT_FAULTS LIFEBOAT_CONNECTIONS LIFEBOAT_SSH_CONFIG
# rustic reads every OPENDAL_* variable as a backend option: none may leak in
for v in $(compgen -e | grep '^OPENDAL' || true); do unset "$v"; done
# Swift is measured with tempauth on 8080 for every tool: the Keystone OS_* variables would
# make restic and lifeboat go to Keystone (8081) instead, so they are unset here.
for v in $(compgen -e | grep '^OS_' || true); do unset "$v"; done
export ST_AUTH="$LIFEBOAT_SWIFT_AUTH_URL" ST_USER="$LIFEBOAT_SWIFT_USER" ST_KEY="$LIFEBOAT_SWIFT_KEY"
STORAGE="$LIFEBOAT_SWIFT_STORAGE_URL"
S3_ENDPOINT="$LIFEBOAT_S3_ENDPOINT"
SSH_CONFIG="$LIFEBOAT_SFTP_SSH_CONFIG"
SFTP_ALIAS="$LIFEBOAT_SFTP_HOST_ALIAS"

# ssh wrapper for rustic (opendal's sftp runs `ssh` from PATH and has no config option)
printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$SSH_CONFIG" > "$RUN/bin/ssh"
chmod +x "$RUN/bin/ssh"

swift_token() {
    curl -sS -D - -o /dev/null -H "X-Auth-User: $ST_USER" -H "X-Auth-Key: $ST_KEY" "$ST_AUTH" \
        | awk -F': ' 'tolower($1) == "x-auth-token" {print $2}' | tr -d '\r'
}
TOKEN="$(swift_token)"
[[ -n $TOKEN ]] || die "no tempauth token from $ST_AUTH"

# A run id makes every remote location new: SFTP dir, container/bucket names.
RUNID="$(date -u +%Y%m%d%H%M%S)-$$"
SFTP_BASE="$LIFEBOAT_SFTP_DIR/bench-remote-$RUNID"
CONTAINERS=()
new_container() {  # new_container NAME: create a Swift container (= S3 bucket of the account)
    local code
    code="$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $TOKEN" "$STORAGE/$1")"
    [[ $code == 201 || $code == 202 ]] || die "creating container $1: HTTP $code"
    CONTAINERS+=("$1")
}
# object_bytes CONTAINER PREFIX: total bytes of the objects under PREFIX/ (paged listing)
object_bytes() {
    python3 - "$STORAGE" "$TOKEN" "$1" "$2/" <<'EOF'
import json, sys, urllib.parse, urllib.request
storage, token, container, prefix = sys.argv[1:5]
total, marker = 0, ""
while True:
    q = urllib.parse.urlencode({"format": "json", "prefix": prefix, "marker": marker, "limit": 10000})
    req = urllib.request.Request("%s/%s?%s" % (storage, container, q), headers={"X-Auth-Token": token})
    items = json.load(urllib.request.urlopen(req))
    if not items:
        break
    total += sum(i["bytes"] for i in items)
    marker = items[-1]["name"]
print(total)
EOF
}
# delete_container NAME: bulk-delete every object, then the container
delete_container() {
    local c="$1" i list
    for ((i = 0; i < 100; i++)); do
        list="$(curl -sS -H "X-Auth-Token: $TOKEN" "$STORAGE/$c?limit=10000")" || break
        [[ -z $list ]] && break
        sed "s|^|$c/|" <<< "$list" | curl -sS -o /dev/null -X POST -H "X-Auth-Token: $TOKEN" \
            -H 'Content-Type: text/plain' --data-binary @- "$STORAGE?bulk-delete" || break
    done
    curl -sS -o /dev/null -X DELETE -H "X-Auth-Token: $TOKEN" "$STORAGE/$c"
}
cleanup() {
    ((KEEP)) && return
    rm -rf "$SFTP_BASE"
    local c
    for c in "${CONTAINERS[@]}"; do delete_container "$c"; done
}
trap cleanup EXIT

{
    host_meta
    echo "lifeboat binary: $LIFEBOAT (built $(date -u -r "$LIFEBOAT" '+%Y-%m-%d %H:%M:%SZ'))"
    echo "set: $SET"
    echo "restores into: $RESTORE_ROOT ($(df -T "$RESTORE_ROOT" | awk 'NR==2 {print $2}'))"
    echo "fs of run dir: $(df -T "$RUN" | awk 'NR==2 {print $2}'); SFTP server dir $LIFEBOAT_SFTP_DIR ($(df -T "$LIFEBOAT_SFTP_DIR" | awk 'NR==2 {print $2}')); Swift storage under ${LIFEBOAT_REMOTE_DIR:-/tmp/lifeboat-remote}/swift"
    echo "servers: sftp $LIFEBOAT_SFTP_USER@$LIFEBOAT_SFTP_HOST:$LIFEBOAT_SFTP_PORT (OpenSSH $(ssh -V 2>&1 | cut -d, -f1)); swift/s3 proxy ${LIFEBOAT_SWIFT_PROXY_URL:-$S3_ENDPOINT} (swift $(dpkg-query -W -f '${Version}' swift 2>/dev/null), tempauth, s3api)"
    echo "corpus: $DATA: tree/ $(awk -F': ' '/^tree files/ {f=$2} /^tree bytes/ {b=$2} END {printf "%d files, %d bytes", f, b}' "$CORPUS/MANIFEST") (tree listing sha256 $(awk -F': ' '/listing sha256/ {print $2}' "$CORPUS/MANIFEST")), dump.sql $(stat -c %s "$DATA/dump.sql") bytes (gen_sql.py)"
    echo "connections: tool defaults (lifeboat: 4 sftp, 8 s3/swift; restic: 5; rustic: opendal, no limit)${LIFEBOAT_REMOTE_ARGS:+; lifeboat extra args: $LIFEBOAT_REMOTE_ARGS}"
    echo "fault injection (lifeboat only): LIFEBOAT_FAULTS=$FAULTS"
    echo "cache: not dropped; a read walk of the corpus and a sync precede every backup; every tool's cache starts empty"
    echo "rounds: $ROUNDS (median of each number; tools in rotated order per round)"
    for s in "${SKIPPED[@]}"; do echo "skipped: $s"; done
    echo "note: client and servers share this machine's cores; the load column shows the 1-minute load average"
} > "$META"
cat "$META" >&2

# ---------------------------------------------------------------- helpers
anomaly() { echo "round $ROUND: $*" >> "$RUN/anomalies.txt"; echo "   !! ANOMALY: $*" >&2; }
warm() { tar -cf - -C "$DATA" . 2>/dev/null | cat > /dev/null; find "$DATA" -printf '%s %T@\n' > /dev/null; }
# set_last COLUMN VALUE: overwrite a column (1-based) of the last TSV row
set_last() {
    awk -F'\t' -v OFS='\t' -v n="$(wc -l < "$TSV")" -v c="$1" -v v="$2" 'NR == n {$c = v} {print}' "$TSV" > "$TSV.tmp" \
        && mv "$TSV.tmp" "$TSV"
}
# fail_row OP TOOL RC REASON: a row for a step that could not run (e.g. init failed)
fail_row() {
    printf '%s\t%s\t\t\t\t\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(cut -d' ' -f1 /proc/loadavg)" "$4" "$ROUND" >> "$TSV"
}
# log_of OP TOOL: the log file measure() wrote for that step (same slug as lib/measure.sh)
log_of() { echo "$RUN/logs/$(echo "r$ROUND-$2-$1" | tr -c 'A-Za-z0-9_.-' '_').log"; }
# reason LOG: the most telling error line of a log, one line, tabs removed
reason() {
    local l
    l="$(grep -E -i 'fatal|error|failed|refused|denied|not supported' "$1" | grep -v '^\$ ' | tail -1)"
    [[ -z $l ]] && l="$(grep -v '^\$ ' "$1" | grep -v '^\s*$' | tail -1)"
    echo "$l" | tr '\t' ' ' | cut -c1-300
}

listing() {
    (cd "$1" && find . -mindepth 1 \( -type f -printf '%P\tf\t%s\t%m\t\t%TY-%Tm-%Td %TH:%TM:%.2TS\n' \) -o \
        \( -type l -printf '%P\tl\t\t\t%l\n' \) -o \( -type d -printf '%P\td\t\t%m\n' \) -o -printf '%P\t%y\n') \
        | LC_ALL=C sort
}
contents() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha1sum); }
listing "$DATA" > "$RUN/src.listing"
contents "$DATA" > "$RUN/src.sha1"

# verify_tree TOOL BACKEND DIR: compare a restored copy of $DATA with the source; prints ok/FAIL
verify_tree() {
    local tool="$1" be="$2" dir="$3" out="$RUN/logs/r$ROUND-$2-$1-restore"
    if [[ ! -d $dir ]]; then anomaly "$be $tool restore: $dir does not exist"; echo "FAIL (missing)"; return 1; fi
    listing "$dir" > "$out.listing"
    contents "$dir" > "$out.sha1"
    local ok=1
    if ! cmp -s "$out.listing" "$RUN/src.listing"; then
        ok=0
        anomaly "$be $tool restore: listing differs from the source ($(diff "$RUN/src.listing" "$out.listing" | grep -c '^[<>]') lines); first differences:"
        diff "$RUN/src.listing" "$out.listing" | grep '^[<>]' | head -6 | sed 's/^/      /' | tee -a "$RUN/anomalies.txt" >&2
    fi
    if ! cmp -s "$out.sha1" "$RUN/src.sha1"; then
        ok=0
        anomaly "$be $tool restore: file contents differ from the source"
        diff "$RUN/src.sha1" "$out.sha1" | grep '^[<>]' | head -6 | sed 's/^/      /' | tee -a "$RUN/anomalies.txt" >&2
    fi
    if ((ok)); then echo "   $be $tool restore verified: listing and contents match" >&2; echo ok; else echo FAIL; fi
}

# ---------------------------------------------------------------- locations per backend
# repo_url BACKEND TOOL NAME -> sets URL (the tool's repository argument) and SIZE_PATH / SIZE_OBJ
# (how to measure its size: a local dir, or "container prefix").
repo_location() {
    local be="$1" tool="$2" name="$3"
    SIZE_PATH=""; SIZE_OBJ=""
    case $be in
        sftp)
            local p="$SFTP_BASE/r$ROUND-$name"
            SIZE_PATH="$p"
            case $tool in
                lifeboat) URL="sftp://$LIFEBOAT_SFTP_USER@$LIFEBOAT_SFTP_HOST:$LIFEBOAT_SFTP_PORT$p" ;;
                restic) URL="sftp:$SFTP_ALIAS:$p" ;;
                rustic) URL="opendal:sftp"; RUSTIC_ENV=(PATH="$RUN/bin:$PATH" OPENDAL_ENDPOINT="ssh://$LIFEBOAT_SFTP_USER@$LIFEBOAT_SFTP_HOST:$LIFEBOAT_SFTP_PORT" OPENDAL_ROOT="$p") ;;
            esac ;;
        s3)
            SIZE_OBJ="$BUCKET r$ROUND-$name"
            case $tool in
                lifeboat) URL="s3://$BUCKET/r$ROUND-$name" ;;
                restic) URL="s3:$S3_ENDPOINT/$BUCKET/r$ROUND-$name" ;;
                rustic) URL="opendal:s3"; RUSTIC_ENV=(OPENDAL_ENDPOINT="$S3_ENDPOINT" OPENDAL_BUCKET="$BUCKET" OPENDAL_ROOT="/r$ROUND-$name"
                        OPENDAL_REGION="${AWS_DEFAULT_REGION:-us-east-1}" OPENDAL_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" OPENDAL_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY") ;;
            esac ;;
        swift)
            SIZE_OBJ="$CONTAINER r$ROUND-$name"
            case $tool in
                lifeboat) URL="swift://$CONTAINER/r$ROUND-$name" ;;
                restic) URL="swift:$CONTAINER:/r$ROUND-$name" ;;
                rustic) URL="opendal:swift"; RUSTIC_ENV=(OPENDAL_ENDPOINT="$STORAGE" OPENDAL_CONTAINER="$CONTAINER" OPENDAL_ROOT="/r$ROUND-$name" OPENDAL_TOKEN="$TOKEN") ;;
            esac ;;
    esac
}

# tool_cmd BACKEND TOOL: sets CMD (array) = the tool's command with repository and backend options
tool_cmd() {
    local be="$1" tool="$2"
    case $tool in
        lifeboat)
            CMD=("$LIFEBOAT" -r "$URL" --no-progress)
            [[ $be == sftp ]] && CMD+=(--ssh-config "$SSH_CONFIG")
            [[ $be == s3 ]] && CMD+=(--s3-endpoint "$S3_ENDPOINT")
            CMD+=("${LB_EXTRA[@]}") ;;
        restic)
            CMD=(env XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$URL")
            [[ $be == sftp ]] && CMD+=(-o "sftp.command=ssh -F $SSH_CONFIG $SFTP_ALIAS -s sftp") ;;
        rustic)
            CMD=(env "${RUSTIC_ENV[@]}" XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$URL" --no-progress) ;;
    esac
}

# record_size: put the repository size into the last TSV row
record_size() {
    local b=""
    if [[ -n $SIZE_PATH ]]; then
        [[ -e $SIZE_PATH ]] && b="$(du -sb "$SIZE_PATH" | cut -f1)"
    elif [[ -n $SIZE_OBJ ]]; then
        # shellcheck disable=SC2086
        b="$(object_bytes $SIZE_OBJ 2>/dev/null)"
    fi
    [[ -n $b ]] && set_last 6 "$b"
    return 0
}

# HTTP requests of a step on S3/Swift, from the proxy's access log (the lines appended during
# the step that name the repository's prefix; DELETEs are left out). A diagnostic, not timed.
PROXY_LOG="${LIFEBOAT_REMOTE_DIR:-/tmp/lifeboat-remote}/swift/log/proxy-server.out"
log_mark() { LOG_OFF=""; [[ -n $SIZE_OBJ && -r $PROXY_LOG ]] && LOG_OFF="$(stat -c %s "$PROXY_LOG")"; return 0; }
requests() {
    [[ -n $LOG_OFF ]] || return 0
    sleep 0.5   # the proxy writes its access lines a moment after answering
    local c p
    read -r c p <<< "$SIZE_OBJ"
    tail -c +"$((LOG_OFF + 1))" "$PROXY_LOG" | grep -F -e "/$c/$p/" -e "prefix%3D$p/" -e "prefix%3D$p%2F" \
        | grep -v -c ' DELETE '
}
# add_note TEXT: append to the note column of the last TSV row
add_note() {
    local cur; cur="$(tail -1 "$TSV" | cut -f9)"
    set_last 9 "${cur:+$cur; }$1"
}

# run_tool BACKEND TOOL: init, first backup, restore + verify (+ lifeboat fault run)
run_tool() {
    local be="$1" tool="$2" rc n
    RUSTIC_ENV=()
    repo_location "$be" "$tool" "$tool"
    tool_cmd "$be" "$tool"
    local init_log="$RUN/logs/r$ROUND-$be-$tool-init.log"
    local init_args=(init); [[ $tool == restic ]] && init_args=(init --repository-version 2)
    echo "\$ ${CMD[*]} ${init_args[*]}" > "$init_log"
    "${CMD[@]}" "${init_args[@]}" >> "$init_log" 2>&1
    rc=$?
    if [[ $rc != 0 ]]; then
        local why; why="$(reason "$init_log")"
        anomaly "$be $tool init failed (rc $rc): $why"
        fail_row "$be: backup (first)" "$tool" "$rc" "init failed: $why"
        fail_row "$be: restore" "$tool" "$rc" "not run (init failed)"
        return
    fi
    sync; warm; log_mark
    measure "$be: backup (first)" "$tool" "" "${CMD[@]}" backup "$DATA"
    rc=$?
    record_size
    n="$(requests)"; [[ -n $n ]] && add_note "$n requests"
    if [[ $rc != 0 ]]; then
        add_note "$(reason "$(log_of "$be: backup (first)" "$tool")")"
        anomaly "$be $tool backup failed"
        fail_row "$be: restore" "$tool" "-" "not run (backup failed)"
        return
    fi
    local D="$RESTORE_ROOT/r$ROUND-$be-$tool"
    rm -rf "$D"; mkdir -p "$D"
    local rargs=(restore latest --target "$D")
    [[ $tool == rustic ]] && rargs=(restore latest "$D")
    sync; log_mark
    measure "$be: restore" "$tool" "" "${CMD[@]}" "${rargs[@]}"
    rc=$?
    n="$(requests)"
    if [[ $rc == 0 ]]; then
        add_note "verify: $(verify_tree "$tool" "$be" "$D/${DATA#/}")"
    else
        add_note "$(reason "$(log_of "$be: restore" "$tool")")"
        anomaly "$be $tool restore failed"
    fi
    [[ -n $n ]] && add_note "$n requests"

    if [[ $tool == lifeboat && $FAULT_RUN == 1 ]]; then
        repo_location "$be" "$tool" "$tool-faults"
        tool_cmd "$be" "$tool"
        init_log="$RUN/logs/r$ROUND-$be-$tool-faults-init.log"
        echo "\$ ${CMD[*]} init" > "$init_log"
        if ! "${CMD[@]}" init >> "$init_log" 2>&1; then
            anomaly "$be lifeboat init (fault repo) failed: $(reason "$init_log")"
            return
        fi
        sync; warm; log_mark
        local op="$be: backup (first), faults"
        measure "$op" "$tool" "" env LIFEBOAT_FAULTS="$FAULTS" "${CMD[@]}" backup "$DATA"
        rc=$?
        record_size
        n="$(requests)"
        local flog; flog="$(log_of "$op" "$tool")"
        # every injected error is retried, and each retry prints "...; retrying in X s (attempt N)"
        local retries; retries="$(grep -c 'retrying in' "$flog" 2>/dev/null)"
        add_note "injected failures (retry lines): ${retries:-0}"
        [[ -n $n ]] && add_note "$n requests"
        [[ $rc != 0 ]] && add_note "$(reason "$flog")"
        local chk="$RUN/logs/r$ROUND-$be-$tool-faults-check.log"
        if "${CMD[@]}" check > "$chk" 2>&1; then
            add_note "check ok"
        else
            add_note "check FAILED: $(reason "$chk")"
            anomaly "$be lifeboat check after the fault-injected backup failed: $(reason "$chk")"
        fi
    fi
}

# ---------------------------------------------------------------- the runs
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    ORDER=("${TOOL_LIST[@]:$(( (ROUND - 1) % ${#TOOL_LIST[@]} ))}" "${TOOL_LIST[@]:0:$(( (ROUND - 1) % ${#TOOL_LIST[@]} ))}")
    for be in "${BACKEND_LIST[@]}"; do
        case $be in
            s3) BUCKET="lbbench-s3-$RUNID-r$ROUND"; new_container "$BUCKET" ;;
            swift) CONTAINER="lbbench-swift-$RUNID-r$ROUND"; new_container "$CONTAINER" ;;
            sftp) mkdir -p "$SFTP_BASE"; chown "$LIFEBOAT_SFTP_USER" "$SFTP_BASE" 2>/dev/null ;;
        esac
        for tool in "${ORDER[@]}"; do
            note "round $ROUND/$ROUNDS: $be: $tool"
            run_tool "$be" "$tool"
        done
    done
done

# ---------------------------------------------------------------- report
DATE="$(date -u +%Y-%m-%d)"
MD="$WORK/results-remote-$DATE$( [[ $SET == small ]] && echo -small).md"
python3 "$BENCH/lib/remote_report.py" "$TSV" "$META" "$RUN/anomalies.txt" "$MD"
echo "markdown: $MD" >&2
echo "raw: $TSV, logs: $RUN/logs" >&2
note "deleting the restored trees and (unless --keep) the repositories"
rm -rf "$RESTORE_ROOT"
