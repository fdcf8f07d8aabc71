#!/usr/bin/env bash
# Pool benchmark (host provider, real etcd): time from `pool create` to all 3 members joined,
# time to replace one member during `pool roll`, and write availability during the roll (share
# of etcdctl puts that succeeded, and the longest gap between two successful writes). Medians
# over BENCH_RUNS runs (default 3).
# Usage: [BENCH_RUNS=N] ci/bench-pool.sh [BUILD_DIR]   (default: build)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
export IMGBUILD=${IMGBUILD:-$build/builder/imgbuild} BOOTAGENT=${BOOTAGENT:-$build/bootagent/bootagent}
[ -x "$IMGBUILD" ] && [ -x "$BOOTAGENT" ] || { echo "bench-pool: build first ($IMGBUILD, $BOOTAGENT)"; exit 1; }
runs=${BENCH_RUNS:-3}
results=$(mktemp /tmp/bench-pool.XXXXXX)
trap 'rm -f "$results"' EXIT

one_run() (
        source "$src/tests/integration/pool-lib.sh"
        trap pool_cleanup EXIT
        local start end
        start=$(date +%s%3N)
        pool create "$POOL" --provider host --template etcd@1 --size 3 --port-base "$PORT_BASE" 2> "$T/create.log" || { cat "$T/create.log" >&2; exit 1; }
        end=$(date +%s%3N)
        save_client_tls
        start_writer /data/w
        pool roll "$POOL" --template etcd@2 2> "$T/roll.log" || { cat "$T/roll.log" >&2; exit 1; }
        stop_writer
        # One line per run: create ms, each member's replacement ms, availability %, longest gap ms.
        echo "create $((end - start))"
        grep -o 'replaced member [^ ]* in [0-9]* ms' "$T/roll.log" | awk '{ print "member", $(NF - 1) }'
        echo "availability $(write_availability)"
        echo "gap $(longest_outage_ms)"
)

for i in $(seq "$runs"); do
        echo "run $i/$runs ..." >&2
        one_run >> "$results"
done

median() { grep "^$1 " "$results" | awk '{ print $2 }' | sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "pool bench (host provider, 3 members, $runs runs, medians):"
echo "  create to all joined:        $(median create) ms"
echo "  roll time per member:        $(median member) ms"
echo "  write availability in roll:  $(median availability) %"
echo "  longest write gap in roll:   $(median gap) ms"
