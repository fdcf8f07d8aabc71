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
alive() { local s; s=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }

pool_cleanup() {
    local rc=$? pid
    set +e
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    record_pids
    if [ -d "$POOL_DIR" ]; then
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
            for f in "$POOL_DIR"/serve.log "$POOL_DIR"/members/*/console.log; do
                [ -f "$f" ] && { echo "==== $f"; tail -n 25 "$f"; }
            done
        fi
        pool delete "$POOL" || rc=1
    fi
    for pid in $(sort -u "$SEEN_PIDS" 2>/dev/null); do
        if alive "$pid" && grep -q -e imgbuild -e qemu "/proc/$pid/comm" 2>/dev/null; then
            log "FAIL: process $pid survived pool delete"
            kill -KILL -- "-$pid" 2>/dev/null
            rc=1
        fi
    done
    [ ! -e "$POOL_DIR" ] || { log "FAIL: $POOL_DIR survived pool delete"; rc=1; }
    rm -rf "$T"
    exit $rc
}

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
b64() { printf %s "$1" | base64 -w0; }

# writer PREFIX: put PREFIX/1, PREFIX/2, ... until $T/stop-writer exists, through whichever member
# answers. Each acknowledged key goes to $T/acked; every attempt to $T/attempts as "ms ok|fail".
writer() {
    local prefix=$1 i=0 t
    while [ ! -e "$T/stop-writer" ] && [ $i -lt 5000 ]; do
        i=$((i + 1))
        t=$(date +%s%3N)
        if etcd_any /v3/kv/put "{\"key\":\"$(b64 "$prefix/$i")\",\"value\":\"$(b64 "v$i")\"}" | grep -q '"revision"'; then
            echo "$prefix/$i" >> "$T/acked"; echo "$t ok" >> "$T/attempts"
        else
            echo "$t fail" >> "$T/attempts"
        fi
        sleep 0.2
    done
}
start_writer() { rm -f "$T/stop-writer"; : > "$T/attempts"; writer "$1" & BG_PIDS+=($!); }
stop_writer() { touch "$T/stop-writer"; wait "${BG_PIDS[-1]}"; unset 'BG_PIDS[-1]'; }
longest_gap_ms() { awk '$2 == "ok" { if (last && $1 - last > max) max = $1 - last; last = $1 } END { print max + 0 }' "$T/attempts"; }
availability() { awk '{ n++; if ($2 == "ok") ok++ } END { printf "%.1f", n ? 100 * ok / n : 0 }' "$T/attempts"; }

# write_initial N: /data/init/1..N in one curl run (one connection), all recorded as acknowledged.
write_initial() {
    local i ip port
    read -r ip port < <(endpoints)
    : > "$T/init.curl"
    for i in $(seq "$1"); do
        [ "$i" -eq 1 ] || echo next >> "$T/init.curl"
        printf 'url = "https://%s:2379/v3/kv/put"\nconnect-to = "::127.0.0.1:%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\ncacert = "%s"\ncert = "%s"\nkey = "%s"\ndata = "{\\"key\\":\\"%s\\",\\"value\\":\\"%s\\"}"\n' \
            "$ip" "$port" "$POOL_DIR/client/ca.crt" "$POOL_DIR/client/client.crt" "$POOL_DIR/client/client.key" \
            "$(b64 "/data/init/$i")" "$(b64 "v$i")" >> "$T/init.curl"
        echo "/data/init/$i" >> "$T/acked"
    done
    [ "$(curl -K "$T/init.curl" | grep -c '^200$')" -eq "$1" ] || fail "initial writes failed"
}

# check_final TEMPLATE: every member active on TEMPLATE, no roll recorded, exactly 3 voting etcd
# members which are the pool's members, every acknowledged key present.
check_final() {
    local members ips
    [ "$(pool_json | jq --arg t "$1" '[.members[] | select(.template == $t and .state == "active")] | length')" -eq 3 ] ||
        fail "not all 3 members active on $1: $(pool_json | jq -c .members)"
    [ "$(pool_json | jq '.members | length')" -eq 3 ] || fail "pool does not have 3 members"
    [ "$(pool_json | jq -r '.roll_target // "none"')" = none ] || fail "roll still recorded"
    pool status "$POOL" --json > "$T/status.json" || fail "status"
    [ "$(jq --arg t "$1" '[.members[] | select(.etcd.healthy and .agent.outcome == "done" and .template == $t and .machine == "running")] | length' "$T/status.json")" -eq 3 ] ||
        fail "status: $(cat "$T/status.json")"
    members=$(etcd_any /v3/cluster/member/list '{}') || fail "no member answers member/list"
    [ "$(echo "$members" | jq '.members | length')" -eq 3 ] || fail "etcd has not exactly 3 members: $members"
    [ "$(echo "$members" | jq '[.members[] | select(.isLearner == true)] | length')" -eq 0 ] || fail "a learner remains"
    ips=$(echo "$members" | jq -r '.members[].peerURLs[0]' | sed 's|https://||; s|:.*||' | sort)
    [ "$ips" = "$(pool_json | jq -r '.members[].ip' | sort)" ] || fail "etcd members ($ips) are not the pool's members"
    etcd_any /v3/kv/range "{\"key\":\"$(b64 /data/)\",\"range_end\":\"$(b64 /data0)\",\"keys_only\":true}" |
        jq -r '.kvs[].key | @base64d' | sort > "$T/present"
    local missing
    missing=$(sort -u "$T/acked" | comm -23 - "$T/present" | head -n 5)
    [ -z "$missing" ] || fail "acknowledged keys missing: $missing"
    [ "$(ls "$POOL_DIR/members" | wc -l)" -eq 3 ] || fail "member directories left: $(ls "$POOL_DIR/members")"
    [ "$(jq '.instances | length' "$POOL_DIR/cloud/cloud.json")" -eq 3 ] || fail "cloud.json lists old instances"
}


# build_templates: etcd@1 (recipes/etcd.recipe) and etcd@2 (a copy with one more cheap step) in
# the shared store; the step cache makes the second one a single step.
build_templates() {
    ensure_base > "$T/base.log" 2>&1 || { tail -20 "$T/base.log"; fail "base image"; }
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
