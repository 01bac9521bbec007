#!/usr/bin/env bash
# Builds the benchmark corpora under bench/work/corpus/<set>/ (set = full or small):
#   tree/      a source-tree corpus copied from real trees on this machine
#              (cargo registry sources, /usr/include, /usr/share, rust docs, /usr/lib),
#              whole top-level entries in sorted order until the size and file-count budget is met
#   dump.sql   a deterministic SQL-dump-like text stream (lib/gen_sql.py)
#   disk.img   a sparse disk image: data extents (pieces of a tar of tree/) at fixed offsets
#   MANIFEST   what was built (counts, sizes, digest of the file listing)
# Built once and reused (delete the set's directory to rebuild).
#
# usage: bench/corpus.sh [--small] [build|change|reset|path]
#   build   build whatever is missing (default)
#   change  modify 1% of tree/'s files deterministically (originals stashed)
#   reset   undo 'change' (put the stashed originals back, with their mtimes)
#   path    print the set's directory
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${BENCH_WORK:-$BENCH/work}"

SET=full
if [[ "${1:-}" == "--small" ]]; then SET=small; shift; fi
CMD="${1:-build}"

if [[ $SET == full ]]; then
    TREE_BYTES=$((1100 * 1024 * 1024))   # >= 1 GiB of file data
    TREE_FILES=30000
    SQL_BYTES=$((1024 * 1024 * 1024))
    IMG_BYTES=$((4096 * 1024 * 1024))
    IMG_EXTENTS=12
    IMG_EXTENT=$((50 * 1024 * 1024))     # 600 MiB of data in extents
else
    TREE_BYTES=$((100 * 1024 * 1024))
    TREE_FILES=3000
    SQL_BYTES=$((100 * 1024 * 1024))
    IMG_BYTES=$((400 * 1024 * 1024))
    IMG_EXTENTS=6
    IMG_EXTENT=$((10 * 1024 * 1024))
fi

DIR="$WORK/corpus/$SET"
TREE="$DIR/tree"
STASH="$DIR/change-stash"

log() { echo "[corpus:$SET] $*" >&2; }

# Candidate sources, in order; each line: <destination subdir> <source dir whose entries are copied>
sources() {
    local reg
    for reg in "$HOME"/.cargo/registry/src/*/; do
        [[ -d $reg ]] && echo "cargo-src $reg"
    done
    echo "include /usr/include"
    echo "share /usr/share"
    local tc
    for tc in "$HOME"/.rustup/toolchains/stable-*/share/doc; do
        [[ -d $tc ]] && echo "rust-doc $tc"
    done
    echo "lib /usr/lib"
}

# copy_entries SRC DEST: copy SRC's entries (sorted) into DEST until the budget is met;
# a directory larger than 32 MiB is descended into so the budget is not overshot much.
# Returns 1 once the budget is met.
BYTES=0
FILES=0
copy_entries() {
    local src="$1" dest="$2" entry name b f
    mkdir -p "$dest"
    while IFS= read -r -d '' entry; do
        if (( BYTES >= TREE_BYTES && FILES >= TREE_FILES )); then return 1; fi
        name="$(basename "$entry")"
        if [[ -d $entry && ! -L $entry ]] && (( $(du -sb "$entry" | cut -f1) > 32 * 1024 * 1024 )); then
            copy_entries "$entry" "$dest/$name" || { touch -r "$entry" "$dest/$name"; return 1; }
            touch -r "$entry" "$dest/$name"
            continue
        fi
        # copy the whole entry with hard links, modes and times; drop sockets/fifos/devices
        cp -a --no-preserve=xattr "$entry" "$dest/" 2>/dev/null || true
        find "$dest/$name" ! -type f ! -type d ! -type l -delete 2>/dev/null || true
        b=$(find "$dest/$name" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}')
        f=$(find "$dest/$name" -type f | wc -l)
        BYTES=$((BYTES + b)); FILES=$((FILES + f))
    done < <(find "$src" -mindepth 1 -maxdepth 1 -print0 | LC_ALL=C sort -z)
    return 0
}

build_tree() {
    if [[ -f $DIR/.tree-done ]]; then return; fi
    log "building tree (>= $((TREE_BYTES / 1048576)) MiB of file data and >= $TREE_FILES files) in $TREE"
    rm -rf "$TREE" "$STASH" "$DIR/.img-done" "$DIR/disk.img" "$DIR/MANIFEST"
    mkdir -p "$TREE"
    local dest src
    while read -r dest src; do
        copy_entries "$src" "$TREE/$dest" || break
    done < <(sources)
    find "$TREE" -type d -empty -delete
    touch "$DIR/.tree-done"
}

build_sql() {
    if [[ -f $DIR/.sql-done ]]; then return; fi
    log "generating $((SQL_BYTES / 1048576)) MiB SQL dump"
    python3 "$BENCH/lib/gen_sql.py" "$SQL_BYTES" > "$DIR/dump.sql.tmp"
    mv "$DIR/dump.sql.tmp" "$DIR/dump.sql"
    touch "$DIR/.sql-done"
}

build_img() {
    if [[ -f $DIR/.img-done ]]; then return; fi
    log "building sparse image: $((IMG_BYTES / 1048576)) MiB apparent, $IMG_EXTENTS x $((IMG_EXTENT / 1048576)) MiB extents"
    local img="$DIR/disk.img" data="$DIR/.img-data.tmp"
    rm -f "$img"
    # the data: a deterministic tar stream of the tree (sorted, fixed owner/time)
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=2024-01-01 -cf - -C "$TREE" . 2>/dev/null \
        | head -c $((IMG_EXTENTS * IMG_EXTENT)) > "$data" || true
    truncate -s "$IMG_BYTES" "$img"
    local i stride=$((IMG_BYTES / IMG_EXTENTS)) off
    for ((i = 0; i < IMG_EXTENTS; i++)); do
        # extent i starts at i*stride plus an irregular MiB-aligned shift
        off=$(( (i * stride + ((i * 7) % 13) * 1048576) / 1048576 ))
        dd if="$data" of="$img" bs=1M skip=$((i * IMG_EXTENT / 1048576)) seek=$off \
            count=$((IMG_EXTENT / 1048576)) conv=notrunc,sparse status=none
    done
    rm -f "$data"
    touch "$DIR/.img-done"
}

manifest() {
    local m="$DIR/MANIFEST"
    [[ -f $m ]] && return
    {
        echo "set: $SET"
        echo "tree: $TREE"
        echo "tree files: $(find "$TREE" -type f | wc -l)"
        echo "tree dirs: $(find "$TREE" -type d | wc -l)"
        echo "tree symlinks: $(find "$TREE" -type l | wc -l)"
        echo "tree bytes: $(find "$TREE" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}')"
        echo "tree listing sha256: $(cd "$TREE" && find . -printf '%P %y %s\n' | LC_ALL=C sort | sha256sum | cut -c1-16)"
        echo "sql bytes: $(stat -c %s "$DIR/dump.sql")"
        echo "img apparent bytes: $(stat -c %s "$DIR/disk.img")"
        echo "img allocated bytes: $(( $(stat -c %b "$DIR/disk.img") * 512 ))"
    } > "$m.tmp"
    mv "$m.tmp" "$m"
}

case "$CMD" in
    build)
        mkdir -p "$DIR"
        build_tree
        build_sql
        build_img
        manifest
        cat "$DIR/MANIFEST" >&2
        ;;
    change) python3 "$BENCH/lib/change1pct.py" apply "$TREE" "$STASH" ;;
    reset)
        if [[ -d $STASH ]]; then python3 "$BENCH/lib/change1pct.py" reset "$TREE" "$STASH"; fi ;;
    path) echo "$DIR" ;;
    *) echo "usage: $0 [--small] [build|change|reset|path]" >&2; exit 2 ;;
esac
