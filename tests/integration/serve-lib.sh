# shellcheck shell=bash
# Sourced by integration tests that need the local cloud services: start `imgbuild serve` for a
# state dir in the background, wait until it says "serve: ready", stop it by PID.
#
#   source "$IMGBUILD_SOURCE_DIR/tests/integration/serve-lib.sh"
#   trap serve_stop EXIT            # or call serve_stop from your own EXIT trap
#   ports=($(serve_pick_ports 3))   # free loopback ports for cloud.json
#   (write "$dir/cloud.json")
#   serve_start "$dir" || exit 1    # sets SERVE_PID; output goes to $dir/serve.log
#
# Needs $IMGBUILD (the imgbuild binary). serve_stop is idempotent and safe in traps; it only
# signals the PID serve_start started.

SERVE_PID=
SERVE_READY_TIMEOUT=${SERVE_READY_TIMEOUT:-15}

# serve_pick_ports N [BASE SPAN]: print N distinct TCP ports on 127.0.0.1 in BASE..BASE+SPAN-1
# (default test-serve's 30000..32699; each test has its range in tests/integration/README.md)
# that nothing is listening on right now.
serve_pick_ports() {
    local n=$1 base=${2:-30000} span=${3:-2700} found=() p
    while [ "${#found[@]}" -lt "$n" ]; do
        p=$((base + RANDOM % span))
        case " ${found[*]} " in *" $p "*) continue ;; esac
        # A refused connection means the port is free.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            found+=("$p")
        fi
    done
    echo "${found[@]}"
}

# serve_start DIR: start `$IMGBUILD serve --state-dir DIR` and wait for its ready line.
# Returns 0 (SERVE_PID set) or 1 (the log is printed to stderr and nothing is left running).
serve_start() {
    local dir=$1 log="$1/serve.log" waited=0
    : >"$log"
    "$IMGBUILD" serve --state-dir "$dir" >"$log" 2>&1 &
    SERVE_PID=$!
    while ! grep -q '^serve: ready$' "$log"; do
        if ! kill -0 "$SERVE_PID" 2>/dev/null; then
            wait "$SERVE_PID" 2>/dev/null
            echo "serve-lib: imgbuild serve exited before it was ready (status $?):" >&2
            cat "$log" >&2
            SERVE_PID=
            return 1
        fi
        if [ "$waited" -ge $((SERVE_READY_TIMEOUT * 10)) ]; then
            echo "serve-lib: imgbuild serve not ready after ${SERVE_READY_TIMEOUT}s:" >&2
            cat "$log" >&2
            serve_stop
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    return 0
}

# serve_stop: SIGTERM the server started by serve_start, SIGKILL after 5 s, and reap it.
# Prints nothing and returns 0 when there is nothing to stop. Sets SERVE_STATUS to its exit status.
serve_stop() {
    local pid=$SERVE_PID i
    SERVE_PID=
    SERVE_STATUS=
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null
    SERVE_STATUS=$?
    return 0
}
