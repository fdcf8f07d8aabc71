#!/usr/bin/env bash
# A 3-member pool on template etcd@1 (host provider), 200 keys, then a roll to etcd@2 while a
# writer records every acknowledged write (the members reach metadata and Vault through UNIX
# sockets of the pool's local cloud): afterwards every member is on etcd@2, etcd has exactly
# the 3 pool members as voters, and every acknowledged key is there. `pool delete` leaves no
# process and no file behind (checked by pool_cleanup).
source "$(dirname "$0")/pool-lib.sh"
trap pool_cleanup EXIT

log "creating pool (port base $PORT_BASE)"
pool create "$POOL" --provider host --template etcd@1 --size 3 --port-base "$PORT_BASE" 2> "$T/create.log" || { cat "$T/create.log"; fail "create"; }
save_client_tls
[ "$(ctl member list -w json | jq '[.members[] | select(.isLearner != true)] | length')" -eq 3 ] || fail "3 voters after create"

# Another shell (no lock needed) sees the pool.
pool status "$POOL" --json > "$T/status.json" || fail "status"
[ "$(jq '[.members[] | select(.etcd.healthy and .agent.outcome == "done" and .template == "etcd@1")] | length' "$T/status.json")" -eq 3 ] ||
        fail "status: $(cat "$T/status.json")"
[ "$(jq '[.members[] | select(.etcd.role == "leader")] | length' "$T/status.json")" -eq 1 ] || fail "status: not one leader"
jq -e '.members[0].agent.stages | map(.stage) | index("done")' "$T/status.json" >/dev/null || fail "status: no timeline"
out=$(pool status "$POOL") && grep -q "timeline: identity@" <<<"$out" || fail "text status has no timeline"

# The members' metadata and Vault are UNIX sockets of the pool's local cloud (0700 directory,
# 0600 sockets), not ports; the members' agents were configured with them.
[ "$(jq '[.instances[] | select(.metadata_socket and .vault_socket and (has("metadata_port") | not))] | length' \
        "$POOL_DIR/cloud/cloud.json")" -eq 3 ] || fail "cloud.json does not put the members on sockets"
[ "$(stat -c %a "$POOL_DIR/cloud/sockets")" = 700 ] || fail "sockets directory mode"
for sock in "$POOL_DIR"/cloud/sockets/m{1,2,3}-{metadata,vault}.sock; do
        [ -S "$sock" ] && [ "$(stat -c %a "$sock")" = 600 ] || fail "$sock: missing or not 0600"
done
grep -qx "socket = $POOL_DIR/cloud/sockets/m1-vault.sock" "$POOL_DIR"/members/*/etc/bootagent/agent.conf ||
        fail "no member's agent.conf names its Vault socket"

# Changing commands exclude each other.
exec 9> "$POOL_DIR/lock"; flock 9
pool scale "$POOL" --size 3 2> "$T/busy.log" && fail "scale ran while the pool was locked"
grep -q "busy" "$T/busy.log" || fail "no busy message: $(cat "$T/busy.log")"
exec 9>&-

log "writing 200 keys"
write_initial 200

log "rolling to etcd@2 with a writer running"
start_writer /data/w
roll_start=$(date +%s%3N)
pool roll "$POOL" --template etcd@2 2> "$T/roll.log" || { cat "$T/roll.log"; fail "roll"; }
roll_end=$(date +%s%3N)
stop_writer
log "writes: $(wc -l < "$T/acked") acknowledged, availability $(write_availability)%, longest gap $(longest_outage_ms) ms"
check_writes_during "$roll_start" "$roll_end"

check_final etcd@2
# The replaced members are gone from the cloud and the disk.
[ "$(ls "$POOL_DIR/members" | wc -l)" -eq 3 ] || fail "member roots left: $(ls "$POOL_DIR/members")"
[ "$(jq '.instances | length' "$POOL_DIR/cloud/cloud.json")" -eq 3 ] || fail "cloud.json still lists old instances"

# Nothing to do on a second roll to the same template.
pool roll "$POOL" --template etcd@2 2>/dev/null || fail "second roll"
[ "$(grep -c replacing "$T/roll.log")" -eq 3 ] || fail "expected 3 replacements"
log "PASS"
