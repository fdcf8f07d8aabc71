#!/usr/bin/env bash
# Failures during a roll, with a writer running throughout:
# 1. `pool roll` is SIGKILLed while a new member joins: `pool status` shows the checkpoint from
#    another shell, and `pool roll --abort` leaves every member old or new, all voting, size 3.
# 2. One old member's etcd is killed during the next roll: the roll stops with exit status 4
#    (quorum floor) or recovers by restarting it; re-run, it completes with no stale member, and
#    writes never stop for long (quorum is never lost).
# 3. A member that cannot come back: the next roll is refused (exit status 4) before anything
#    changes; once it can, --abort restarts it and the cluster is healthy again.
PORT_RANGE_START=15000 PORT_BLOCKS=5 source "$(dirname "$0")/pool-lib.sh"
trap pool_cleanup EXIT

wait_for() {  # wait_for SECONDS JQ-CONDITION-ON-POOL-JSON
        local i
        for i in $(seq $(($1 * 10))); do
                pool_json | jq -e "$2" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        fail "timed out waiting for $2: $(pool_json | jq -c .members)"
}

log "creating pool (port base $PORT_BASE)"
pool create "$POOL" --provider host --template etcd@1 --size 3 --port-base "$PORT_BASE" 2> "$T/create.log" || { cat "$T/create.log"; fail "create"; }
save_client_tls
write_initial 50
start_writer /data/w

log "1: killing pool roll while a member joins"
"$IMGBUILD" pool roll "$POOL" --template etcd@2 2> "$T/roll1.log" &
roll=$!
wait_for 30 '[.members[] | select(.state == "joining")] | length == 1'
kill -KILL "$roll"; wait "$roll" 2>/dev/null || true
pool status "$POOL" --json > "$T/status.json" || fail "status after kill"
[ "$(jq -r .roll_target "$T/status.json")" = etcd@2 ] || fail "checkpoint lost: $(cat "$T/status.json")"
pool roll "$POOL" --template etcd@3 2> "$T/other.log" && fail "a roll to another template started"
grep -q "in progress" "$T/other.log" || fail "no in-progress message: $(cat "$T/other.log")"
pool roll "$POOL" --abort 2> "$T/abort.log" || { cat "$T/abort.log"; fail "abort"; }
[ "$(pool_json | jq '.members | length')" -eq 3 ] || fail "size after abort: $(pool_json | jq -c .members)"
[ "$(pool_json | jq '[.members[] | select(.state == "active" and (.template == "etcd@1" or .template == "etcd@2"))] | length')" -eq 3 ] ||
        fail "members after abort: $(pool_json | jq -c .members)"
[ "$(pool_json | jq -r '.roll_target // "none"')" = none ] || fail "roll still recorded after abort"
[ "$(ctl member list -w json | jq '[.members[] | select(.isLearner != true)] | length')" -eq 3 ] || fail "not 3 voters after abort"

log "2: killing an old member's etcd during the roll"
"$IMGBUILD" pool roll "$POOL" --template etcd@2 2> "$T/roll2.log" &
roll=$!
BG_PIDS+=("$roll")
wait_for 60 '[.members[] | select(.template == "etcd@2" and .state == "active")] | length >= 1'
victim=$(pool_json | jq -r '[.members[] | select(.template == "etcd@1")] | last | .id')
[ "$victim" != null ] || fail "no old member left to kill"
log "killing etcd of $victim"
kill -KILL -- "-$(cat "$POOL_DIR/members/$victim/var/lib/bootagent/etcd.service.pid")"
rc=0; wait "$roll" || rc=$?
unset 'BG_PIDS[-1]'
log "roll exited with $rc:"$'\n'"$(grep -E 'not healthy|again|replac' "$T/roll2.log")"
case $rc in
0) grep -q "starting it again" "$T/roll2.log" || log "the roll had replaced $victim before it noticed" ;;
4) grep -q "cluster not healthy" "$T/roll2.log" || fail "exit 4 without a reason: $(cat "$T/roll2.log")"
   pool roll "$POOL" --template etcd@2 2> "$T/roll3.log" || { cat "$T/roll3.log"; fail "re-run after exit 4"; } ;;
*) cat "$T/roll2.log"; fail "roll exited with $rc" ;;
esac
stop_writer
log "writes: $(wc -l < "$T/acked") acknowledged, availability $(write_availability)%, longest gap $(longest_outage_ms) ms"
[ "$(longest_outage_ms)" -lt 10000 ] || fail "writes stopped for $(longest_outage_ms) ms"
check_final etcd@2

log "3: a member that cannot come back: the quorum floor refuses the next roll"
victim=$(pool_json | jq -r '.members[0].id')
victim_ip=$(pool_json | jq -r '.members[0].ip')
kill -KILL -- "-$(cat "$POOL_DIR/members/$victim/var/lib/bootagent/etcd.service.pid")"
# Something else holds its client port, so a restarted etcd cannot serve.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
for _ in range(50):
    try: s.bind((sys.argv[1], int(sys.argv[2]))); break
    except OSError: time.sleep(0.1)
s.listen(); open(sys.argv[3], "w").close(); time.sleep(300)' "$victim_ip" "$(etcd_port)" "$T/blocked" &
blocker=$!
# (a 60 s deadline: far above what a loaded 2-core machine needs; it only turns a hang into a failure)
end=$((SECONDS + 60)); until [ -e "$T/blocked" ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.1; done
[ -e "$T/blocked" ] || fail "could not take the port of $victim"

BG_PIDS+=("$blocker")
before=$(pool_json | jq -c '[.members[].id]')
rc=0; pool roll "$POOL" --template etcd@3 2> "$T/roll4.log" || rc=$?
[ $rc -eq 4 ] || { cat "$T/roll4.log"; fail "expected exit status 4, got $rc"; }
grep -q "refusing to change membership: member $victim .* is not healthy" "$T/roll4.log" || fail "unclear refusal: $(cat "$T/roll4.log")"
[ "$(pool_json | jq -c '[.members[].id]')" = "$before" ] || fail "membership changed although refused"
[ "$(ctl member list -w json | jq '.members | length')" -eq 3 ] || fail "etcd membership changed although refused"
log "freeing the port and aborting the refused roll (which restarts the member)"
kill "$blocker"; wait "$blocker" 2>/dev/null || true
unset 'BG_PIDS[-1]'
pool roll "$POOL" --abort 2> "$T/abort2.log" || { cat "$T/abort2.log"; fail "abort after repair"; }
ctl endpoint health >/dev/null 2>&1 || fail "endpoints unhealthy after repair"
[ "$(pool_json | jq -r '.roll_target // "none"')" = none ] || fail "roll still recorded after abort"
log "PASS"
