# Shared helpers for the pool integration tests and ci/bench-pool.sh (sourced). A pool on the
# host provider: `imgbuild pool` runs its own local cloud and one bootagent + etcd per member
# on 127.0.0.x. pool_cleanup (install it with trap) deletes the pool and then checks that no
# process the pool recorded is left.

set -euo pipefail

: "${IMGBUILD:?}" "${BOOTAGENT:?}"
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "skip: etcd/etcdctl not installed"; exit 77; }
command -v jq >/dev/null || { echo "skip: jq not installed"; exit 77; }

T=$(mktemp -d /tmp/pool-test.XXXXXX)
export IMGBUILD_STATE_DIR="$T/state"
export IMGBUILD_BOOTAGENT="$BOOTAGENT"
POOL=etcd
POOL_DIR="$IMGBUILD_STATE_DIR/pools/$POOL"
# Ports below the ephemeral range (32768+, where outgoing connections get theirs). Each test that
# runs in parallel with others owns a range (see tests/integration/README.md); a random block in it.
PORT_BASE=$(( ${PORT_RANGE_START:-10000} + (RANDOM % 10) * 500 ))
BG_PIDS=()

log() { echo "[$(date +%T.%3N)] $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

pool() { "$IMGBUILD" pool "$@"; }
pool_json() { cat "$POOL_DIR/pool.json"; }
member_ips() { pool_json | jq -r '.members[].ip'; }
etcd_port() { echo $((PORT_BASE + 1)); }
endpoints() { member_ips | sed "s|.*|https://&:$(etcd_port)|" | paste -sd, -; }

# Every process the pool recorded: the local cloud and each member's etcd (group leaders).
recorded_pids() {
        [ -f "$POOL_DIR/pool.json" ] || return 0
        jq -r '.provider.serve_pid // empty' "$POOL_DIR/pool.json"
        cat "$POOL_DIR"/members/*/var/lib/bootagent/etcd.service.pid 2>/dev/null || true
}

# Whether pid runs (a zombie waiting for init to reap it does not count).
alive() {
        local state
        state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ -n "$state" ] && [ "$state" != Z ]
}

pool_cleanup() {
        local rc=$? pid pids
        set +e
        for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
        pids=$(recorded_pids)
        if [ -d "$POOL_DIR" ]; then
                if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
                        for f in "$POOL_DIR"/serve.log "$POOL_DIR"/members/*/agent.log; do
                                [ -f "$f" ] && { echo "==== $f"; tail -n 30 "$f"; }
                        done
                fi
                pool delete "$POOL" || rc=1
        fi
        for pid in $pids; do
                if alive "$pid"; then
                        log "FAIL: process $pid survived pool delete"
                        kill -KILL -- "-$pid" 2>/dev/null
                        rc=1
                fi
        done
        [ ! -e "$POOL_DIR" ] || { log "FAIL: $POOL_DIR survived pool delete"; rc=1; }
        rm -rf "$T"
        exit $rc
}

# TLS files for etcdctl, copied once: members (and their roots) come and go during a roll, the
# CA stays.
save_client_tls() {
        local root
        root=$(ls -d "$POOL_DIR"/members/*/ | head -n 1)
        mkdir -p "$T/tls"
        cp "$root"/etc/etcd/pki/{ca.crt,etcd.crt,etcd.key} "$T/tls/"
}

ctl() {
        ETCDCTL_API=3 etcdctl --cacert "$T/tls/ca.crt" --cert "$T/tls/etcd.crt" --key "$T/tls/etcd.key" \
                --dial-timeout 2s --command-timeout 3s --endpoints "$(endpoints)" "$@"
}

# writer PREFIX: put PREFIX/1, PREFIX/2, ... (at most 3000) until $T/stop-writer exists. Each
# acknowledged key goes to $T/acked; every attempt to $T/attempts as "ms ok|fail".
writer() {
        local prefix=$1 i=0 t
        : > "$T/acked"; : > "$T/attempts"
        while [ ! -e "$T/stop-writer" ] && [ $i -lt 3000 ]; do
                i=$((i + 1))
                t=$(date +%s%3N)
                if ctl put "$prefix/$i" "v$i" >/dev/null 2>&1; then
                        echo "$prefix/$i" >> "$T/acked"
                        echo "$t ok" >> "$T/attempts"
                else
                        echo "$t fail" >> "$T/attempts"
                fi
                sleep 0.05
        done
}

start_writer() { rm -f "$T/stop-writer"; writer "$1" & BG_PIDS+=($!); }
stop_writer() { touch "$T/stop-writer"; wait "${BG_PIDS[-1]}"; }

# Longest stretch (ms) between two successful writes, and the share of attempts that succeeded.
longest_outage_ms() { awk '$2 == "ok" { if (last && $1 - last > max) max = $1 - last; last = $1 } END { print max + 0 }' "$T/attempts"; }
write_availability() { awk '{ n++; if ($2 == "ok") ok++ } END { printf "%.1f", n ? 100 * ok / n : 0 }' "$T/attempts"; }

# check_final TEMPLATE: every member on TEMPLATE, no roll in progress, exactly 3 voting etcd
# members which are exactly the pool's members, every acknowledged key present.
check_final() {
        local template=$1 members ips
        [ "$(pool_json | jq -r '[.members[] | select(.template == "'"$template"'" and .state == "active")] | length')" -eq 3 ] ||
                fail "not all 3 members active on $template: $(pool_json | jq -c .members)"
        [ "$(pool_json | jq '.members | length')" -eq 3 ] || fail "pool does not have 3 members"
        [ "$(pool_json | jq -r '.roll_target // "none"')" = none ] || fail "roll still recorded"
        members=$(ctl member list -w json)
        [ "$(echo "$members" | jq '.members | length')" -eq 3 ] || fail "etcd has not exactly 3 members: $members"
        [ "$(echo "$members" | jq '[.members[] | select(.isLearner == true)] | length')" -eq 0 ] || fail "a learner remains"
        ips=$(echo "$members" | jq -r '.members[].peerURLs[0]' | sed 's|https://||; s|:.*||' | sort)
        [ "$ips" = "$(member_ips | sort)" ] || fail "etcd members ($ips) are not the pool's members"
        ctl endpoint health >/dev/null 2>&1 || fail "endpoints unhealthy"
        ctl get /data/ --prefix --keys-only | grep -v '^$' | sort > "$T/present"
        local missing
        missing=$(sort "$T/acked" "$T/acked-initial" | comm -23 - "$T/present" | head -n 5)
        [ -z "$missing" ] || fail "acknowledged keys missing: $missing"
}

# write_initial N: N keys /data/init/1..N, all recorded in $T/acked-initial. One curl process
# (etcd's JSON gateway, one connection) instead of N etcdctl runs.
write_initial() {
        local i k url
        url="https://$(member_ips | head -n 1):$(etcd_port)/v3/kv/put"
        : > "$T/acked-initial"; : > "$T/init.curl"
        for i in $(seq "$1"); do
                k="/data/init/$i"
                [ "$i" -eq 1 ] || echo next >> "$T/init.curl"
                printf 'url = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\ncacert = "%s"\ncert = "%s"\nkey = "%s"\ndata = "{\\"key\\":\\"%s\\",\\"value\\":\\"%s\\"}"\n' \
                        "$url" "$T/tls/ca.crt" "$T/tls/etcd.crt" "$T/tls/etcd.key" \
                        "$(printf %s "$k" | base64 -w0)" "$(printf v%s "$i" | base64 -w0)" >> "$T/init.curl"
                echo "$k" >> "$T/acked-initial"
        done
        [ "$(curl -K "$T/init.curl" | grep -c '^200$')" -eq "$1" ] || fail "initial writes failed"
}
