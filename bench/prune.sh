#!/usr/bin/env bash
# Prune after many forget-prune generations: lifeboat, restic and rustic on the same changing
# corpus, in the same run.
#
# usage: bench/prune.sh [--small] [--gens N] [--size BYTES] [--tools lifeboat,restic,rustic]
#                       [--no-build]
#
#   --small       ~48 MiB corpus and 8 generations (a quick end-to-end trial) instead of
#                 ~400 MiB and 30
#   --gens N      number of generations (backups per tool)
#   --size BYTES  size of generation 1
#   --tools LIST  comma-separated subset (default: all three)
#   --no-build    do not run `cargo build --release -p lifeboat` first
#
# Corpus (lib/gen_churn.py, deterministic): generation 1 is a tree of mixed files (80% small,
# 17% medium, 3% large by count; half text-like, half incompressible). Each later generation
# rewrites 5% of the files (half entirely, half a few 4 KiB regions in place), deletes 1% and
# adds slightly more than it deleted.
#
# Every generation, each tool (in rotated order) backs the tree up, then applies
# `--keep-last 5` and prunes with `--max-unused 5%`:
#   lifeboat: forget --keep-last 5; prune --keep-delete 0 --max-unused 5%   (two commands;
#             prune is two-phase: packs marked by one prune are deleted by the next)
#   restic:   forget --keep-last 5 --prune --max-unused 5%
#   rustic:   forget --keep-last 5 --prune --max-unused 5% --keep-delete 0s  (rustic's prune is
#             two-phase too: its marked packs wait --keep-delete, default 23h; 0s = deleted by
#             the next prune, like lifeboat's --keep-delete 0)
# After the last generation: one more prune per tool (lifeboat and rustic delete what the last
# one marked), `check` and `check --read-data`, and the repository sizes.
# Each command runs under `/usr/bin/time` (wall, CPU, peak RSS); passwords come from environment
# variables; caches live under the run directory and persist across generations.
#
# Output: a table on stdout, bench/work/prune-<date>[-small].md and bench/work/prune-<set>/
# (results.tsv with one row per command and generation, meta.txt, logs/ of the last 3
# generations and the final steps, the repositories).
set -uo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
WORK="${BENCH_WORK:-$BENCH/work}"

SET=full
GENS=30
SIZE=$((400 * 1024 * 1024))
TOOLS="lifeboat,restic,rustic"
BUILD=1
while (($#)); do
    case "$1" in
        --small) SET=small; GENS=8; SIZE=$((48 * 1024 * 1024)) ;;
        --gens) GENS="$2"; shift ;;
        --size) SIZE="$2"; shift ;;
        --tools) TOOLS="$2"; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
IFS=, read -r -a TOOL_LIST <<< "$TOOLS"

LIFEBOAT="${LIFEBOAT_BIN:-$ROOT/target/release/lifeboat}"
RUSTIC="${RUSTIC_BIN:-$WORK/tools/bin/rustic}"
TIME=/usr/bin/time
PASSWORD="lifeboat-bench-password"
MAX_UNUSED="5%"
KEEP_LAST=5

die() { echo "prune.sh: $*" >&2; exit 1; }
note() { echo "== $*" >&2; }
# shellcheck source=lib/measure.sh
source "$BENCH/lib/measure.sh"

[[ -x $TIME ]] || die "GNU time missing: run bench/install.sh"
for t in "${TOOL_LIST[@]}"; do
    case $t in
        lifeboat) ;;
        restic) command -v restic >/dev/null || die "restic missing: run bench/install.sh" ;;
        rustic) [[ -x $RUSTIC ]] || die "rustic missing at $RUSTIC: run bench/install.sh" ;;
        *) die "unknown tool $t (prune.sh knows lifeboat, restic, rustic)" ;;
    esac
done
USE_LIFEBOAT=0
[[ ,$TOOLS, == *,lifeboat,* ]] && USE_LIFEBOAT=1
if [[ $USE_LIFEBOAT == 1 && $BUILD == 1 && -z ${LIFEBOAT_BIN:-} ]]; then
    mkdir -p "$WORK"
    build_lifeboat "$ROOT" "$WORK" || die "lifeboat build failed"
fi
[[ $USE_LIFEBOAT == 0 || -x $LIFEBOAT ]] || die "no lifeboat binary at $LIFEBOAT"

RUN="$WORK/prune-$SET"
rm -rf "$RUN"
mkdir -p "$RUN/logs" "$RUN/repos" "$RUN/cache" "$RUN/config"
TREE="$RUN/tree"
TSV="$RUN/results.tsv"
META="$RUN/meta.txt"
: > "$TSV"
export LIFEBOAT_PASSWORD="$PASSWORD" RESTIC_PASSWORD="$PASSWORD" RUSTIC_PASSWORD="$PASSWORD"
export LIFEBOAT_CACHE_DIR="$RUN/cache/lifeboat"
export XDG_CONFIG_HOME="$RUN/config"
unset RESTIC_REPOSITORY RUSTIC_REPOSITORY LIFEBOAT_REPOSITORY

note "generation 1 of the corpus ($((SIZE >> 20)) MiB)"
python3 "$BENCH/lib/gen_churn.py" init "$TREE" "$SIZE" | tee "$RUN/corpus.log" >&2 || die "corpus generation failed"

{
    echo "set: $SET ($GENS generations, generation 1 = $(du -sb "$TREE" | cut -f1) bytes in $(find "$TREE" -type f | wc -l) files)"
    host_meta
    echo "policy: --keep-last $KEEP_LAST, --max-unused $MAX_UNUSED; lifeboat prune --keep-delete 0, rustic --keep-delete 0s"
    echo "corpus: bench/lib/gen_churn.py (5% of files rewritten, 1% deleted, 1.2% added per generation)"
    echo "page cache: warm (the corpus is read by the first tool of each generation)"
} > "$META"
cat "$META" >&2

# ---------------------------------------------------------------- per-tool commands
lifeboat_init() { "$LIFEBOAT" -r "$1" --no-progress init; }
lifeboat_run() { local op="$1" r="$2"; shift 2; measure "$op" lifeboat "$r" "$LIFEBOAT" -r "$r" --no-progress "$@"; }
restic_init() { XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$1" init --repository-version 2; }
restic_run() { local op="$1" r="$2"; shift 2; measure "$op" restic "$r" env XDG_CACHE_HOME="$RUN/cache/restic" restic -r "$r" "$@"; }
rustic_init() { XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$1" --no-progress init; }
rustic_run() { local op="$1" r="$2"; shift 2; measure "$op" rustic "$r" env XDG_CACHE_HOME="$RUN/cache/rustic" "$RUSTIC" -r "$r" --no-progress "$@"; }

# forget_prune TOOL REPO: the generation's retention step. Op names: "forget" and "prune" for
# lifeboat (two commands), "forget --prune" for restic and rustic (one command).
forget_prune() {
    local tool="$1" r="$2"
    case $tool in
        lifeboat)
            lifeboat_run "forget" "$r" forget --keep-last "$KEEP_LAST" || return 1
            lifeboat_run "prune" "$r" prune --keep-delete 0 --max-unused "$MAX_UNUSED" ;;
        restic)
            restic_run "forget --prune" "$r" forget --keep-last "$KEEP_LAST" --prune --max-unused "$MAX_UNUSED" ;;
        rustic)
            rustic_run "forget --prune" "$r" forget --keep-last "$KEEP_LAST" --prune --max-unused "$MAX_UNUSED" --keep-delete 0s ;;
    esac
}
prune_again() {
    local tool="$1" r="$2"
    case $tool in
        lifeboat) lifeboat_run "final: prune again" "$r" prune --keep-delete 0 --max-unused "$MAX_UNUSED" ;;
        restic) restic_run "final: prune again" "$r" prune --max-unused "$MAX_UNUSED" ;;
        rustic) rustic_run "final: prune again" "$r" prune --max-unused "$MAX_UNUSED" --keep-delete 0s ;;
    esac
}

anomaly() { echo "generation $ROUND: $*" >> "$RUN/anomalies.txt"; echo "   !! ANOMALY: $*" >&2; }

for tool in "${TOOL_LIST[@]}"; do
    ${tool}_init "$RUN/repos/$tool" > "$RUN/logs/$tool-init.log" 2>&1 || die "$tool init failed: $(tail -3 "$RUN/logs/$tool-init.log")"
done

# ---------------------------------------------------------------- generations
declare -A FAILED
QUIET_MEASURE=1
for ((ROUND = 1; ROUND <= GENS; ROUND++)); do
    if ((ROUND > 1)); then
        python3 "$BENCH/lib/gen_churn.py" step "$TREE" "$ROUND" >> "$RUN/corpus.log" || die "corpus step $ROUND failed"
    fi
    ORDER=("${TOOL_LIST[@]:$(( (ROUND - 1) % ${#TOOL_LIST[@]} ))}" "${TOOL_LIST[@]:0:$(( (ROUND - 1) % ${#TOOL_LIST[@]} ))}")
    line="gen $ROUND/$GENS:"
    for tool in "${ORDER[@]}"; do
        [[ -n ${FAILED[$tool]:-} ]] && continue
        R="$RUN/repos/$tool"
        ${tool}_run "backup" "$R" backup "$TREE" || { anomaly "$tool backup failed"; FAILED[$tool]=1; continue; }
        forget_prune "$tool" "$R" || { anomaly "$tool forget/prune failed"; FAILED[$tool]=1; continue; }
        line+="$(awk -F'\t' -v t="$tool" -v g="$ROUND" '$2 == t && $10 == g && $1 != "backup" {w += $3; if ($5 > m) m = $5; s = $6}
            END {printf "  %s prune %.1fs %d MiB repo %d MiB", t, w, m / 1024, s / 1048576}' "$TSV")"
    done
    echo "$line (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    # keep the logs of the last generations only
    find "$RUN/logs" -name "r$((ROUND - 3))-*" -delete 2>/dev/null
done

# ---------------------------------------------------------------- final steps
QUIET_MEASURE=0
ROUND=$((GENS + 1))
note "after generation $GENS: prune again, check, check --read-data"
for tool in "${TOOL_LIST[@]}"; do
    [[ -n ${FAILED[$tool]:-} ]] && continue
    R="$RUN/repos/$tool"
    prune_again "$tool" "$R" || anomaly "$tool final prune failed"
    ${tool}_run "final: check" "$R" check || anomaly "$tool check failed"
    ${tool}_run "final: check --read-data" "$R" check --read-data || anomaly "$tool check --read-data failed"
done

DATE="$(date -u +%Y-%m-%d)"
MD="$WORK/prune-$DATE$( [[ $SET != full ]] && echo "-$SET").md"
python3 "$BENCH/lib/prune_report.py" "$RUN" "$GENS" "$MD"
echo "markdown: $MD" >&2
echo "raw: $TSV, logs: $RUN/logs" >&2
