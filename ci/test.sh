#!/usr/bin/env bash
# The test command (README, .ci/run). Configures and builds with -Werror if needed, then runs ctest.
#   ci/test.sh             unit, fuzz-corpus replay and integration tiers (build/)
#   ci/test.sh --sanitize  the same tiers in an address+undefined sanitizer build (build-asan/)
#   ci/test.sh --vm        the VM tier (QEMU under TCG here; slow, see README for the budget)
# Extra arguments after -- go to ctest (e.g. ci/test.sh -- -R recipe).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
labels='unit|fuzz|integration'
cmake_args=(-DIMGBUILD_WERROR=ON)
while [ $# -gt 0 ]; do
    case "$1" in
        --sanitize) build=build-asan; cmake_args+=(-DIMGBUILD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
        --vm) labels='vm' ;;
        --) shift; break ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "ci/test.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

cmake -S . -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Every failure counts, in CI too: a flaky test is a bug to find, never retried until it passes.
ctest --test-dir "$build" -L "$labels" --output-on-failure -j "$(nproc)" "$@"
