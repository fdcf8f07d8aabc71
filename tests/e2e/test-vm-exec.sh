# Boot the base image and run a command through the communicator: output comes back, the exit
# status is passed through, the VM powers off cleanly and nothing is left running.
set -euo pipefail
. "$(dirname "$0")/lib-vm.sh"

ensure_base

out=$(mktemp)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -f "$out"
}
trap cleanup EXIT

set +e
"$IMGBUILD" vm-exec --cache-dir "$CACHE_DIR" --bootagent "$GUEST_BOOTAGENT" --timeout 600 "$IMAGE" -- \
    sh -c 'uname -a; echo "agent: $(readlink -f /proc/$PPID/exe)"; exit 3' >"$out" &
pid=$!
wait "$pid"
rc=$?
pid=
set -e

cat "$out"
[ "$rc" -eq 3 ] || { echo "expected exit status 3, got $rc" >&2; exit 1; }
grep -q '^Linux imgbuild .*x86_64 GNU/Linux$' "$out" || { echo "no uname -a output" >&2; exit 1; }
grep -q '^agent: /usr/local/bin/bootagent$' "$out" || { echo "command not run by the baked-in bootagent" >&2; exit 1; }
echo "ok"
