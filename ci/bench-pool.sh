#!/usr/bin/env bash
# Pool benchmark (real etcd): time from `pool create` to all 3 members joined, time to replace
# one member during `pool roll`, and write availability during the roll (share of puts that
# succeeded, and the longest gap between two successful writes). Medians over BENCH_RUNS runs
# (default 3; with --provider qemu default 1: each run boots 6 VMs).
# --provider host (default): members are host processes (tests/integration/pool-lib.sh).
# --provider qemu: members are VMs from the etcd template (tests/e2e/pool-vm-lib.sh; builds
#   etcd@1 and etcd@2 in the e2e store first, as root), plus the boot floor: one template VM
#   booted to the communicator's answer (`imgbuild vm-exec --template etcd@1 -- true`).
# Usage: [BENCH_RUNS=N] ci/bench-pool.sh [--provider host|qemu] [BUILD_DIR]   (default: build)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
provider=host
if [ "${1:-}" = --provider ]; then provider=$2; shift 2; fi
case $provider in host|qemu) ;; *) echo "bench-pool: unknown provider $provider"; exit 1 ;; esac
build=${1:-$src/build}
export IMGBUILD=${IMGBUILD:-$build/builder/imgbuild} BOOTAGENT=${BOOTAGENT:-$build/bootagent/bootagent}
[ -x "$IMGBUILD" ] && [ -x "$BOOTAGENT" ] || { echo "bench-pool: build first ($IMGBUILD, $BOOTAGENT)"; exit 1; }
runs=${BENCH_RUNS:-$([ "$provider" = qemu ] && echo 1 || echo 3)}
results=$(mktemp /tmp/bench-pool.XXXXXX)
trap 'rm -f "$results"' EXIT

one_run_host() (
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

one_run_qemu() (
        export IMGBUILD_SOURCE_DIR=$src IMGBUILD_BINARY_DIR=$build
        source "$src/tests/e2e/pool-vm-lib.sh"
        trap pool_cleanup EXIT
        local start end
        build_templates
        "$IMGBUILD" vm-exec --cache-dir "$CACHE_DIR" --template etcd@1 -- true 2> "$T/floor.log" || { cat "$T/floor.log" >&2; exit 1; }
        grep -o 'VM ready after [0-9.]* s' "$T/floor.log" | awk '{ print "floor", $4 * 1000 }'
        start=$(date +%s%3N)
        create_pool
        end=$(date +%s%3N)
        echo "create $((end - start))"
        : > "$T/acked"
        start_writer /data/w
        run_pool "$T/roll.log" roll "$POOL" --template etcd@2 || { cat "$T/roll.log" >&2; exit 1; }
        stop_writer
        grep -o 'replaced member [^ ]* in [0-9]* ms' "$T/roll.log" | awk '{ print "member", $(NF - 1) }'
        echo "availability $(write_availability)"
        echo "gap $(longest_outage_ms)"
)

for i in $(seq "$runs"); do
        echo "run $i/$runs ..." >&2
        "one_run_$provider" >> "$results"
done

median() { grep "^$1 " "$results" | awk '{ print $2 }' | sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "pool bench ($provider provider, 3 members, $runs runs, medians):"
[ "$provider" = host ] || echo "  boot floor (1 VM to ping):   $(median floor) ms"
echo "  create to all joined:        $(median create) ms"
echo "  roll time per member:        $(median member) ms"
echo "  write availability in roll:  $(median availability) %"
echo "  longest write gap in roll:   $(median gap) ms"
