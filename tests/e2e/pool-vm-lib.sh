# Shared by tests/e2e/test-pool-roll.sh and ci/bench-pool.sh --provider qemu (sourced): a pool of
# QEMU VMs booted from the etcd template, reached only through each member's host forward on
# 127.0.0.1 (curl --connect-to with the pool's client certificate): nothing is sent to the
# guests' addresses. Install pool_cleanup with trap: it deletes the pool, then checks that no
# process the pool ran (recorded as they appear) is left.
# shellcheck shell=bash
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib-vm.sh"
for tool in socat jq curl; do command -v "$tool" >/dev/null || skip "$tool not installed"; done

T=$(mktemp -d /tmp/imgbuild-e2e-pool.XXXXXX)
export IMGBUILD_STATE_DIR=$T/state
POOL=etcd
POOL_DIR=$IMGBUILD_STATE_DIR/pools/$POOL
PORT_BASE=$(( 20000 + (RANDOM % 20) * 500 ))
BG_PIDS=()
SEEN_PIDS=$T/pids

log() { echo "[$(date +%T)] $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
pool() { "$IMGBUILD" pool "$@"; }
pool_json() { cat "$POOL_DIR/pool.json"; }

# Every process the pool runs: the local cloud and each member's QEMU (group leaders; QEMU's
# group holds its socat helpers). Remembered as they appear, so cleanup finds them all.
record_pids() {
    [ -f "$POOL_DIR/pool.json" ] || return 0
    { jq -r '.provider.serve_pid // empty' "$POOL_DIR/pool.json"; cat "$POOL_DIR"/members/*/qemu.pid 2>/dev/null || true; } >> "$SEEN_PIDS"
}
pool_pids() { record_pids; sort -u "$SEEN_PIDS" 2>/dev/null; }
# A recycled PID is not ours: only imgbuild (the local cloud) and qemu count.
pool_pid_ours() { alive "$1" && grep -q -e imgbuild -e qemu "/proc/$1/comm" 2>/dev/null; }
POOL_LOGS="$POOL_DIR/serve.log $POOL_DIR/members/*/console.log"
POOL_LOG_LINES=25

# ---- etcd through the host forwards ----
# "ip port" of each member: its private address and the forward to its etcd.
endpoints() {
    pool_json | jq -r '.provider as $p | .members[] | . as $m |
        ($p.instances[] | select(.id == $m.id) | .index) as $i | "\($m.ip) \($p.port_base + 10 + 3 * $i + 2)"'
}
TLS=()
etcd_call() { # etcd_call IP PORT PATH BODY
    curl -sS --max-time 5 "${TLS[@]}" --connect-to "::127.0.0.1:$2" -X POST -d "$4" "https://$1:2379$3"
}
etcd_any() { # etcd_any PATH BODY: the first member that answers
    local ip port
    while read -r ip port; do
        etcd_call "$ip" "$port" "$1" "$2" 2>/dev/null && return 0
    done < <(endpoints)
    return 1
}

pool_put() {
    local out
    out=$(etcd_any /v3/kv/put "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}") && grep -q '"revision"' <<<"$out"
}
WRITER_MAX=5000
WRITER_PAUSE=0.2

# write_initial goes through the first member's forward.
pool_put_config() {
    local ip port
    read -r ip port < <(endpoints)
    printf 'url = "https://%s:2379/v3/kv/put"\nconnect-to = "::127.0.0.1:%s"\ncacert = "%s"\ncert = "%s"\nkey = "%s"\n' \
        "$ip" "$port" "$POOL_DIR/client/ca.crt" "$POOL_DIR/client/client.crt" "$POOL_DIR/client/client.key"
}

pool_member_list() { etcd_any /v3/cluster/member/list '{}'; }
pool_data_keys() {
    etcd_any /v3/kv/range "{\"key\":\"$(b64 /data/)\",\"range_end\":\"$(b64 /data0)\",\"keys_only\":true}" |
        jq -r '.kvs[].key | @base64d'
}

# What only the VM pool shows: every member healthy and done in `pool status`, no member
# directory or cloud.json instance left from before the roll.
check_final_more() {
    pool status "$POOL" --json > "$T/status.json" || fail "status"
    [ "$(jq --arg t "$1" '[.members[] | select(.etcd.healthy and .agent.outcome == "done" and .template == $t and .machine == "running")] | length' "$T/status.json")" -eq 3 ] ||
        fail "status: $(cat "$T/status.json")"
    [ "$(ls "$POOL_DIR/members" | wc -l)" -eq 3 ] || fail "member directories left: $(ls "$POOL_DIR/members")"
    [ "$(jq '.instances | length' "$POOL_DIR/cloud/cloud.json")" -eq 3 ] || fail "cloud.json lists old instances"
}

. "$(dirname "${BASH_SOURCE[0]}")/../integration/pool-common.sh"

# build_templates: etcd@1 (recipes/etcd.recipe) and etcd@2 (a copy with one more cheap step) in
# the shared store; the step cache makes the second one a single step.
build_templates() {
    ensure_base > "$T/base.log" 2>&1 || { tail -20 "$T/base.log"; fail "base image"; }
    # Exported versions are never replaced, so a rebuild after a change to bootagent or the recipe
    # would be refused. These two are this script's own (its pools are gone when it ends): start
    # without them; the step cache still makes an unchanged rebuild an export only.
    rm -rf "$CACHE_DIR/templates/etcd/1" "$CACHE_DIR/templates/etcd/2"
    (cd "$IMGBUILD_SOURCE_DIR" && "$IMGBUILD" build --cache-dir "$CACHE_DIR" --bootagent "$GUEST_BOOTAGENT" recipes/etcd.recipe) \
        > "$T/build1.log" 2>&1 || { tail -30 "$T/build1.log"; fail "build etcd@1"; }
    mkdir -p "$T/recipe"
    cp -r "$IMGBUILD_SOURCE_DIR/recipes/files" "$IMGBUILD_SOURCE_DIR/recipes/common.inc" "$T/recipe/"
    { sed 's/^template etcd 1$/template etcd 2/' "$IMGBUILD_SOURCE_DIR/recipes/etcd.recipe"; echo 'run echo 2 > /etc/etcd-template-version'; } \
        > "$T/recipe/etcd.recipe"
    (cd "$IMGBUILD_SOURCE_DIR" && "$IMGBUILD" build --cache-dir "$CACHE_DIR" --bootagent "$GUEST_BOOTAGENT" "$T/recipe/etcd.recipe") \
        > "$T/build2.log" 2>&1 ||
        { tail -30 "$T/build2.log"; fail "build etcd@2"; }
}

# run_pool LOG ARGS...: `imgbuild pool ARGS` in the background, recording the PIDs it starts.
# Returns its exit status.
run_pool() {
    local log=$1 pid rc=0
    shift
    "$IMGBUILD" pool "$@" 2> "$log" & BG_PIDS+=($!)
    pid=$!
    while alive "$pid"; do record_pids; sleep 2; done
    unset 'BG_PIDS[-1]'
    wait "$pid" || rc=$?
    record_pids
    return $rc
}

# create_pool: 3 members on etcd@1, provider chosen by default (qemu: the template is in the store).
create_pool() {
    run_pool "$T/create.log" create "$POOL" --template etcd@1 --size 3 --cache-dir "$CACHE_DIR" --port-base "$PORT_BASE" ||
        { cat "$T/create.log"; fail "create"; }
    TLS=(--cacert "$POOL_DIR/client/ca.crt" --cert "$POOL_DIR/client/client.crt" --key "$POOL_DIR/client/client.key")
}
