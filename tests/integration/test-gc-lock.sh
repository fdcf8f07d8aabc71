#!/usr/bin/env bash
# `imgbuild gc` and a running build: a build holds the image store's lock shared while it runs
# (its layers and build record are not final yet), so gc, which takes it exclusive, refuses and
# deletes nothing; once the build is gone, gc removes what nothing refers to. The lock is held by
# another process, as a build's is (flock(2) on STORE/.lock, what store_lock() takes). No ports.
set -uo pipefail

: "${IMGBUILD:?}"

dir=$(mktemp -d /tmp/test-gc-lock-XXXXXX)
holder=
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    [ -f "$dir/gc.err" ] && { echo "--- gc stderr" >&2; cat "$dir/gc.err" >&2; }
    exit 1
}

export HOME=$dir/home IMGBUILD_STATE_DIR=$dir/state
mkdir -p "$HOME" "$IMGBUILD_STATE_DIR"
store=$dir/store
key=$(printf '%064d' 7)
mkdir -p "$store/layers"
# A finished layer no template or build record refers to: what gc deletes.
printf 'layer' >"$store/layers/$key.qcow2"
touch "$store/layers/$key.done"

echo "--- 1. a build holds the store lock: gc refuses, nothing deleted"
# One process holding the lock shared (the subshell execs sleep, which keeps fd 9).
(
    exec 9>"$store/.lock"
    flock -s 9 || exit 1
    touch "$dir/held"
    exec sleep 1000
) &
holder=$!
until [ -e "$dir/held" ]; do
    kill -0 "$holder" 2>/dev/null || fail "the lock holder exited"
    sleep 0.1
done
"$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.out" 2>"$dir/gc.err"
rc=$?
[ "$rc" -eq 1 ] || fail "gc exited $rc while a build holds the store lock, expected 1"
grep -q "A build is using the image store $store: run gc when it has finished" "$dir/gc.err" ||
    fail "gc did not say why it refused"
{ [ -f "$store/layers/$key.qcow2" ] && [ -f "$store/layers/$key.done" ]; } ||
    fail "gc deleted a layer while a build holds the store lock"
# --dry-run deletes nothing anyway, but it also reads what a running build has not finished
# writing: refused the same way.
"$IMGBUILD" gc --cache-dir "$store" --dry-run >"$dir/gc.out" 2>"$dir/gc.err"
rc=$?
[ "$rc" -eq 1 ] || fail "gc --dry-run exited $rc while a build holds the store lock, expected 1"

echo "--- 2. the build gone: gc removes the unreferenced layer"
kill "$holder"
wait "$holder" 2>/dev/null
holder=
"$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.out" 2>"$dir/gc.err" || fail "gc failed with no build running"
{ [ ! -e "$store/layers/$key.qcow2" ] && [ ! -e "$store/layers/$key.done" ]; } ||
    fail "gc left the unreferenced layer"
# gc's own lock is gone with it: a build can take the lock shared at once.
flock -n -s "$store/.lock" true || fail "the store lock is still held after gc"
echo "PASS"
