#!/usr/bin/env bash
# Builder benchmark on recipes/etcd.recipe: cold build (base image cached, no layers), unchanged
# rebuild, and rebuild after changing only the last step, each the median of N runs
# (IMGBUILD_BENCH_RUNS, default 3), plus the template's size. Uses its own image store
# (IMGBUILD_BENCH_CACHE, default /var/tmp/imgbuild-bench, kept so the base is built once).
# Usage: ci/bench-build.sh [BUILD_DIR]   (default: build). Needs root (base image), TCG or KVM.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
imgbuild=${IMGBUILD:-$build/builder/imgbuild}
bootagent=${BOOTAGENT:-$build/bootagent/bootagent}
runs=${IMGBUILD_BENCH_RUNS:-3}
cache=${IMGBUILD_BENCH_CACHE:-/var/tmp/imgbuild-bench}
[ -x "$imgbuild" ] && [ -x "$bootagent" ] || { echo "bench-build: build first ($imgbuild missing)"; exit 1; }

T=$(mktemp -d /tmp/imgbuild-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
# The recipe gets one extra last step whose text each run changes.
cp -r "$src/recipes/files" "$src/recipes/common.inc" "$T/"
recipe=$T/etcd-bench.recipe
write_recipe() { { cat "$src/recipes/etcd.recipe"; echo "run echo $1 > /dev/null"; } > "$recipe"; }

# build: run one build, print its wall-clock seconds.
build() {
    local start end
    start=$(date +%s.%N)
    (cd "$src" && "$imgbuild" build --cache-dir "$cache" --bootagent "$bootagent" "$recipe") > "$T/build.log" 2>&1 \
        || { tail -30 "$T/build.log" >&2; exit 1; }
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; if (NR % 2 == 0) m = (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f", m }'; }

"$imgbuild" base --cache-dir "$cache" --bootagent "$bootagent" "$src/images/debian-12" > /dev/null
write_recipe first
cold=$(for _ in $(seq "$runs"); do rm -rf "$cache/layers" "$cache/templates" "$cache/builds"; build; done | median)
unchanged=$(for _ in $(seq "$runs"); do build; done | median)
last=$(for i in $(seq "$runs"); do write_recipe "change-$i-$$"; build; done | median)
size=$(stat -c %s "$cache/templates/etcd/1/disk.qcow2")

echo "recipe:                  recipes/etcd.recipe + one run step ($runs runs each, median)"
echo "cold build (base cached): $cold s"
echo "unchanged rebuild:        $unchanged s"
echo "last step changed:        $last s"
echo "template disk:            $((size / 1024 / 1024)) MiB ($size bytes, zstd qcow2)"
