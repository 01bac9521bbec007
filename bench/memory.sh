#!/usr/bin/env bash
# Index memory at scale: lifeboat, restic and rustic on a repository of millions of blobs.
#
# usage: bench/memory.sh [--small] [--files N] [--tools lifeboat,restic,rustic] [--no-build]
#                        [--corpus-fs auto|image|dir]
#
#   --small       200,000 files (a quick end-to-end trial) instead of 5,000,000
#   --files N     any other count
#   --tools LIST  comma-separated subset (default: all three)
#   --no-build    do not run `cargo build --release -p lifeboat` first
#   --corpus-fs   where the corpus lives: `image` = a loop-mounted ext4 image with inline_data
#                 (files of < 60 bytes live inside their inode: 5M files take ~1.5 GB instead of
#                 20 GB of 4 KiB blocks, and deleting the corpus is deleting one file; needs root
#                 and loop devices); `dir` = a plain directory under bench/work/corpus (needs
#                 N free inodes and N x 4 KiB of disk); `auto` (default) = image when it can be
#                 mounted, else dir if `df -i` / `df` show room, else fail.
#
# Corpus: N files of 30-40 bytes with distinct content (lib/genblobs.c), 1,000 per directory,
# so every file is exactly one data blob for every tool (restic and rustic never split a file
# below 512 KiB, lifeboat never below its 256 KiB minimum chunk) and the repository holds
# N data blobs + N/1000 + a few tree blobs. Built once and cached
# (bench/work/corpus/blobs-N.img or bench/work/corpus/blobs-N/).
#
# Per tool, in one run on the same corpus, each step under `/usr/bin/time` (wall, CPU, peak RSS):
#   backup 1 (first)            every blob is new
#   backup 2 (1 file changed)   the parent snapshot is used; the index of N blobs is loaded
#   check                       structure only, no data read
#   prune (nothing to do)       lifeboat: prune --keep-delete 0 --max-unused 5%
#   forget first snapshot       forget --keep-last 1
#   prune after forget          same prune options; lifeboat's prune is two-phase (the first
#                               run marks, the second deletes), both runs are reported
#                               (rustic's too, with --keep-delete 0s: marked packs go at the
#                               next prune; its default grace is 23h)
# restic: repository v2 (compression auto), `prune --max-unused 5%`; rustic: its defaults and
# `prune --max-unused 5% --keep-delete 0s`.
# Passwords come from environment variables, caches live under the run directory.
#
# Output: a table on stdout, bench/work/memory-<date>[-small].md and bench/work/mem-<set>/
# (results.tsv, meta.txt, every command's log). When the other set's results.tsv exists, the
# report adds the marginal bytes per blob between the two sizes (peak RSS difference / blob
# difference), which leaves out fixed costs (KDF, thread stacks, buffers).
set -uo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
WORK="${BENCH_WORK:-$BENCH/work}"

N=5000000
SET=full
TOOLS="lifeboat,restic,rustic"
BUILD=1
CORPUS_FS=auto
PER_DIR=1000
while (($#)); do
    case "$1" in
        --small) N=200000; SET=small ;;
        --files) N="$2"; SET="n$2"; shift ;;
        --tools) TOOLS="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --corpus-fs) CORPUS_FS="$2"; shift ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
IFS=, read -r -a TOOL_LIST <<< "$TOOLS"

LIFEBOAT="${LIFEBOAT_BIN:-$ROOT/target/release/lifeboat}"
RUSTIC="${RUSTIC_BIN:-$WORK/tools/bin/rustic}"
TIME=/usr/bin/time
PASSWORD="lifeboat-bench-password"
GEN="$WORK/tools/bin/genblobs"

die() { echo "memory.sh: $*" >&2; exit 1; }
note() { echo "== $*" >&2; }
# shellcheck source=lib/measure.sh
source "$BENCH/lib/measure.sh"

# ---------------------------------------------------------------- preparation
[[ -x $TIME ]] || die "GNU time missing: run bench/install.sh"
for t in "${TOOL_LIST[@]}"; do
    case $t in
        lifeboat) ;;
        restic) command -v restic >/dev/null || die "restic missing: run bench/install.sh" ;;
        rustic) [[ -x $RUSTIC ]] || die "rustic missing at $RUSTIC: run bench/install.sh" ;;
        *) die "unknown tool $t (memory.sh knows lifeboat, restic, rustic)" ;;
    esac
done
mkdir -p "$WORK/tools/bin" "$WORK/corpus"
if [[ ! -x $GEN || $BENCH/lib/genblobs.c -nt $GEN ]]; then
    gcc -O2 -o "$GEN" "$BENCH/lib/genblobs.c" || die "cannot compile lib/genblobs.c (gcc)"
fi
USE_LIFEBOAT=0
[[ ,$TOOLS, == *,lifeboat,* ]] && USE_LIFEBOAT=1
if [[ $USE_LIFEBOAT == 1 && $BUILD == 1 && -z ${LIFEBOAT_BIN:-} ]]; then
    build_lifeboat "$ROOT" "$WORK" || die "lifeboat build failed"
fi
[[ $USE_LIFEBOAT == 0 || -x $LIFEBOAT ]] || die "no lifeboat binary at $LIFEBOAT"

# ---------------------------------------------------------------- corpus
IMG="$WORK/corpus/blobs-$N.img"
MNT="$WORK/corpus/blobs-$N.mnt"
DIRC="$WORK/corpus/blobs-$N"
NDIRS=$(( (N + PER_DIR - 1) / PER_DIR ))
need_inodes=$(( N + NDIRS + 1000 ))
need_bytes=$(( N * 4096 + NDIRS * 65536 ))
free_inodes="$(df -Pi "$WORK" | awk 'NR==2 {print $4}')"
free_bytes="$(( $(df -Pk "$WORK" | awk 'NR==2 {print $4}') * 1024 ))"
DF_NOTE="bench/work: $free_inodes free inodes, $((free_bytes >> 30)) GiB free; a plain-directory corpus of $N files needs $need_inodes inodes and ~$((need_bytes >> 30)) GiB"
note "$DF_NOTE"
MOUNTED=0
cleanup() {
    if [[ $MOUNTED == 1 ]]; then
        cd / && sync && umount "$MNT" 2>/dev/null && echo "== unmounted $MNT" >&2
    fi
}
trap cleanup EXIT

mount_image() {
    # ~300 B of inode table per file + directories + journal; sparse
    if [[ ! -f $IMG.done ]]; then
        rm -f "$IMG" "$IMG.done"
        local inodes=$(( N + N / 20 + NDIRS + 10000 ))
        local size=$(( inodes * 300 + NDIRS * 65536 + 256 * 1048576 ))
        note "creating $IMG: ext4, inline_data, $inodes inodes, $((size >> 20)) MiB (sparse)"
        truncate -s "$size" "$IMG" || return 1
        mkfs.ext4 -q -F -O inline_data,^has_journal -N "$inodes" -I 256 -m 0 -b 4096 \
            -E lazy_itable_init=0,nodiscard -L lbblobs "$IMG" || { rm -f "$IMG"; return 1; }
    fi
    mkdir -p "$MNT"
    if ! mountpoint -q "$MNT"; then
        mount -o loop,noatime "$IMG" "$MNT" 2>/dev/null || return 1
    fi
    MOUNTED=1
    chmod 755 "$MNT"
    return 0
}

CORPUS_WHERE=""
case $CORPUS_FS in
    image|auto)
        if mount_image; then
            TREE="$MNT/tree"; CORPUS_WHERE="loop-mounted ext4 image $IMG (inline_data, noatime)"
        elif [[ $CORPUS_FS == image ]]; then
            die "cannot create or mount $IMG (root and loop devices needed); try --corpus-fs dir"
        fi ;;
    dir) ;;
    *) die "--corpus-fs must be auto, image or dir" ;;
esac
if [[ -z $CORPUS_WHERE ]]; then
    if [[ ! -f $DIRC/MANIFEST ]]; then
        (( free_inodes >= need_inodes )) || die "inodes short: $DF_NOTE; use --corpus-fs image (as root)"
        (( free_bytes >= need_bytes + (8 << 30) )) || die "disk short: $DF_NOTE; use --corpus-fs image"
    fi
    mkdir -p "$DIRC"
    TREE="$DIRC/tree"; CORPUS_WHERE="plain directory $DIRC"
fi
CMANIFEST="$(dirname "$TREE")/MANIFEST"
if [[ ! -f $CMANIFEST ]]; then
    rm -rf "$TREE"
    note "generating $N files in $NDIRS directories under $TREE"
    start=$(date +%s)
    "$GEN" "$TREE" "$N" "$PER_DIR" 2>&1 | awk 'NR % 10 == 0' >&2 || die "genblobs failed"
    sync
    {
        echo "files: $N"
        echo "directories: $NDIRS (+ the root)"
        echo "bytes: $(( $(find "$TREE" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}') ))"
        echo "generated in: $(( $(date +%s) - start )) s"
    } > "$CMANIFEST"
fi
cat "$CMANIFEST" | sed 's/^/   corpus /' >&2
# The file changed before the second backup (a different variant per tool, so each tool sees a
# new blob), and put back before each tool's first backup.
CHANGE_IDX=$(( N / 2 + 7 ))

# ---------------------------------------------------------------- run directory
RUN="$WORK/mem-$SET"
rm -rf "$RUN"
mkdir -p "$RUN/logs" "$RUN/repos" "$RUN/cache" "$RUN/config"
TSV="$RUN/results.tsv"
META="$RUN/meta.txt"
: > "$TSV"
ROUND=1
export LIFEBOAT_PASSWORD="$PASSWORD" RESTIC_PASSWORD="$PASSWORD" RUSTIC_PASSWORD="$PASSWORD"
export LIFEBOAT_CACHE_DIR="$RUN/cache/lifeboat"
export XDG_CONFIG_HOME="$RUN/config"
unset RESTIC_REPOSITORY RUSTIC_REPOSITORY LIFEBOAT_REPOSITORY

# Blobs in each repository after backup 1: the data blobs, one tree per corpus directory, the
# corpus root, and one tree per component of the backed-up absolute path (restic and rustic
# store those; lifeboat too). Exact for data blobs, +-10 for trees.
DEPTH="$(echo "$TREE" | tr -cd '/' | wc -c)"
BLOBS=$(( N + NDIRS + 1 + DEPTH ))

{
    echo "set: $SET ($N files, $PER_DIR per directory)"
    host_meta
    echo "corpus: $CORPUS_WHERE"
    echo "disk: $DF_NOTE"
    echo "blobs: $BLOBS (N data blobs + $NDIRS directory trees + root + $DEPTH path trees; trees +-10)"
    echo "page cache: warm (a full read walk of the corpus precedes each tool)"
} > "$META"
cat "$META" >&2

warm() { tar -cf - -C "$TREE" . 2>/dev/null | cat > /dev/null; }

# ---------------------------------------------------------------- per-tool commands
# Each: init REPO; run OP REPO ARGS... (measured)
lifeboat_init() { "$LIFEBOAT" -r "$1" --no-progress init; }
lifeboat_run() { local op="$1" r="$2"; shift 2; measure "$op" lifeboat "$r" "$LIFEBOAT" -r "$r" --no-progress "$@"; }
restic_init() { XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$1" init --repository-version 2; }
restic_run() { local op="$1" r="$2"; shift 2; measure "$op" restic "$r" env XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$r" "$@"; }
rustic_init() { XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$1" --no-progress init; }
rustic_run() { local op="$1" r="$2"; shift 2; measure "$op" rustic "$r" env XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$r" --no-progress "$@"; }

prune_args() {
    case $1 in
        lifeboat) echo "prune --keep-delete 0 --max-unused 5%" ;;
        restic) echo "prune --max-unused 5%" ;;
        rustic) echo "prune --max-unused 5% --keep-delete 0s" ;;
    esac
}

anomaly() { echo "$*" >> "$RUN/anomalies.txt"; echo "   !! ANOMALY: $*" >&2; }

# ---------------------------------------------------------------- the runs
variant=0
for tool in "${TOOL_LIST[@]}"; do
    variant=$((variant + 1))
    note "$tool"
    R="$RUN/repos/$tool"
    "$GEN" "$TREE" "$N" "$PER_DIR" --one "$CHANGE_IDX" 0 || die "cannot reset the changed file"
    if ! ${tool}_init "$R" > "$RUN/logs/$tool-init.log" 2>&1; then
        anomaly "$tool init failed: $(tail -3 "$RUN/logs/$tool-init.log")"; continue
    fi
    sync
    warm
    MEASURE_NOTE="load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    ${tool}_run "backup 1 (first)" "$R" backup "$TREE" || { anomaly "$tool first backup failed"; continue; }
    "$GEN" "$TREE" "$N" "$PER_DIR" --one "$CHANGE_IDX" "$variant"
    ${tool}_run "backup 2 (1 file changed)" "$R" backup "$TREE" || anomaly "$tool second backup failed"
    ${tool}_run "check (no data read)" "$R" check || anomaly "$tool check failed"
    read -r -a pa <<< "$(prune_args "$tool")"
    ${tool}_run "prune (nothing to do)" "$R" "${pa[@]}" || anomaly "$tool prune (nothing to do) failed"
    ${tool}_run "forget first snapshot" "$R" forget --keep-last 1 || anomaly "$tool forget failed"
    ${tool}_run "prune after forget" "$R" "${pa[@]}" || anomaly "$tool prune after forget failed"
    if [[ $tool == lifeboat || $tool == rustic ]]; then
        ${tool}_run "prune after forget, run 2" "$R" "${pa[@]}" || anomaly "$tool second prune after forget failed"
    fi
    ${tool}_run "check after prune" "$R" check || anomaly "$tool check after prune failed"
done
"$GEN" "$TREE" "$N" "$PER_DIR" --one "$CHANGE_IDX" 0

# ---------------------------------------------------------------- report
DATE="$(date -u +%Y-%m-%d)"
MD="$WORK/memory-$DATE$( [[ $SET != full ]] && echo "-$SET").md"
OTHER=""
for s in full small; do
    [[ $s != "$SET" && -f $WORK/mem-$s/results.tsv ]] && OTHER="$WORK/mem-$s"
done
python3 "$BENCH/lib/memory_report.py" "$RUN" "$MD" ${OTHER:+"$OTHER"}
echo "markdown: $MD" >&2
echo "raw: $TSV, logs: $RUN/logs" >&2
