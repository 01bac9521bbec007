# Shared by bench/memory.sh and bench/prune.sh (sourced): run a command under GNU time and
# append one TSV row in run.sh's format:
#   op tool wall_s cpu_s rss_kib repo_bytes rc load1 note round
# Needs: TIME (/usr/bin/time), RUN (run directory with logs/), TSV (results file), ROUND (the
# round or generation number written in the last column). MEASURE_NOTE, if set, goes into the
# note column of the next row and is cleared. QUIET_MEASURE=1 prints nothing for rc 0.

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
    if [[ ${QUIET_MEASURE:-0} != 1 || $rc != 0 ]]; then
        printf '   %-34s %-9s wall %8ss cpu %8ss rss %6s MiB repo %8s MiB rc %s load %s\n' "$op" "$tool" "$wall" "$cpu" \
            "$((rss / 1024))" "$( [[ -n $rb ]] && echo $((rb / 1048576)) || echo -)" "$rc" "$load" >&2
    fi
    if [[ $rc != 0 ]]; then
        echo "   !! $tool $op exited $rc; last lines of $log:" >&2
        tail -5 "$log" | sed 's/^/      /' >&2
    fi
    MEASURE_NOTE=""
    return $rc
}

# build_lifeboat ROOT WORK: `cargo build --release -p lifeboat` like run.sh (nice, 5 attempts
# a minute apart, since other people may be mid-edit).
build_lifeboat() {
    local root="$1" work="$2" attempt
    for attempt in 1 2 3 4 5; do
        if (cd "$root" && nice -n 10 cargo build --release -p lifeboat >"$work/lifeboat-build.log" 2>&1); then
            return 0
        fi
        [[ $attempt == 5 ]] && { echo "cargo build failed 5 times, see $work/lifeboat-build.log" >&2; return 1; }
        echo "== lifeboat build failed (someone mid-edit?); retrying in 60 s" >&2
        sleep 60
    done
}

# host_meta: lines describing the machine and tool versions (for meta.txt)
host_meta() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "kernel: $(uname -r)"
    [[ -x $LIFEBOAT ]] && echo "lifeboat: $("$LIFEBOAT" --version 2>&1 | head -1) (git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty'))"
    command -v restic >/dev/null && echo "restic: $(restic version 2>&1 | head -1)"
    [[ -x $RUSTIC ]] && echo "rustic: $("$RUSTIC" --version 2>&1 | head -1)"
    return 0
}
