#!/usr/bin/env bash
# Compares lifeboat with restic, borg and rustic on the same corpora in the same run.
#
# usage: bench/run.sh [--small] [--tools lifeboat,restic,borg,rustic] [--repeat N] [--no-build]
#
#   --small      use the ~100 MiB corpus set (quick trial) instead of the >= 1 GiB one
#   --tools LIST comma-separated subset of tools (default: all four)
#   --repeat N   run everything N times (fresh repositories each round, tools in rotated
#                order) and report the median of each number; min-max of wall is shown.
#                Wall times on a shared 2-core machine swing by +-50% between single runs.
#   --no-build   do not run `cargo build --release -p lifeboat` first
#
# Environment: LIFEBOAT_BIN (default <workspace>/target/release/lifeboat),
#              RUSTIC_BIN (default bench/work/tools/bin/rustic), BENCH_WORK (default bench/work),
#              BENCH_RESTORE_DIR (where restores go; default bench/work/run-<set>/restore).
#
# Restored trees are kept until the end of the run and only then deleted: on ext4, creating
# files right after deleting ~100k others is several times slower (the inode allocator skips
# recently deleted inodes), which would penalise whichever tool restores after a deletion.
#
# Every tool runs with encryption on and its default compression (lifeboat zstd-3,
# restic repo v2 `auto`, borg lz4, rustic zstd default). Each measured command runs under
# `/usr/bin/time -f '%e %U %S %M'`: wall s, user+sys CPU s, peak RSS. Page cache is not
# dropped; a full read walk of the corpus runs before each tool so every tool starts warm.
# Output: the table on stdout, bench/work/results-<date>[-small].md (markdown) and
# bench/work/run-<set>/ (results.tsv, every command's log, the repositories).
set -uo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
WORK="${BENCH_WORK:-$BENCH/work}"
export BENCH_WORK="$WORK"

SMALL=""
TOOLS="lifeboat,restic,borg,rustic"
BUILD=1
ROUNDS=1
while (($#)); do
    case "$1" in
        --small) SMALL=--small ;;
        --tools) TOOLS="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --repeat) ROUNDS="$2"; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
SET=full; [[ -n $SMALL ]] && SET=small
IFS=, read -r -a TOOL_LIST <<< "$TOOLS"

LIFEBOAT="${LIFEBOAT_BIN:-$ROOT/target/release/lifeboat}"
RUSTIC="${RUSTIC_BIN:-$WORK/tools/bin/rustic}"
TIME=/usr/bin/time
PASSWORD="lifeboat-bench-password"

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "== $*" >&2; }

# ---------------------------------------------------------------- preparation
[[ -x $TIME ]] || die "GNU time missing: run bench/install.sh"
for t in "${TOOL_LIST[@]}"; do
    case $t in
        lifeboat) ;;
        restic) command -v restic >/dev/null || die "restic missing: run bench/install.sh" ;;
        borg) command -v borg >/dev/null || die "borg missing: run bench/install.sh" ;;
        rustic) [[ -x $RUSTIC ]] || die "rustic missing at $RUSTIC: run bench/install.sh" ;;
        *) die "unknown tool $t" ;;
    esac
done
command -v zstd >/dev/null || die "zstd missing: run bench/install.sh"

if [[ $BUILD == 1 && -z ${LIFEBOAT_BIN:-} ]]; then
    for attempt in 1 2 3 4 5; do
        if (cd "$ROOT" && nice -n 10 cargo build --release -p lifeboat >"$WORK/lifeboat-build.log" 2>&1); then
            break
        fi
        [[ $attempt == 5 ]] && die "cargo build failed 5 times, see $WORK/lifeboat-build.log"
        note "lifeboat build failed (someone mid-edit?); retrying in 60 s"
        sleep 60
    done
fi
[[ -x $LIFEBOAT ]] || die "no lifeboat binary at $LIFEBOAT"

"$BENCH/corpus.sh" $SMALL build 2>&1 | sed 's/^/   /' >&2
CORPUS="$("$BENCH/corpus.sh" $SMALL path)"
TREE="$CORPUS/tree"
SQL="$CORPUS/dump.sql"
IMG="$CORPUS/disk.img"
"$BENCH/corpus.sh" $SMALL reset >/dev/null   # a previous run may have been interrupted mid-change

RUN="$WORK/run-$SET"
if [[ -e $RUN ]]; then
    rm -rf "$RUN"
    # let ext4 forget the deleted inodes (see above) before anything is measured
    sync; sleep 65
fi
RESTORE_ROOT="${BENCH_RESTORE_DIR:-$RUN/restore}"
rm -rf "$RESTORE_ROOT"
mkdir -p "$RUN/logs" "$RUN/repos" "$RUN/cache" "$RESTORE_ROOT" "$RUN/config"
TSV="$RUN/results.tsv"
META="$RUN/meta.txt"
: > "$TSV"

# Tool environments: own password, caches and config under the run directory.
export LIFEBOAT_PASSWORD="$PASSWORD" RESTIC_PASSWORD="$PASSWORD" BORG_PASSPHRASE="$PASSWORD" \
    RUSTIC_PASSWORD="$PASSWORD"
export LIFEBOAT_CACHE_DIR="$RUN/cache/lifeboat"
export BORG_BASE_DIR="$RUN/cache/borg"
export XDG_CONFIG_HOME="$RUN/config"
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
unset RESTIC_REPOSITORY RUSTIC_REPOSITORY LIFEBOAT_REPOSITORY BORG_REPO

# borg's encryption mode: repokey (HMAC-SHA256) is the fast one with SHA extensions,
# repokey-blake2 without them (borg's own advice).
if grep -qw sha_ni /proc/cpuinfo; then BORG_ENC=repokey; else BORG_ENC=repokey-blake2; fi

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    echo "set: $SET"
    echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "kernel: $(uname -r); fs of run dir: $(df -T "$RUN" | awk 'NR==2 {print $2}')"
    echo "lifeboat: $("$LIFEBOAT" --version 2>&1 | head -1) (git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty'))"
    command -v restic >/dev/null && echo "restic: $(restic version 2>&1 | head -1)"
    command -v borg >/dev/null && echo "borg: $(borg --version 2>&1 | head -1) (encryption $BORG_ENC)"
    [[ -x $RUSTIC ]] && echo "rustic: $("$RUSTIC" --version 2>&1 | head -1)"
    echo "zstd: $(zstd --version 2>&1 | head -1)"
    sed 's/^/corpus /' "$CORPUS/MANIFEST"
    echo "cache: not dropped; each tool is preceded by a full read walk of the corpus (warm page cache)"
    echo "rounds: $ROUNDS (median of each number; tools in rotated order per round)"
    echo "restores: into $RESTORE_ROOT ($(df -T "$RESTORE_ROOT" | awk 'NR==2 {print $2}')), fresh directory per tool, kept until the end of the run"
    echo "note: other processes on the machine (load average in the TSV) can skew wall times"
} > "$META"
cat "$META" >&2

# ---------------------------------------------------------------- measuring
# measure OP TOOL REPO_DIR CMD... : runs CMD under GNU time, appends one TSV row:
# op tool wall cpu rss_kib repo_bytes rc load1 note
MEASURE_NOTE=""
measure() {
    local op="$1" tool="$2" repo="$3"; shift 3
    local slug; slug="$(echo "r$ROUND-$tool-$op" | tr -c 'A-Za-z0-9_.-' '_')"
    local log="$RUN/logs/$slug.log" tf="$RUN/logs/$slug.time"
    local load; load="$(cut -d' ' -f1 /proc/loadavg)"
    echo "\$ $*" > "$log"
    $TIME -f '%e %U %S %M' -o "$tf" "$@" >> "$log" 2>&1
    local rc=$?
    local wall user sys rss
    read -r wall user sys rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$tf" | tail -1)
    local cpu; cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')"
    local rb=""
    [[ -n $repo && -e $repo ]] && rb="$(du -sb "$repo" | cut -f1)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$tool" "$wall" "$cpu" "$rss" "$rb" "$rc" "$load" "$MEASURE_NOTE" "$ROUND" >> "$TSV"
    printf '   %-34s %-9s wall %7ss cpu %7ss rss %6s MiB repo %8s MiB rc %s\n' "$op" "$tool" "$wall" "$cpu" \
        "$((rss / 1024))" "$( [[ -n $rb ]] && echo $((rb / 1048576)) || echo -)" "$rc" >&2
    if [[ $rc != 0 ]]; then
        echo "   !! $tool $op exited $rc; last lines of $log:" >&2
        tail -5 "$log" | sed 's/^/      /' >&2
    fi
    MEASURE_NOTE=""
    return $rc
}

anomaly() { echo "round $ROUND: $*" >> "$RUN/anomalies.txt"; echo "   !! ANOMALY: $*" >&2; }

warm() { tar -cf - -C "$TREE" . 2>/dev/null | cat > /dev/null; find "$TREE" -printf '%s %T@\n' > /dev/null; }

# listing DIR: one line per entry: path, type, size (files), mode, link target, mtime (files, s)
listing() {
    (cd "$1" && find . -mindepth 1 \( -type f -printf '%P\tf\t%s\t%m\t\t%TY-%Tm-%Td %TH:%TM:%.2TS\n' \) -o \
        \( -type l -printf '%P\tl\t\t\t%l\n' \) -o \( -type d -printf '%P\td\t\t%m\n' \) -o -printf '%P\t%y\n') \
        | LC_ALL=C sort
}
contents() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha1sum); }

# verify_tree TOOL DIR: compare a restored tree with $TREE (listing + content digests)
verify_tree() {
    local tool="$1" dir="$2" ok=1
    [[ -d $dir ]] || { anomaly "$tool restore: $dir does not exist"; return 1; }
    local out="$RUN/logs/r$ROUND-$tool-restore"
    listing "$dir" > "$out.listing"
    contents "$dir" > "$out.sha1"
    if ! cmp -s "$out.listing" "$RUN/src.listing"; then
        ok=0
        anomaly "$tool restore: tree listing differs from the source ($(diff "$RUN/src.listing" "$out.listing" | grep -c '^[<>]') lines); first differences:"
        diff "$RUN/src.listing" "$out.listing" | grep '^[<>]' | head -8 | sed 's/^/      /' | tee -a "$RUN/anomalies.txt" >&2
    fi
    if ! cmp -s "$out.sha1" "$RUN/src.sha1"; then
        ok=0
        anomaly "$tool restore: file contents differ from the source; first differences:"
        diff "$RUN/src.sha1" "$out.sha1" | grep '^[<>]' | head -8 | sed 's/^/      /' | tee -a "$RUN/anomalies.txt" >&2
    fi
    [[ $ok == 1 ]] && echo "   restore of $tool verified: listing and contents match" >&2
    echo "round $ROUND $tool $ok" >> "$RUN/verified.txt"
}

# verify_file TOOL WHAT RESTORED ORIGINAL
verify_file() {
    local tool="$1" what="$2" got="$3" want="$4"
    if [[ ! -f $got ]]; then anomaly "$tool $what: restored file $got missing"; return 1; fi
    if cmp -s "$got" "$want"; then
        echo "   $tool $what verified ($(( $(stat -c %b "$got") * 512 / 1048576 )) MiB allocated)" >&2
    else
        anomaly "$tool $what: restored content differs from the original ($(cmp "$got" "$want" 2>&1 | head -1))"
    fi
}

# ---------------------------------------------------------------- per-tool commands
# Each tool implements: init REPO, backup REPO PATH NAME, backup_stdin REPO NAME (stdin),
# restore REPO DIR (restored copy of an absolute PATH ends up at DIR/PATH), check REPO.
lifeboat_init() { "$LIFEBOAT" -r "$1" --no-progress init; }
lifeboat_backup() { measure "$3" lifeboat "$1" "$LIFEBOAT" -r "$1" --no-progress backup "$2"; }
lifeboat_backup_stdin() { measure "$2" lifeboat "$1" "$LIFEBOAT" -r "$1" --no-progress backup --stdin-filename dump.sql -; }
lifeboat_restore() { measure "$3" lifeboat "" "$LIFEBOAT" -r "$1" --no-progress restore latest --target "$2" $4; }
lifeboat_check() { measure "check --read-data" lifeboat "$1" "$LIFEBOAT" -r "$1" --no-progress check --read-data; }
lifeboat_sparse_flag="--sparse"

restic_init() { XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$1" init --repository-version 2; }
restic_run() { XDG_CACHE_HOME="$RUN/cache/restic" restic "$@"; }
restic_backup() { measure "$3" restic "$1" env XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$1" backup "$2"; }
restic_backup_stdin() { measure "$2" restic "$1" env XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$1" backup --stdin --stdin-filename dump.sql; }
restic_restore() { measure "$3" restic "" env XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$1" restore latest --target "$2" $4; }
restic_check() { measure "check --read-data" restic "$1" env XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$1" check --read-data; }
restic_sparse_flag=""
restic restore --help 2>/dev/null | grep -q -- '--sparse' && restic_sparse_flag="--sparse"

BORG_N=0
borg_init() { borg init -e "$BORG_ENC" "$1"; }
borg_backup() { BORG_N=$((BORG_N + 1)); measure "$3" borg "$1" borg create "$1::a$BORG_N" "$2"; }
borg_backup_stdin() { BORG_N=$((BORG_N + 1)); measure "$2" borg "$1" borg create --stdin-name dump.sql "$1::a$BORG_N" -; }
borg_restore() {
    local name; name="$(borg list --short --last 1 "$1")"
    mkdir -p "$2"
    # borg extracts into the current directory, paths without their leading '/'
    measure "$3" borg "" bash -c 'cd "$1" && shift && exec "$@"' _ "$2" borg extract $4 "$1::$name"
}
borg_check() { measure "check --read-data" borg "$1" borg check --verify-data "$1"; }
borg_sparse_flag="--sparse"

rustic_init() { XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$1" --no-progress init; }
rustic_backup() { measure "$3" rustic "$1" env XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$1" --no-progress backup "$2"; }
rustic_backup_stdin() { measure "$2" rustic "$1" env XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$1" --no-progress backup --stdin-filename dump.sql -; }
rustic_restore() { measure "$3" rustic "" env XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$1" --no-progress restore $4 latest "$2"; }
rustic_check() { measure "check --read-data" rustic "$1" env XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$1" --no-progress check --read-data; }
rustic_sparse_flag="--sparse by-content"

# where a restored absolute path P ends up under DIR (borg drops the leading '/')
restored_path() { echo "$2/${3#/}"; }

ROUND=0
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
RR="$RESTORE_ROOT/r$ROUND"
mkdir -p "$RR" "$RUN/repos/r$ROUND"
# tools in rotated order, so no tool always runs right after the same one
ORDER=("${TOOL_LIST[@]:$(( (ROUND - 1) % ${#TOOL_LIST[@]} ))}" "${TOOL_LIST[@]:0:$(( (ROUND - 1) % ${#TOOL_LIST[@]} ))}")
# ---------------------------------------------------------------- physical limits
note "round $ROUND/$ROUNDS: physical limits on the same data"
warm
measure "limit: stat walk (find -printf)" "-" "" find "$TREE" -printf '%s %T@\n' > /dev/null
measure "limit: read walk (tar | cat)" "-" "" bash -c 'tar -cf - -C "$1" . | cat > /dev/null' _ "$TREE"
MEASURE_NOTE="out $(tar -cf - -C "$TREE" . 2>/dev/null | zstd -3 -T2 | wc -c) B"
measure "limit: tar | zstd -3 -T2" "-" "" bash -c 'tar -cf - -C "$1" . | zstd -q -3 -T2 > /dev/null' _ "$TREE"
MEASURE_NOTE="out $(zstd -3 -T2 -c "$SQL" | wc -c) B"
measure "limit: sql: zstd -3 -T2" "-" "" bash -c 'zstd -q -3 -T2 < "$1" > /dev/null' _ "$SQL"
measure "limit: cp -a tree (write)" "-" "" cp -a "$TREE" "$RR/cp-limit"

# ---------------------------------------------------------------- the runs
for tool in "${ORDER[@]}"; do
    note "round $ROUND/$ROUNDS: $tool"
    R="$RUN/repos/r$ROUND/$tool"
    D="$RR/$tool"
    sparse_var="${tool}_sparse_flag"
    "$BENCH/corpus.sh" $SMALL reset >/dev/null
    warm
    echo "   warm-up read walk of the corpus done (warm page cache)" >&2

    # -- source tree
    if ! ${tool}_init "$R-tree" > "$RUN/logs/r$ROUND-$tool-init-tree.log" 2>&1; then
        anomaly "$tool init failed: $(tail -3 "$RUN/logs/r$ROUND-$tool-init-tree.log")"; continue
    fi
    ${tool}_backup "$R-tree" "$TREE" "backup tree: first" || anomaly "$tool first backup failed"
    ${tool}_backup "$R-tree" "$TREE" "backup tree: unchanged" || anomaly "$tool unchanged backup failed"
    "$BENCH/corpus.sh" $SMALL change > "$RUN/logs/r$ROUND-change.log"
    ${tool}_backup "$R-tree" "$TREE" "backup tree: 1% changed" || anomaly "$tool backup after change failed"
    if [[ ! -f $RUN/src.listing ]]; then
        listing "$TREE" > "$RUN/src.listing"
        contents "$TREE" > "$RUN/src.sha1"
    fi
    rm -rf "$D"; mkdir -p "$D"
    if ${tool}_restore "$R-tree" "$D" "restore tree (latest)" ""; then
        verify_tree "$tool" "$(restored_path "$tool" "$D" "$TREE")"
    else
        anomaly "$tool restore failed"
    fi
    "$BENCH/corpus.sh" $SMALL reset >/dev/null
    ${tool}_check "$R-tree" || anomaly "$tool check --read-data failed"

    # -- SQL dump stream through stdin
    if ${tool}_init "$R-sql" > "$RUN/logs/r$ROUND-$tool-init-sql.log" 2>&1; then
        ${tool}_backup_stdin "$R-sql" "backup sql stream (stdin)" < <(cat "$SQL") || anomaly "$tool stdin backup failed"
        if [[ $tool == lifeboat ]]; then
            # untimed correctness check of the stored stream
            if "$LIFEBOAT" -r "$R-sql" --no-progress dump latest dump.sql 2>"$RUN/logs/r$ROUND-lifeboat-dump.log" | cmp -s - "$SQL"; then
                echo "   lifeboat sql stream verified (dump | cmp)" >&2
            else
                anomaly "lifeboat sql stream: dump differs from the input ($(tail -2 "$RUN/logs/r$ROUND-lifeboat-dump.log"))"
            fi
        fi
    else
        anomaly "$tool init (sql) failed"
    fi

    # -- sparse disk image
    if ${tool}_init "$R-img" > "$RUN/logs/r$ROUND-$tool-init-img.log" 2>&1; then
        ${tool}_backup "$R-img" "$IMG" "backup sparse image" || anomaly "$tool image backup failed"
        D="$RR/$tool-img"
        rm -rf "$D"; mkdir -p "$D"
        MEASURE_NOTE="flags: ${!sparse_var:-none}"
        if ${tool}_restore "$R-img" "$D" "restore sparse image" "${!sparse_var}"; then
            got="$(restored_path "$tool" "$D" "$IMG")"
            verify_file "$tool" "image restore" "$got" "$IMG"
            if [[ -f $got ]]; then
                # add the restored file's allocation to the note column of the last row
                awk -F'\t' -v OFS='\t' -v n="$(wc -l < "$TSV")" \
                    -v a="; restored allocation $(( $(stat -c %b "$got") * 512 / 1048576 )) MiB" \
                    'NR == n {$9 = $9 a} {print}' "$TSV" > "$TSV.tmp" && mv "$TSV.tmp" "$TSV"
            fi
        else
            anomaly "$tool image restore failed"
        fi
        rm -rf "$D"
    else
        anomaly "$tool init (img) failed"
    fi
done  # tools
"$BENCH/corpus.sh" $SMALL reset >/dev/null
if ((ROUND < ROUNDS)); then
    # free the disk between rounds, then let ext4 forget the deleted inodes
    note "round $ROUND done; deleting its restores"
    rm -rf "$RR" "$RUN/repos/r$ROUND"
    sync; sleep 65
fi
done  # rounds

# ---------------------------------------------------------------- report
DATE="$(date -u +%Y-%m-%d)"
MD="$WORK/results-$DATE$( [[ $SET == small ]] && echo -small).md"
python3 "$BENCH/lib/report.py" "$TSV" "$META" "$RUN/anomalies.txt" "$MD"
echo "markdown: $MD" >&2
echo "raw: $TSV, logs: $RUN/logs" >&2
note "deleting the restored trees ($RESTORE_ROOT)"
rm -rf "$RESTORE_ROOT"
