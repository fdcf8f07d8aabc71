#!/usr/bin/env bash
# A pool of 3 QEMU VMs booted from the etcd template, end to end:
# 1. templates etcd@1 (recipes/etcd.recipe) and etcd@2 (the same plus one cheap step) built in the
#    shared e2e store; `pool create` boots 3 members (provider qemu by default: the template is
#    in the store), `pool status` from another shell sees 3 healthy voters;
# 2. 1000 keys, then a roll to etcd@2 while a writer records every acknowledged write: afterwards
#    every member is on etcd@2, etcd has exactly the 3 pool members as voters, every
#    acknowledged key is there;
# 3. a roll back to etcd@1 during which one old member's QEMU is SIGKILLed (by the PID in its
#    pid file): the roll recovers it or stops with exit status 4, writes never stop for long
#    (quorum holds), a re-run completes with no stale member and exactly 3 voters;
# 4. `pool delete` leaves no process (local cloud, QEMU, socat) and no file.
# etcd is reached only through each member's host forward on 127.0.0.1 (curl --connect-to, the
# pool's client certificate): nothing is sent to the guests' addresses.
set -euo pipefail
. "$(dirname "$0")/pool-vm-lib.sh"
trap pool_cleanup EXIT

# ---- 1. templates and create ----
start=$(date +%s)
build_templates
log "templates etcd@1 and etcd@2 ready after $(( $(date +%s) - start )) s"
start=$(date +%s)
create_pool
log "create: 3 members joined after $(( $(date +%s) - start )) s"
[ "$(pool_json | jq -r .provider_name)" = qemu ] || fail "provider is not qemu"
[ "$(stat -c %a "$POOL_DIR/client/client.key")" = 600 ] || fail "client key not 0600"
pool status "$POOL" --json > "$T/status.json" || fail "status"
[ "$(jq '[.members[] | select(.etcd.healthy and .agent.outcome == "done" and .machine == "running")] | length' "$T/status.json")" -eq 3 ] ||
    fail "status after create: $(cat "$T/status.json")"
[ "$(jq '[.members[] | select(.etcd.role == "leader")] | length' "$T/status.json")" -eq 1 ] || fail "status: not one leader"
out=$(pool status "$POOL") && grep -q "timeline: identity@" <<<"$out" || fail "text status has no timeline"

# ---- 2. 1000 keys, roll to etcd@2 under writes ----
: > "$T/acked"
write_initial 1000
log "rolling to etcd@2 with a writer running"
start=$(date +%s)
start_writer /data/w1
roll_start=$(date +%s%3N)
run_pool "$T/roll.log" roll "$POOL" --template etcd@2 || { cat "$T/roll.log"; fail "roll"; }
roll_end=$(date +%s%3N)
stop_writer
log "roll: $(( $(date +%s) - start )) s; $(grep -o 'replaced member .* in [0-9]* ms' "$T/roll.log" | sed 's/.* in //' | paste -sd' ') per member;" \
    "writes: $(grep -c ok "$T/attempts") acknowledged, availability $(write_availability)%, longest gap $(longest_outage_ms) ms"
check_writes_during "$roll_start" "$roll_end"
check_final etcd@2

# ---- 3. kill one old member's QEMU during a roll back to etcd@1 ----
log "rolling to etcd@1, killing an old member's QEMU on the way"
start_writer /data/w2
"$IMGBUILD" pool roll "$POOL" --template etcd@1 2> "$T/roll2.log" & BG_PIDS+=($!)
roll=$!
until pool_json | jq -e '[.members[] | select(.template == "etcd@1" and .state == "active")] | length >= 1' >/dev/null; do
    alive "$roll" || break
    record_pids; sleep 2
done
victim=$(pool_json | jq -r '[.members[] | select(.template == "etcd@2" and .state == "active")] | last | .id')
[ "$victim" != null ] || fail "no old member left to kill"
index=$(pool_json | jq --arg id "$victim" '.provider.instances[] | select(.id == $id) | .index')
log "killing the QEMU of $victim (pid $(cat "$POOL_DIR/members/m$index/qemu.pid"))"
kill -KILL "$(cat "$POOL_DIR/members/m$index/qemu.pid")"
while alive "$roll"; do record_pids; sleep 2; done
unset 'BG_PIDS[-1]'
rc=0; wait "$roll" || rc=$?
log "roll exited with $rc: $(grep -E 'not healthy|again|replaced' "$T/roll2.log" | tr '\n' ' ')"
case $rc in
0) ;;
4) grep -q "cluster not healthy" "$T/roll2.log" || fail "exit 4 without a reason: $(cat "$T/roll2.log")"
   pool roll "$POOL" --template etcd@1 2> "$T/roll3.log" || { cat "$T/roll3.log"; fail "re-run after exit 4"; } ;;
*) cat "$T/roll2.log"; fail "roll exited with $rc" ;;
esac
record_pids
stop_writer
log "writes: $(grep -c ok "$T/attempts") acknowledged, availability $(write_availability)%, longest gap $(longest_outage_ms) ms"
[ "$(longest_outage_ms)" -lt 30000 ] || fail "writes stopped for $(longest_outage_ms) ms"
check_final etcd@1

# ---- 4. delete (cleanup checks that nothing is left) ----
pool delete "$POOL" 2> "$T/delete.log" || { cat "$T/delete.log"; fail "delete"; }
[ ! -e "$POOL_DIR" ] || fail "$POOL_DIR left"
log "PASS"
