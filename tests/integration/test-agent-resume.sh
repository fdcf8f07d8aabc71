#!/usr/bin/env bash
# Crash recovery: agents are stopped right after each stage (BOOTAGENT_ABORT_AFTER, exit 99) and
# run again. The final state must be the same as an uninterrupted run: one cluster of 3 voting
# members, no duplicate member, and no second certificate issued for an agent whose certificate
# on disk is still valid.
PORT_RANGE_START=25000 PORT_BLOCKS=25 source "$(dirname "$0")/agent-lib.sh"
trap agent_cleanup EXIT

issued() { grep -c "issued certificate .*instance $(instance_id "$1"))" "$T/serve.log" || true; }

start_serve 1 2 3
for n in 1 2 3; do write_agent_config "$n"; done

# Agent 1 wins the seed election and stops. Agent 2 finds no voting member to join through:
# it gives up at its deadline with one clear reason, adds nothing and writes no etcd settings.
rc=0; BOOTAGENT_ABORT_AFTER=seed run_agent 1 || rc=$?
[ "$rc" -eq 99 ] || fail "agent 1 abort after seed: exit $rc"
sed -i '/^\[etcd\]/,/^\[/ s/^deadline_ms = .*/deadline_ms = 2000/' "$T/agent-2/etc/bootagent/agent.conf"
rc=0; run_agent 2 || rc=$?
[ "$rc" -eq 1 ] || fail "agent 2 without a cluster: exit $rc, expected 1"
grep -q "stage member failed: deadline of 2000 ms exceeded after [0-9]* requests\?: no healthy voting etcd member" "$T/agent-2/agent.log" || fail "agent 2: no clear reason"
[ ! -e "$T/agent-2/etc/default/etcd-bootagent" ] || fail "agent 2 wrote etcd settings"
sed -i '/^\[etcd\]/,/^\[/ s/^deadline_ms = .*/deadline_ms = 60000/' "$T/agent-2/etc/bootagent/agent.conf"

# Agent 1 (bootstraps alone first): stopped after every stage in turn, then finishes.
for stage in identity login secrets pki discover seed member units; do
        rc=0
        BOOTAGENT_ABORT_AFTER=$stage run_agent 1 || rc=$?
        [ "$rc" -eq 99 ] || fail "agent 1 with BOOTAGENT_ABORT_AFTER=$stage exited $rc, expected 99"
done
run_agent 1 || fail "agent 1 final run failed"
[ "$(issued 1)" -eq 1 ] || fail "agent 1: $(issued 1) certificates issued, expected 1"

# Agents 2 and 3 join; agent 2 is stopped right after adding itself as a learner (before etcd
# starts), agent 3 right after starting etcd (before promotion).
rc=0; BOOTAGENT_ABORT_AFTER=member run_agent 2 || rc=$?
[ "$rc" -eq 99 ] || fail "agent 2 abort after member: exit $rc"
[ "$(ctl 1 member list | grep -c "$(instance_ip 2):")" -eq 1 ] || fail "agent 2 not added as a learner"
rc=0; BOOTAGENT_ABORT_AFTER=member run_agent 2 || rc=$?
[ "$rc" -eq 99 ] || fail "agent 2 second abort: exit $rc"
[ "$(ctl 1 member list | grep -c "$(instance_ip 2):")" -eq 1 ] || fail "agent 2 added twice"
run_agent 2 || fail "agent 2 final run failed"

rc=0; BOOTAGENT_ABORT_AFTER=units run_agent 3 || rc=$?
[ "$rc" -eq 99 ] || fail "agent 3 abort after units: exit $rc"
# The etcd that run started may not have written its data dir yet when the next run looks (seen
# on a loaded machine): that run then empties the dir for the join, and must stop this etcd
# first, or it dies on its files vanishing. Made certain here: the etcd is held (SIGSTOP) with
# no data written.
pid_file=$T/agent-3/var/lib/bootagent/etcd.service.pid
old_etcd=$(cat "$pid_file") && kill -0 "$old_etcd" || fail "agent 3's etcd is not running after its units stage"
kill -STOP "$old_etcd"
rm -rf "$T/agent-3/var/lib/etcd/member"
run_agent 3 || fail "agent 3 final run failed"
state=$(awk '{ print $3 }' "/proc/$old_etcd/stat" 2>/dev/null) && [ "$state" != Z ] &&
        fail "the etcd of agent 3's earlier run still runs on the emptied data dir"
[ "$(cat "$pid_file")" != "$old_etcd" ] || fail "agent 3 kept the earlier run's etcd"

members=$(member_lines 1)
log "members:"$'\n'"$members"
[ "$(echo "$members" | wc -l)" -eq 3 ] || fail "expected 3 members"
grep -q true <<<"$members" && fail "a member is still a learner"
for n in 1 2 3; do
        [ "$(issued "$n")" -eq 1 ] || fail "agent $n: $(issued "$n") certificates issued, expected 1"
done
ctl 1 endpoint health --endpoints "$(endpoint 1),$(endpoint 2),$(endpoint 3)" >/dev/null || fail "unhealthy"
status=$("$BOOTAGENT" status --root "$T/agent-1") || fail "status failed"
echo "$status" >&2
grep -q "outcome: done" <<< "$status" || fail "status outcome"
[ "$(grep -c " pki .*issued" <<< "$status")" -eq 1 ] || fail "status: expected one pki issue"

# One agent process at a time: while another holds the journal, renew refuses and says why.
journal=$(find "$T/agent-1" -name journal -path '*bootagent*' -print -quit)
[ -f "$journal" ] || fail "no journal under $T/agent-1"
rc=0; flock "$journal" "$BOOTAGENT" renew --root "$T/agent-1" > "$T/agent-1/renew.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "renew with the journal locked: exit $rc, expected 1"
grep -q "Another bootagent process" "$T/agent-1/renew.log" || fail "renew with the journal locked: no clear reason"

# A damaged journal tail (here a whole frame that is not an entry) is reported by status (exit 3,
# the outcome unknown), kept aside by the next run, and the agent still finishes without issuing
# a second certificate.
printf '\0\0\0\001\001garbage' >> "$journal"
rc=0; status=$("$BOOTAGENT" status --root "$T/agent-1") || rc=$?
[ "$rc" -eq 3 ] || fail "status with a damaged tail: exit $rc, expected 3"
grep -q "outcome: unknown, journal damaged" <<< "$status" || fail "status: outcome with a damaged tail"
grep -q "journal damaged: 12 bytes after the last whole entry .* are not a journal entry" <<< "$status" ||
        fail "status: damage not reported"
run_agent 1 || fail "agent 1 run after damage failed"
damaged=("$journal".damaged-*)
[ -f "${damaged[0]}" ] || fail "damaged tail not kept aside"
cmp <(tail -c 12 "${damaged[0]}") <(printf '\0\0\0\001\001garbage') || fail "kept bytes differ"
status=$("$BOOTAGENT" status --root "$T/agent-1") || fail "status after damage failed"
grep -q "outcome: done" <<< "$status" || fail "status outcome after damage"
grep -q "journal .*FAILED.*damaged bytes" <<< "$status" || fail "status: the journal entry about the damage is missing"
[ "$(issued 1)" -eq 1 ] || fail "agent 1 after damage: $(issued 1) certificates issued, expected 1"

# The issue's case: the journal of a finished first boot cut short by 5 bytes ("done" loses its
# end). Not "incomplete" with exit 0: status says the journal is damaged, and the next run keeps
# the cut frame aside and runs the stages after the last whole entry again: the same member, no
# second certificate, "done".
cp "$journal" "$T/journal.before-cut"
truncate -s -5 "$journal"
rc=0; status=$("$BOOTAGENT" status --root "$T/agent-1") || rc=$?
[ "$rc" -eq 3 ] || fail "status of a journal cut short: exit $rc, expected 3"
grep -q "outcome: unknown, journal damaged" <<< "$status" || fail "status: outcome of a journal cut short"
grep -q "outcome: incomplete" <<< "$status" && fail "status: a journal cut short reads as incomplete"
grep -q "journal damaged: [0-9]* bytes after the last whole entry .* are a frame cut short" <<< "$status" ||
        fail "status: a journal cut short is not reported"
run_agent 1 || fail "agent 1 run after the journal was cut short failed"
last_aside=$(ls -t "$journal".damaged-* | head -1)
cut_len=$(stat -c %s "$last_aside")
cmp <(head -c "$(( $(stat -c %s "$T/journal.before-cut") - 5 ))" "$T/journal.before-cut" | tail -c "$cut_len") \
        "$last_aside" || fail "the frame cut short was not kept byte for byte"
status=$("$BOOTAGENT" status --root "$T/agent-1") || fail "status after the cut failed"
grep -q "outcome: done" <<< "$status" || fail "status outcome after the cut"
grep -q "journal .*FAILED.*damaged bytes .*(a frame cut short) kept in $last_aside" <<< "$status" ||
        fail "status: the journal entry about the cut is missing"
[ "$(issued 1)" -eq 1 ] || fail "agent 1 after the cut: $(issued 1) certificates issued, expected 1"
[ "$(ctl 1 member list | grep -c "$(instance_ip 1):")" -eq 1 ] || fail "agent 1 after the cut: not exactly one member"

# 100 random bytes appended: reported, kept aside byte for byte, said in the journal.
head -c 100 /dev/urandom > "$T/noise"
cat "$T/noise" >> "$journal"
rc=0; status=$("$BOOTAGENT" status --root "$T/agent-1") || rc=$?
[ "$rc" -eq 3 ] || fail "status with 100 random bytes appended: exit $rc, expected 3"
grep -q "journal damaged: 100 bytes after the last whole entry" <<< "$status" || fail "status: random bytes not reported"
run_agent 1 || fail "agent 1 run after random bytes failed"
last_aside=$(ls -t "$journal".damaged-* | head -1)
cmp "$last_aside" "$T/noise" || fail "the random bytes were not kept byte for byte"
status=$("$BOOTAGENT" status --root "$T/agent-1") || fail "status after random bytes failed"
grep -q "outcome: done" <<< "$status" || fail "status outcome after random bytes"
[ "$(issued 1)" -eq 1 ] || fail "agent 1 after random bytes: $(issued 1) certificates issued, expected 1"

# No second bootstrap: the seed's etcd data dir is lost while no member answers (every etcd
# stopped). The seed record says the cluster was bootstrapped, so the seed waits to join and
# fails at its deadline instead of starting a new cluster.
for n in 1 2 3; do kill -TERM -- "-$(etcd_pid "$n")"; done
for n in 1 2 3; do
        for _ in $(seq 100); do running "$(etcd_pid "$n")" || break; sleep 0.1; done
done
rm -rf "$T/agent-1/var/lib/etcd"
cp "$T/agent-1/etc/default/etcd-bootagent" "$T/etcd-env.before"
sed -i '/^\[etcd\]/,/^\[/ s/^deadline_ms = .*/deadline_ms = 2000/' "$T/agent-1/etc/bootagent/agent.conf"
rc=0; run_agent 1 || rc=$?
[ "$rc" -eq 1 ] || fail "seed without a cluster to join: exit $rc, expected 1"
grep -q "seed .* (self), bootstrapped" "$T/agent-1/agent.log" || fail "the seed record does not say bootstrapped"
grep -q "joining it, not bootstrapping another" "$T/agent-1/agent.log" || fail "no word that it will not bootstrap"
grep -q "stage member failed: deadline of 2000 ms exceeded after [0-9]* requests\?: no healthy voting etcd member" "$T/agent-1/agent.log" || fail "no clear reason"
cmp -s "$T/agent-1/etc/default/etcd-bootagent" "$T/etcd-env.before" || fail "the etcd settings were rewritten"
[ ! -e "$T/agent-1/var/lib/etcd/member" ] || fail "a new etcd data dir was made"

# Metadata down: a bounded, clear failure that writes nothing.
mkdir -p "$T/agent-9/etc/bootagent"
sed -e "s|$(metadata_socket 1)|$T/state/sockets/no-such.sock|" -e 's/deadline_ms = 5000/deadline_ms = 1000/' \
        "$T/agent-1/etc/bootagent/agent.conf" > "$T/agent-9/etc/bootagent/agent.conf"
start=$(date +%s)
rc=0; "$BOOTAGENT" firstboot --root "$T/agent-9" > "$T/agent-9/agent.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "metadata down: exit $rc, expected 1"
[ $(( $(date +%s) - start )) -le 10 ] || fail "metadata down: not bounded"
grep -q "stage identity failed" "$T/agent-9/agent.log" || fail "metadata down: no clear reason"
[ ! -e "$T/agent-9/etc/etcd" ] || fail "metadata down: files written"
log "PASS"
