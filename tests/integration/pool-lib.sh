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
# runs in parallel with others owns a range (see tests/integration/README.md) of PORT_BLOCKS
# (default 10) blocks of 500; a random block in it.
PORT_BASE=$(( ${PORT_RANGE_START:-10000} + (RANDOM % ${PORT_BLOCKS:-10}) * 500 ))
BG_PIDS=()

log() { echo "[$(date +%T.%3N)] $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

pool() { "$IMGBUILD" pool "$@"; }
pool_json() { cat "$POOL_DIR/pool.json"; }
member_ips() { pool_json | jq -r '.members[].ip'; }
etcd_port() { echo $((PORT_BASE + 1)); }
endpoints() { member_ips | sed "s|.*|https://&:$(etcd_port)|" | paste -sd, -; }

# Every process the pool recorded: the local cloud and each member's etcd (group leaders).
pool_pids() {
        [ -f "$POOL_DIR/pool.json" ] || return 0
        jq -r '.provider.serve_pid // empty' "$POOL_DIR/pool.json"
        cat "$POOL_DIR"/members/*/var/lib/bootagent/etcd.service.pid 2>/dev/null || true
}
pool_pid_ours() { alive "$1"; }
POOL_LOGS="$POOL_DIR/serve.log $POOL_DIR/members/*/agent.log"
POOL_LOG_LINES=30

# TLS files for etcdctl, copied once: members (and their roots) come and go during a roll, the
# CA stays.
save_client_tls() {
        local root
        local roots=("$POOL_DIR"/members/*/)
        root=${roots[0]}
        mkdir -p "$T/tls"
        cp "$root"/etc/etcd/pki/{ca.crt,etcd.crt,etcd.key} "$T/tls/"
}

ctl() {
        ETCDCTL_API=3 etcdctl --cacert "$T/tls/ca.crt" --cert "$T/tls/etcd.crt" --key "$T/tls/etcd.key" \
                --dial-timeout 2s --command-timeout 3s --endpoints "$(endpoints)" "$@"
}

pool_put() { ctl put "$1" "$2" >/dev/null 2>&1; }
WRITER_MAX=3000
WRITER_PAUSE=0.05

pool_put_config() {
        printf 'url = "https://%s:%s/v3/kv/put"\ncacert = "%s"\ncert = "%s"\nkey = "%s"\n' \
                "$(pool_json | jq -r '.members[0].ip')" "$(etcd_port)" "$T/tls/ca.crt" "$T/tls/etcd.crt" "$T/tls/etcd.key"
}

pool_member_list() { ctl member list -w json; }
pool_data_keys() { ctl get /data/ --prefix --keys-only; }
check_final_more() { ctl endpoint health >/dev/null 2>&1 || fail "endpoints unhealthy"; }

source "$(dirname "${BASH_SOURCE[0]}")/pool-common.sh"
