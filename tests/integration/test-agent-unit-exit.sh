#!/usr/bin/env bash
# An etcd that the agent starts itself (units = exec) and that exits at once (here a flag etcd
# does not know): the promote stage fails as soon as it sees etcd gone, and `bootagent status`
# names the unit's exit, its status and the end of its output, instead of "Connection refused"
# from probing a closed port until the etcd deadline.
PORT_RANGE_START=8000 PORT_BLOCKS=5 source "$(dirname "$0")/agent-lib.sh"
trap agent_cleanup EXIT

start_serve 1
write_agent_config 1
sed -i 's/^exec_start = etcd /exec_start = etcd --no-such-flag /' "$T/agent-1/etc/bootagent/agent.conf"
grep -q -- "--no-such-flag" "$T/agent-1/etc/bootagent/agent.conf" || fail "config not changed"

start=$(date +%s)
rc=0; run_agent 1 || rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" -eq 1 ] || fail "exit $rc, expected 1"
# [etcd] deadline_ms is 60000: the exit is reported long before it (a generous bound).
[ "$took" -lt 40 ] || fail "took ${took} s: waited for the deadline instead of noticing etcd's exit"

reason="etcd.service exited (status 2) while waiting for promotion: flag provided but not defined: -no-such-flag"
status=$("$BOOTAGENT" status --root "$T/agent-1" 2>&1) && fail "status: exit 0 after a failed stage"
grep -q "outcome: failed" <<< "$status" || fail "status outcome: $status"
grep -qF "FAILED" <<< "$(grep ' promote ' <<< "$status")" || fail "status: promote not failed: $status"
grep -qF "$reason" <<< "$status" || fail "status does not name etcd's exit: $status"
json=$("$BOOTAGENT" status --root "$T/agent-1" --json) && fail "status --json: exit 0 after a failed stage"
grep -qF "$reason" <<< "$json" || fail "status --json does not name etcd's exit: $json"
grep -qF "stage promote failed: $reason" "$T/agent-1/agent.log" || fail "the agent's log does not name etcd's exit"
log "PASS"
