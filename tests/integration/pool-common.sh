# The part of a pool test that does not depend on where the members run (sourced by
# tests/integration/pool-lib.sh for host members and tests/e2e/pool-vm-lib.sh for QEMU VMs):
# cleanup, the writer that measures availability during a roll, the initial keys and the final
# check. The sourcing lib sets T, POOL, POOL_DIR and BG_PIDS=(), defines log, fail and pool, and
# provides:
#   pool_pids                   the PIDs of every process the pool ran (group leaders), before
#                               the pool is deleted
#   pool_pid_ours PID           whether PID, alive after the delete, is still one of those
#   POOL_LOGS, POOL_LOG_LINES   the logs (globs) to show on failure, and how many lines of each
#   pool_put KEY VALUE          one etcd put; fails unless acknowledged
#   WRITER_MAX, WRITER_PAUSE    the writer's puts at most, and seconds between them
#   pool_put_config             for write_initial: the curl config lines (url, TLS, ...) of one
#                               put to etcd's JSON gateway, without its data
#   pool_member_list            etcd's member list as JSON ({"members": [{"peerURLs", "isLearner"}]})
#   pool_data_keys              every key under /data/, one a line
#   check_final_more TEMPLATE   the checks of check_final that only its provider can make

# pool_cleanup (install it with trap): stop background jobs, show the logs after a failure, delete
# the pool, then fail if a process the pool ran or its directory survived the delete.
pool_cleanup() {
        local rc=$? pid pids f
        set +e
        for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
        pids=$(pool_pids)
        if [ -d "$POOL_DIR" ]; then
                if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
                        # shellcheck disable=SC2086 # POOL_LOGS holds globs
                        for f in $POOL_LOGS; do
                                [ -f "$f" ] && { echo "==== $f"; tail -n "$POOL_LOG_LINES" "$f"; }
                        done
                fi
                pool delete "$POOL" || rc=1
        fi
        for pid in $pids; do
                if pool_pid_ours "$pid"; then
                        log "FAIL: process $pid survived pool delete"
                        kill -KILL -- "-$pid" 2>/dev/null
                        rc=1
                fi
        done
        [ ! -e "$POOL_DIR" ] || { log "FAIL: $POOL_DIR survived pool delete"; rc=1; }
        rm -rf "$T"
        exit $rc
}

# Whether pid runs (a zombie waiting for init to reap it does not count).
alive() {
        local state
        state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ -n "$state" ] && [ "$state" != Z ]
}

# writer PREFIX: put PREFIX/1, PREFIX/2, ... (at most WRITER_MAX) until $T/stop-writer exists.
# Each acknowledged key goes to $T/acked; every attempt to $T/attempts as "ms ok|fail".
writer() {
        local prefix=$1 i=0 t
        while [ ! -e "$T/stop-writer" ] && [ $i -lt "$WRITER_MAX" ]; do
                i=$((i + 1))
                t=$(date +%s%3N)
                if pool_put "$prefix/$i" "v$i"; then
                        echo "$prefix/$i" >> "$T/acked"
                        echo "$t ok" >> "$T/attempts"
                else
                        echo "$t fail" >> "$T/attempts"
                fi
                sleep "$WRITER_PAUSE"
        done
}

start_writer() { rm -f "$T/stop-writer"; : > "$T/attempts"; touch "$T/acked"; writer "$1" & BG_PIDS+=($!); }
stop_writer() { touch "$T/stop-writer"; wait "${BG_PIDS[-1]}"; unset 'BG_PIDS[-1]'; }

# check_writes_during START_MS END_MS: the writer had writes acknowledged while the roll ran (in
# each half of that window), so the roll was tested under writes; how many depends on the
# machine's speed, so no count is asked for.
check_writes_during() {
        local mid=$((($1 + $2) / 2)) first second
        first=$(awk -v a="$1" -v b="$mid" '$2 == "ok" && $1 >= a && $1 < b { n++ } END { print n + 0 }' "$T/attempts")
        second=$(awk -v a="$mid" -v b="$2" '$2 == "ok" && $1 >= a && $1 <= b { n++ } END { print n + 0 }' "$T/attempts")
        [ "$first" -gt 0 ] && [ "$second" -gt 0 ] ||
                fail "the writer got no write through in a half of the roll ($first, then $second acknowledged)"
}

# Longest stretch (ms) between two successful writes, and the share of attempts that succeeded.
longest_outage_ms() { awk '$2 == "ok" { if (last && $1 - last > max) max = $1 - last; last = $1 } END { print max + 0 }' "$T/attempts"; }
write_availability() { awk '{ n++; if ($2 == "ok") ok++ } END { printf "%.1f", n ? 100 * ok / n : 0 }' "$T/attempts"; }

b64() { printf %s "$1" | base64 -w0; }

# write_initial N: N keys /data/init/1..N, all recorded in $T/acked-initial. One curl process
# (etcd's JSON gateway, one connection) instead of N puts.
write_initial() {
        local i k config
        config=$(pool_put_config)
        : > "$T/acked-initial"; : > "$T/init.curl"
        for i in $(seq "$1"); do
                k="/data/init/$i"
                [ "$i" -eq 1 ] || echo next >> "$T/init.curl"
                printf '%s\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\ndata = "{\\"key\\":\\"%s\\",\\"value\\":\\"%s\\"}"\n' \
                        "$config" "$(b64 "$k")" "$(b64 "v$i")" >> "$T/init.curl"
                echo "$k" >> "$T/acked-initial"
        done
        [ "$(curl -K "$T/init.curl" | grep -c '^200$')" -eq "$1" ] || fail "initial writes failed"
}

# check_final TEMPLATE: every member active on TEMPLATE, no roll recorded, exactly 3 voting etcd
# members which are exactly the pool's members, every acknowledged key present; then
# check_final_more TEMPLATE.
check_final() {
        local template=$1 members ips missing
        [ "$(pool_json | jq --arg t "$template" '[.members[] | select(.template == $t and .state == "active")] | length')" -eq 3 ] ||
                fail "not all 3 members active on $template: $(pool_json | jq -c .members)"
        [ "$(pool_json | jq '.members | length')" -eq 3 ] || fail "pool does not have 3 members"
        [ "$(pool_json | jq -r '.roll_target // "none"')" = none ] || fail "roll still recorded"
        members=$(pool_member_list) || fail "no member answers member list"
        [ "$(echo "$members" | jq '.members | length')" -eq 3 ] || fail "etcd has not exactly 3 members: $members"
        [ "$(echo "$members" | jq '[.members[] | select(.isLearner == true)] | length')" -eq 0 ] || fail "a learner remains"
        ips=$(echo "$members" | jq -r '.members[].peerURLs[0]' | sed 's|https://||; s|:.*||' | sort)
        [ "$ips" = "$(pool_json | jq -r '.members[].ip' | sort)" ] || fail "etcd members ($ips) are not the pool's members"
        pool_data_keys | grep -v '^$' | sort > "$T/present"
        missing=$(cat "$T/acked" "$T/acked-initial" 2>/dev/null | sort -u | comm -23 - "$T/present")
        [ -z "$missing" ] || fail "acknowledged keys missing: $(head -n 5 <<<"$missing")"
        check_final_more "$template"
}
