#!/usr/bin/env bash
# `imgbuild pool --provider exoscale` against tests/fake-exoscale, no VM. The fake's member hook
# (exo-member-hook.sh) turns each instance-pool member into a host bootagent + etcd on its lease
# address, whose first boot discovers the pool through the fake's API. Checks: a 3-member pool on
# template etcd-1 (its create killed half-way and resumed); a roll to etcd-2 with a writer running, stopped by a failed template update and
# then half-way by a failed eviction (each error names the call) and resumed by a third run; afterwards every instance runs etcd-2,
# etcd has exactly the 3 members as voters, every acknowledged key is there and the pool's list
# fields survived the template updates (protocols.md §2.5); `pool delete` leaves no pool and no
# instance in the fake and no process behind.
source "$(dirname "$0")/pool-lib.sh"

# This test's port range (tests/integration/README.md): a block of 100 in 5000-6999.
PORT_BASE=$((5000 + (RANDOM % 20) * 100))
FAKE=${FAKE_EXOSCALE:-${IMGBUILD_BINARY_DIR:-}/tests/fake-exoscale}
HOOK="$(cd "$(dirname "$0")" && pwd)/exo-member-hook.sh"
[ -x "$FAKE" ] || { echo "skip: fake-exoscale not built ($FAKE)"; rm -rf "$T"; exit 77; }
command -v openssl >/dev/null || { echo "skip: openssl not installed"; rm -rf "$T"; exit 77; }

ZONE=ch-gva-2
T1=11111111-1111-4111-8111-111111111111
T2=22222222-2222-4222-8222-222222222222
SG1=33333333-3333-4333-8333-333333333333
SG2=44444444-4444-4444-8444-444444444444
NET=55555555-5555-4555-8555-555555555555
export EXO_T="$T" EXO_BASE="$PORT_BASE" BOOTAGENT
export EXOSCALE_API_KEY=EXOfake00000000000000000000 EXOSCALE_API_SECRET=fake-secret-not-real
export IMGBUILD_EXOSCALE_POLL_MS=100
FAKE_PID= SERVE_PID=

exo_cleanup() {
        local rc=$? pid root
        set +e
        for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
                for f in "$T"/fake.log "$T"/serve.log "$T"/members/*/agent.log "$T"/members/*/var/lib/bootagent/etcd.service.log; do
                        [ -f "$f" ] && { echo "==== $f"; tail -n 30 "$f"; }
                done
        fi
        [ -f "$POOL_DIR/pool.json" ] && { pool delete "$POOL" || rc=1; }
        # Whatever a member hook started (after a delete there should be nothing).
        for root in "$T"/members/*; do
                pid=$(cat "$root/agent.pid" 2>/dev/null) && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = bootagent ] &&
                        kill -KILL "$pid"
                pid=$(cat "$root/var/lib/bootagent/etcd.service.pid" 2>/dev/null) && alive "$pid" && {
                        [ $rc -ne 0 ] || { log "FAIL: etcd $pid survived pool delete"; rc=1; }
                        kill -KILL -- "-$pid" 2>/dev/null
                }
        done
        [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
        [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null
        rm -rf "$T"
        exit $rc
}
trap exo_cleanup EXIT

fake_state() { curl -sf "http://127.0.0.1:$EXO_FAKE_PORT/_fake/state"; }
fake_pools() { fake_state | jq -c "[.zones[\"$ZONE\"][\"instance-pool\"][]]"; }
fake_instances() { fake_state | jq -c "[.zones[\"$ZONE\"].instance[]]"; }

# What an earlier build and the operator made: two templates, two security groups, a managed
# private network whose leases are loopback addresses the members can bind.
cat > "$T/seed.json" <<JSON
{
  "global": { "security-group": {
    "$SG1": { "id": "$SG1", "name": "etcd", "rules": [] },
    "$SG2": { "id": "$SG2", "name": "ssh-from-bastion", "rules": [] } } },
  "zones": { "$ZONE": {
    "template": {
      "$T1": { "id": "$T1", "name": "etcd-1", "visibility": "private", "zones": ["$ZONE"], "boot-mode": "legacy" },
      "$T2": { "id": "$T2", "name": "etcd-2", "visibility": "private", "zones": ["$ZONE"], "boot-mode": "legacy" } },
    "private-network": {
      "$NET": { "id": "$NET", "name": "etcd", "netmask": "255.255.255.0", "start-ip": "127.0.0.50", "end-ip": "127.0.0.89" } } } }
}
JSON
"$FAKE" --pending-polls 1 --member-hook "$HOOK" --seed "$T/seed.json" > "$T/fake.out" 2> "$T/fake.log" &
FAKE_PID=$!
# (a 60 s deadline: far above what a loaded 2-core machine needs; it only turns a hang into a failure)
end=$((SECONDS + 60)); until [ -s "$T/fake.out" ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.1; done
EXO_FAKE_PORT=$(head -n 1 "$T/fake.out")
[ -n "$EXO_FAKE_PORT" ] || fail "fake-exoscale did not start"
export EXO_FAKE_PORT

# The local cloud the members boot in (metadata, Vault with a local CA).
"$HOOK" cloud
"$IMGBUILD" serve --state-dir "$T/cloud" > "$T/serve.out" 2> "$T/serve.log" &
SERVE_PID=$!
end=$((SECONDS + 60)); until grep -q "serve: ready" "$T/serve.out" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do sleep 0.1; done
grep -q "serve: ready" "$T/serve.out" || fail "imgbuild serve not ready"

# The operator's etcd client certificate, from the CA that issues the members' certificates.
mkdir -p "$T/tls"
cp "$T/cloud/pki/ca.pem" "$T/tls/ca.crt"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=operator \
        -keyout "$T/tls/etcd.key" -out "$T/tls/operator.csr" 2>/dev/null
openssl x509 -req -in "$T/tls/operator.csr" -CA "$T/cloud/pki/ca.pem" -CAkey "$T/cloud/pki/ca.key" -set_serial 7 \
        -days 1 -extfile <(echo "extendedKeyUsage = clientAuth") -out "$T/tls/etcd.crt" 2>/dev/null
chmod 600 "$T/tls/etcd.key"

# Killed as soon as the fake has the second instance: with slow operation polls, while the command
# waits for the scale operation (the member is not recorded yet: the resumed command must adopt it,
# not scale again); on a slow machine maybe later, while the member joins.
log "creating pool (ports $PORT_BASE.., fake API on $EXO_FAKE_PORT); killed at its second instance"
IMGBUILD_EXOSCALE_POLL_MS=1500 "$IMGBUILD" pool create "$POOL" --provider exoscale --template etcd-1 --size 3 --zone "$ZONE" --private-network "$NET" \
        --security-group "$SG1" --security-group "$SG2" --instance-type standard.small \
        --etcd-ca "$T/tls/ca.crt" --etcd-cert "$T/tls/etcd.crt" --etcd-key "$T/tls/etcd.key" --etcd-port "$(etcd_port)" \
        --start-timeout 120 --api-endpoint "http://127.0.0.1:$EXO_FAKE_PORT/{zone}/v2" 2> "$T/create.log" &
create_pid=$!
for i in $(seq 1200); do
        [ "$(fake_instances | jq length)" -ge 2 ] && break
        kill -0 "$create_pid" 2>/dev/null || break
        sleep 0.05
done
kill -KILL "$create_pid" 2>/dev/null || true
wait "$create_pid" 2>/dev/null || true
recorded=$(pool_json | jq '.members | length')
[ "$recorded" -ge 1 ] && [ "$recorded" -le 2 ] || { cat "$T/create.log"; fail "create not killed at its second member"; }
log "killed with $recorded members recorded; resuming"
pool scale "$POOL" --size 3 2> "$T/resume.log" || { cat "$T/resume.log"; fail "resuming create"; }
[ "$(fake_instances | jq length)" -eq 3 ] || fail "fake: resumed create left other than 3 instances: $(fake_instances)"
[ "$(ctl member list -w json | jq '[.members[] | select(.isLearner != true)] | length')" -eq 3 ] || fail "3 voters after create"
[ "$(fake_instances | jq "[.[] | select(.template.id == \"$T1\" and .state == \"running\")] | length")" -eq 3 ] ||
        fail "fake: not 3 running instances on etcd-1: $(fake_instances)"
# Each agent found its pool through the fake's API (own instance -> pool -> leases).
pool_id=$(fake_pools | jq -r '.[0].id')
[ "$(grep -l "stage discover: ok .*: pool $pool_id, " "$T"/members/*/agent.log | wc -l)" -eq 3 ] ||
        fail "not every agent discovered pool $pool_id"

pool status "$POOL" --json > "$T/status.json" || fail "status"
[ "$(jq '[.members[] | select(.etcd.healthy and .machine == "running" and .template == "etcd-1")] | length' "$T/status.json")" -eq 3 ] ||
        fail "status: $(cat "$T/status.json")"
jq -e '.members[0].agent.error | test("not available on exoscale")' "$T/status.json" >/dev/null || fail "status: agent report"

log "writing 200 keys"
write_initial 200

log "rolling to etcd-2 with a writer running; the first template update fails"
arm_failure() { curl -sf -X POST "http://127.0.0.1:$EXO_FAKE_PORT/_fake/fail?command=$1&reason=unavailable&message=injected" >/dev/null; }
arm_failure update-instance-pool
start_writer /data/w
pool roll "$POOL" --template etcd-2 2> "$T/roll1.log" && fail "roll went through a failed template update"
grep -q "changing the pool's template (PUT /instance-pool/ID): operation .* failed: unavailable: injected" "$T/roll1.log" ||
        fail "roll error does not name the call: $(tail -n 3 "$T/roll1.log")"
[ "$(pool_json | jq -r '.roll_target')" = etcd-2 ] || fail "roll not checkpointed"
[ "$(pool_json | jq '[.members[] | select(.state == "active" and .template == "etcd-1")] | length')" -eq 3 ] ||
        fail "a failed template update changed the members"

log "resuming the roll; the first eviction fails"
arm_failure evict-instance-pool-members
pool roll "$POOL" --template etcd-2 2> "$T/roll2.log" && fail "roll went through a failed eviction"
grep -q "evicting an instance (PUT /instance-pool/ID:evict): operation .* failed: unavailable: injected" "$T/roll2.log" ||
        fail "roll error does not name the call: $(tail -n 3 "$T/roll2.log")"
[ "$(pool_json | jq '[.members[] | select(.state == "leaving")] | length')" -eq 1 ] || fail "no member left in flight"

log "resuming the roll"
roll_start=$(date +%s%3N)
pool roll "$POOL" --template etcd-2 2> "$T/roll3.log" || { cat "$T/roll3.log"; fail "resumed roll"; }
roll_end=$(date +%s%3N)
stop_writer
log "writes: $(wc -l < "$T/acked") acknowledged, availability $(write_availability)%, longest gap $(longest_outage_ms) ms"
check_writes_during "$roll_start" "$roll_end"

check_final etcd-2
# Each failed run started one replacement; the last finished the second one and did the other two.
[ "$(grep -c replacing "$T/roll1.log")" -eq 1 ] && [ "$(grep -c replacing "$T/roll2.log")" -eq 1 ] &&
        [ "$(grep -c replacing "$T/roll3.log")" -eq 2 ] || fail "expected replacements 1 + 1 + 2: $(grep -h replacing "$T"/roll?.log)"
instances=$(fake_instances)
[ "$(echo "$instances" | jq length)" -eq 3 ] || fail "fake: not 3 instances: $instances"
[ "$(echo "$instances" | jq "[.[] | select(.template.id == \"$T2\")] | length")" -eq 3 ] || fail "fake: not all on etcd-2: $instances"
[ "$(echo "$instances" | jq -r '[.[].id] | sort | join(" ")')" = "$(pool_json | jq -r '[.members[].id] | sort | join(" ")')" ] ||
        fail "fake instances are not the pool's members"
# The template updates re-sent the pool's list fields (§2.5): they are still there.
pools=$(fake_pools)
[ "$(echo "$pools" | jq length)" -eq 1 ] || fail "fake: not one instance pool: $pools"
[ "$(echo "$pools" | jq -r '.[0].template.id')" = "$T2" ] || fail "fake: pool template not etcd-2"
[ "$(echo "$pools" | jq -r '.[0]["security-groups"] | map(.id) | sort | join(" ")')" = "$SG1 $SG2" ] ||
        fail "fake: security groups lost: $pools"
[ "$(echo "$pools" | jq -r '.[0]["private-networks"] | map(.id) | join(" ")')" = "$NET" ] || fail "fake: private network lost: $pools"
[ "$(echo "$instances" | jq "[.[] | select(.[\"private-networks\"][0].id == \"$NET\")] | length")" -eq 3 ] ||
        fail "fake: a new member is not on the private network"

log "scaling to 4 and back to 3"
pool scale "$POOL" --size 4 2> "$T/scale.log" || { cat "$T/scale.log"; fail "scale to 4"; }
[ "$(ctl member list -w json | jq '[.members[] | select(.isLearner != true)] | length')" -eq 4 ] || fail "4 voters"
[ "$(fake_instances | jq "[.[] | select(.template.id == \"$T2\")] | length")" -eq 4 ] || fail "fake: not 4 instances on etcd-2"
pool scale "$POOL" --size 3 2> "$T/scale.log" || { cat "$T/scale.log"; fail "scale to 3"; }
[ "$(ctl member list -w json | jq '.members | length')" -eq 3 ] || fail "not 3 etcd members after scaling down"
[ "$(fake_instances | jq length)" -eq 3 ] || fail "fake: not 3 instances after scaling down"
[ "$(fake_pools | jq '.[0].size')" -eq 3 ] || fail "fake: pool size not 3"

log "deleting the pool"
pool delete "$POOL" 2> "$T/delete.log" || { cat "$T/delete.log"; fail "delete"; }
[ "$(fake_pools)" = "[]" ] || fail "fake: instance pool left: $(fake_pools)"
[ "$(fake_instances)" = "[]" ] || fail "fake: instances left: $(fake_instances)"
[ ! -e "$POOL_DIR" ] || fail "$POOL_DIR survived pool delete"
log "PASS"
