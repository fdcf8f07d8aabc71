#!/usr/bin/env bash
# imgbuild's process-wide initialisation, seen from outside through an LD_PRELOAD shim
# (tests/cli-init-shim) that records the library calls: `imgbuild serve` (which holds the local
# Vault's tokens, keys and KV values in jansson objects) sets jansson's allocator to a wiping
# free before it parses anything, and calls curl_global_init once. No ports: serve is given a
# cloud.json it refuses, after parsing it.
set -uo pipefail

: "${IMGBUILD:?}" "${IMGBUILD_BINARY_DIR:?}"
shim=$IMGBUILD_BINARY_DIR/tests/cli-init-shim.so
[ -f "$shim" ] || { echo "FAIL: $shim not built" >&2; exit 1; }

dir=$(mktemp -d /tmp/test-cli-init-XXXXXX)
trap 'rm -rf "$dir"' EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$dir"/*.log "$dir"/*.err; do [ -f "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    exit 1
}

# run NAME ARGS...: imgbuild ARGS with the shim; its calls in $dir/NAME.log, stderr in NAME.err
run() {
    local name=$1
    shift
    : >"$dir/$name.log"
    # (a sanitizer build wants its runtime first in the library list; the shim is built with it)
    CLI_INIT_SHIM_LOG=$dir/$name.log LD_PRELOAD=$shim \
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
        "$IMGBUILD" "$@" 2>"$dir/$name.err"
}

echo "--- 1. imgbuild serve: the wiping allocator before the first parse"
mkdir -p "$dir/state"
echo '{"api_port": 1}' >"$dir/state/cloud.json"
run serve serve --state-dir "$dir/state"
rc=$?
[ "$rc" -eq 2 ] || fail "serve exited $rc on an incomplete cloud.json, expected 2"
grep -q "cloud.json: zone: missing" "$dir/serve.err" || fail "serve did not parse cloud.json"
grep -qx "json_loadb" "$dir/serve.log" || fail "the shim saw no json_loadb (is it loaded?)"
first=$(grep -m1 -E '^(json_set_alloc_funcs|json_loadb)' "$dir/serve.log")
[ "$first" = "json_set_alloc_funcs own-free" ] ||
    fail "serve parsed JSON before setting a wiping jansson allocator (first: '$first')"
grep -q "json_set_alloc_funcs plain-free" "$dir/serve.log" && fail "serve set jansson's allocator back to plain free"

echo "--- 2. curl_global_init once, before any handle"
# (this serve run makes no curl handle before it stops: the order check holds for a later one)
[ "$(grep -cx curl_global_init "$dir/serve.log")" -eq 1 ] || fail "serve called curl_global_init other than once"
first=$(grep -m1 -E '^curl_(global|easy)_init' "$dir/serve.log")
[ "$first" = "curl_global_init" ] || fail "a curl handle was made before curl_global_init"
echo "PASS"
