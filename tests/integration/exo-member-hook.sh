#!/usr/bin/env bash
# fake-exoscale's --member-hook for test-exoscale-pool.sh: each instance-pool member the fake
# creates becomes a host "machine" booting bootagent (units = exec, its etcd on the member's lease
# address 127.0.0.N) in a local cloud (`imgbuild serve`: metadata and Vault). The agents find
# their pool through the fake's API (Vault KV bootagent/cloud-api points them there), exactly as
# on Exoscale: own instance -> pool -> instances -> private network leases.
#
#   exo-member-hook.sh cloud                          write the local cloud's cloud.json
#   exo-member-hook.sh create ID IP POOL-ID ZONE      boot a member (returns once its agent runs)
#   exo-member-hook.sh delete ID                      destroy a member (no graceful leave)
#
# Environment (from the test): EXO_T (test directory), EXO_BASE (port block), EXOSCALE_API_KEY,
# EXOSCALE_API_SECRET, BOOTAGENT; the fake's port is in $EXO_T/fake.out (the fake starts first).
# Ports: local cloud API EXO_BASE, etcd client +1 and peer +2, per member k = N - 50 metadata
# +10+2k and Vault +11+2k.

set -euo pipefail
: "${EXO_T:?}" "${EXO_BASE:?}" "${BOOTAGENT:?}"
EXO_FAKE_PORT=$(head -n 1 "$EXO_T/fake.out")

source "$(dirname "${BASH_SOURCE[0]}")/agent-conf-lib.sh"

metadata_port() { echo $((EXO_BASE + 10 + 2 * (${1##*.} - 50))); }

# Rewrite cloud.json from $EXO_T/instances/*.json and $EXO_T/pool-id, atomically.
write_cloud_json() {
        local instances='[]' pools='[]' files
        files=$(ls "$EXO_T"/instances/*.json 2>/dev/null || true)
        [ -z "$files" ] || instances=$(echo "$files" | xargs cat | jq -s .)
        [ -f "$EXO_T/pool-id" ] && pools=$(jq -n --arg id "$(cat "$EXO_T/pool-id")" --argjson n "$(echo "$instances" | jq length)" \
                '[{id: $id, name: "etcd", size: $n, template: "etcd", private_network: "unused"}]')
        jq -n --argjson port "$EXO_BASE" --argjson instances "$instances" --argjson pools "$pools" \
                --arg url "http://127.0.0.1:$EXO_FAKE_PORT/{zone}/v2" --arg key "$EXOSCALE_API_KEY" \
                --arg secret "$EXOSCALE_API_SECRET" '{
          zone: "ch-gva-2", api_port: $port,
          api_key: "EXOlocalcloud0000000000000", api_secret: "local-cloud-not-used",
          instances: $instances, pools: $pools,
          vault: {
            roles: { etcd: { pool: "etcd", security_group: "etcd", policies: ["etcd"], ttl: 3600 } },
            policies: { etcd: { "secret/data/etcd/*": ["read", "create", "update"],
                                "secret/data/bootagent/*": ["read"],
                                "pki/issue/etcd-peer": ["update"], "pki/sign/etcd-peer": ["update"] } },
            pki_roles: { "etcd-peer": { allowed_domains: ["etcd.local"], allow_subdomains: true,
                                        allow_ip_sans: true, allow_any_name: true, max_ttl: 86400 } },
            kv: { "bootagent/cloud-api": { api_key: $key, api_secret: $secret, api_url: $url },
                  "etcd/shared": { token: "shared-etcd-token" } }
          }
        }' > "$EXO_T/cloud/cloud.json.tmp"
        mv "$EXO_T/cloud/cloud.json.tmp" "$EXO_T/cloud/cloud.json"
}

locked_write_cloud_json() {
        exec 8> "$EXO_T/cloud.lock"
        flock 8
        write_cloud_json
        exec 8>&-
}

write_agent_config() {
        local id=$1 ip=$2 root=$3 md
        md=$(metadata_port "$ip")
        AGENT_EXTRA= METADATA_DEADLINE_MS=10000 VAULT_DEADLINE_MS=10000 PKI_TTL=24h PKI_EXTRA= \
                write_etcd_agent_conf "$root" "fake-exoscale instance $id" "$((${ip##*.} - 50))" "$md" "$((md + 1))" \
                "$((EXO_BASE + 1))" "$((EXO_BASE + 2))"
}

# Whether pid runs the program comm (guards against a recycled PID); a zombie does not count.
is() {
        [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
                [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

create() {
        local id=$1 ip=$2 pool_id=$3 root="$EXO_T/members/$1" i
        case "$ip" in 127.0.0.*) ;; *) echo "hook: $id has no 127.0.0.x lease ($ip)" >&2; exit 1 ;; esac
        echo "$pool_id" > "$EXO_T/pool-id"
        mkdir -p "$EXO_T/instances" "$root"
        jq -n --arg id "$id" --arg ip "$ip" --arg pool "$pool_id" --argjson md "$(metadata_port "$ip")" \
                '{id: $id, name: ("etcd-" + $id[0:8]), state: "running", pool: $pool, private_ip: $ip, public_ip: $ip,
                  security_groups: ["etcd"], labels: {role: "etcd"}, user_data: "",
                  metadata_port: $md, vault_port: ($md + 1)}' > "$EXO_T/instances/$id.json"
        locked_write_cloud_json
        write_agent_config "$id" "$ip" "$root"
        # The local cloud re-reads cloud.json: wait until it serves this machine.
        local end=$((SECONDS + 60)) # far above what a loaded machine needs
        until [ "$(curl -sf "http://127.0.0.1:$(metadata_port "$ip")/latest/meta-data/instance-id" || true)" = "$id" ] ||
                [ "$SECONDS" -ge "$end" ]; do
                sleep 0.1
        done
        # The machine boots: its first boot runs on its own, as bootagent-firstboot.service does.
        "$BOOTAGENT" firstboot --root "$root" >> "$root/agent.log" 2>&1 < /dev/null &
        echo $! > "$root/agent.pid"
}

delete() {
        local id=$1 root="$EXO_T/members/$1" pid i
        pid=$(cat "$root/agent.pid" 2>/dev/null || true)
        is "$pid" bootagent && kill -KILL "$pid"
        pid=$(cat "$root/var/lib/bootagent/etcd.service.pid" 2>/dev/null || true)
        if is "$pid" etcd; then
                kill -TERM -- "-$pid" 2>/dev/null || true
                for i in $(seq 50); do is "$pid" etcd || break; sleep 0.1; done
                kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        rm -f "$EXO_T/instances/$id.json"
        locked_write_cloud_json
}

case "${1:-}" in
cloud) mkdir -p "$EXO_T/cloud"; locked_write_cloud_json ;;
create) create "$2" "$3" "$4" ;;
delete) delete "$2" ;;
*) echo "usage: exo-member-hook.sh cloud | create ID IP POOL-ID ZONE | delete ID" >&2; exit 2 ;;
esac
