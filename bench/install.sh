#!/usr/bin/env bash
# Installs the peers and helpers the benchmark needs:
#   restic, borgbackup, zstd, GNU time (Debian packages) and rustic (`cargo install rustic-rs`,
#   into bench/work/tools, cached: skipped when the binary is already there).
# rustic's build takes ~16 minutes on 2 cores; it runs under `nice`.
#
# usage: bench/install.sh [--background-rustic]
#   --background-rustic  start the rustic build in the background (log: bench/work/rustic-install.log)
#                        and return after the Debian packages are in
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${BENCH_WORK:-$BENCH/work}"
TOOLS="$WORK/tools"
mkdir -p "$WORK" "$TOOLS"

BG=0
[[ "${1:-}" == "--background-rustic" ]] && BG=1

need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
command -v zstd >/dev/null || need+=(zstd)
[[ -x /usr/bin/time ]] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive nice -n 10 $SUDO apt-get install -y -q "${need[@]}"
fi

install_rustic() {
    if [[ -x $TOOLS/bin/rustic ]]; then
        echo "rustic already installed: $("$TOOLS/bin/rustic" --version)"
        return
    fi
    # own target dir so the workspace's target/ is left alone
    CARGO_TARGET_DIR="$WORK/cargo-target" nice -n 10 cargo install rustic-rs --locked --root "$TOOLS"
    rm -rf "$WORK/cargo-target"
}

if [[ $BG == 1 && ! -x $TOOLS/bin/rustic ]]; then
    export -f install_rustic
    export TOOLS WORK
    nohup bash -c install_rustic > "$WORK/rustic-install.log" 2>&1 &
    echo "rustic build started in the background (pid $!), log: $WORK/rustic-install.log"
else
    install_rustic
fi

echo "versions:"
echo "  restic: $(restic version | head -1)"
restic init --help 2>/dev/null | grep -q -- '--repository-version' \
    || echo "  WARNING: this restic has no --repository-version (no compression); run.sh expects >= 0.14"
echo "  borg:   $(borg --version)"
echo "  zstd:   $(zstd --version)"
echo "  time:   $(/usr/bin/time --version 2>&1 | head -1)"
[[ -x $TOOLS/bin/rustic ]] && echo "  rustic: $("$TOOLS/bin/rustic" --version)" || echo "  rustic: (building)"
