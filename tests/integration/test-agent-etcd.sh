#!/usr/bin/env bash
# Three bootagents form one etcd cluster through the local cloud (imgbuild serve), reaching their
# metadata and Vault through UNIX sockets another user cannot open; then member 3
# dies, instance 4 replaces it in the pool, and agent 4 removes the stale member, joins as a
# learner and is promoted, with the data intact. Then renew (fresh: nothing; stale: re-issued)
# and leave (member 2 removes itself cleanly).
source "$(dirname "$0")/agent-lib.sh"
trap agent_cleanup EXIT

start_serve 1 2 3
for n in 1 2; do write_agent_config "$n"; done
# Agent 3 keeps its key local: it sends a CSR to pki/sign instead of calling pki/issue.
PKI_EXTRA="local_key = yes" write_agent_config 3

log "starting three agents"
pids=()
# Under the units' UMask=0077, as in a VM: the directories the agent creates must still let
# etcd (the files' owner there) in.
for n in 1 2 3; do (umask 077; run_agent "$n") & pids+=($!); done
for i in 0 1 2; do wait "${pids[$i]}" || fail "agent $((i + 1)) failed"; done

members=$(member_lines 1)
log "members:"$'\n'"$members"
[ "$(echo "$members" | wc -l)" -eq 3 ] || fail "expected 3 members"
grep -q true <<<"$members" && fail "a member is still a learner"
ctl 1 endpoint health --endpoints "$(endpoint 1),$(endpoint 2),$(endpoint 3)" || fail "endpoints unhealthy"
# One cluster: every member reports the same cluster id.
ids=$(for n in 1 2 3; do ctl "$n" endpoint status -w json | grep -o '"cluster_id":[0-9]*'; done | sort -u | wc -l)
[ "$ids" -eq 1 ] || fail "members report different cluster ids"

# Secrets and certificates landed with the right modes.
[ "$(cat "$T/agent-1/etc/etcd/shared-token")" = shared-etcd-token ] || fail "secret file content"
[ "$(stat -c %a "$T/agent-1/etc/etcd/shared-token")" = 640 ] || fail "secret file mode"
[ "$(stat -c %a "$T/agent-1/etc/etcd/pki/etcd.key")" = 600 ] || fail "key mode"
[ "$(stat -c %a "$T/agent-1/etc/etcd/pki")" = 755 ] || fail "pki directory mode under umask 077"
grep -q "ETCD_INITIAL_CLUSTER_STATE=" "$T/agent-2/etc/default/etcd-bootagent" || fail "env file"

grep -q "signed certificate .*instance $(instance_id 3))" "$T/serve.log" || fail "agent 3 did not use pki/sign"
grep -q "issued certificate .*instance $(instance_id 3))" "$T/serve.log" && fail "agent 3 used pki/issue"

# The agents reached metadata and Vault through UNIX sockets only this user can open (a TCP port
# answers every local user): another user is refused, with the test directory opened up so that
# what stops it is the sockets' own directory (0700) and files (0600).
[ "$(stat -c %a "$T/state/sockets")" = 700 ] || fail "sockets directory mode"
[ "$(stat -c %a "$(metadata_socket 1)")" = 600 ] && [ "$(stat -c %a "$(vault_socket 1)")" = 600 ] || fail "socket modes"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
        chmod 0755 "$T" "$T/state"
        for sock in "$(metadata_socket 1)" "$(vault_socket 1)"; do
                out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
                        curl -sSv --unix-socket "$sock" http://x/latest/meta-data/instance-id 2>&1) &&
                        fail "another user got an answer through $sock"
                echo "$out" | grep -q "Permission denied" || fail "$sock: not refused for permission: $out"
        done
        chmod 0700 "$T"
else
        log "not root or no setpriv: the other-user check is skipped"
fi

for k in a b c; do ctl 1 put "/test/$k" "value-$k" >/dev/null; done

# A re-run changes nothing: no new certificate, no member add.
cert_before=$(sha256sum < "$T/agent-2/etc/etcd/pki/etcd.crt")
run_agent 2 || fail "re-run of agent 2 failed"
[ "$(sha256sum < "$T/agent-2/etc/etcd/pki/etcd.crt")" = "$cert_before" ] || fail "re-run re-issued the certificate"
[ "$(member_lines 1 | wc -l)" -eq 3 ] || fail "re-run changed the member count"
out=$("$BOOTAGENT" status --root "$T/agent-2") && grep -q "outcome: done" <<<"$out" || fail "status after re-run"

log "killing member 3, replacing it with instance 4"
kill -KILL -- "-$(etcd_pid 3)"
write_cloud_json 1 2 4
wait_metadata 4
write_agent_config 4
run_agent 4 || fail "agent 4 failed"

members=$(member_lines 1)
log "members after replacement:"$'\n'"$members"
[ "$(echo "$members" | wc -l)" -eq 3 ] || fail "expected exactly 3 members after replacement"
grep -q "$(instance_ip 3):" <<<"$members" && fail "stale member 3 still present"
grep -q "$(instance_ip 4):" <<<"$members" || fail "member 4 missing"
grep -q true <<<"$members" && fail "member 4 still a learner"
[ "$(ctl 4 get /test/b --print-value-only)" = value-b ] || fail "data lost"
ctl 1 endpoint health --endpoints "$(endpoint 1),$(endpoint 2),$(endpoint 4)" || fail "endpoints unhealthy after replacement"

out=$("$BOOTAGENT" status --root "$T/agent-4" --json) && grep -q '"outcome":"done"' <<<"$out" || fail "status --json"

# renew: nothing to do while the certificate is fresh; re-issued once past renew_fraction.
issued() { grep -c "issued certificate .*instance $(instance_id "$1"))" "$T/serve.log" || true; }
cert_before=$(sha256sum < "$T/agent-1/etc/etcd/pki/etcd.crt")
"$BOOTAGENT" renew --root "$T/agent-1" >> "$T/agent-1/agent.log" 2>&1 || fail "renew failed"
[ "$(issued 1)" -eq 1 ] || fail "renew re-issued a fresh certificate"
sed -i 's/^renew_fraction = .*/renew_fraction = 0.0001/' "$T/agent-1/etc/bootagent/agent.conf"
sleep 1
"$BOOTAGENT" renew --root "$T/agent-1" >> "$T/agent-1/agent.log" 2>&1 || fail "renew failed"
[ "$(issued 1)" -eq 2 ] || fail "renew did not re-issue a stale certificate"
[ "$(sha256sum < "$T/agent-1/etc/etcd/pki/etcd.crt")" != "$cert_before" ] || fail "certificate file unchanged"
ctl 1 endpoint health >/dev/null || fail "member 1 unhealthy with the renewed certificate"

# leave: member 2 removes itself, its etcd stops, its data is wiped.
etcd2=$(etcd_pid 2)
"$BOOTAGENT" leave --root "$T/agent-2" >> "$T/agent-2/agent.log" 2>&1 || fail "leave failed"
members=$(member_lines 1)
[ "$(echo "$members" | wc -l)" -eq 2 ] || fail "expected 2 members after leave"
grep -q "$(instance_ip 2):" <<<"$members" && fail "member 2 still present after leave"
running "$etcd2" && fail "etcd 2 still running after leave"
[ ! -e "$T/agent-2/var/lib/etcd" ] || fail "data dir of member 2 not wiped"
[ "$(ctl 4 get /test/c --print-value-only)" = value-c ] || fail "data lost after leave"
log "PASS"
