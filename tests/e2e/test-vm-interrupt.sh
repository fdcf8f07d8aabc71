# Kill imgbuild (SIGTERM, then SIGINT) while its VM boots: imgbuild must stop its QEMU (which runs
# in its own process group, out of reach of the terminal) and remove the VM's directory. Then
# SIGKILL, which imgbuild cannot handle: its QEMU must still die with it.
set -euo pipefail
. "$(dirname "$0")/lib-vm.sh"

ensure_base

pid= qpid= vmdir=
cleanup() {
    [ -n "$qpid" ] && kill -KILL "$qpid" 2>/dev/null
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ -n "$vmdir" ] && rm -rf "$vmdir"
    return 0
}
trap cleanup EXIT
# Whether PID runs (a zombie does not: PID 1 here need not reap an orphan).
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }

start_vm() {
    "$IMGBUILD" vm-exec --cache-dir "$CACHE_DIR" --bootagent "$GUEST_BOOTAGENT" "$IMAGE" -- sleep 600 &
    pid=$!
    # Wait for its QEMU to appear.
    local end=$((SECONDS + 120)) # far above what a loaded machine needs to start QEMU
    while [ "$SECONDS" -lt "$end" ]; do
        qpid=$(ps -o pid= --ppid "$pid" | tr -d ' ' | head -n1 || true)
        [ -n "$qpid" ] && [ "$(cat /proc/"$qpid"/comm 2>/dev/null)" = qemu-system-x86 ] && break
        qpid=
        sleep 0.1
    done
    [ -n "$qpid" ] || { echo "QEMU did not start" >&2; exit 1; }
    vmdir=$(tr '\0' '\n' < /proc/"$qpid"/cmdline | sed -n 's|^unix:\(.*\)/qmp.sock,.*|\1|p')
    [ -d "$vmdir" ] || { echo "VM directory not found" >&2; exit 1; }
    sleep 5 # mid-boot
}

for sig in TERM INT; do
    start_vm
    kill -"$sig" "$pid"
    set +e
    wait "$pid"
    rc=$?
    set -e
    pid=
    want=$((128 + $(kill -l "$sig")))
    [ "$rc" -eq "$want" ] || { echo "SIG$sig: imgbuild exited $rc, expected $want" >&2; exit 1; }
    if running "$qpid"; then
        echo "SIG$sig: QEMU $qpid still running" >&2
        exit 1
    fi
    qpid=
    [ ! -e "$vmdir" ] || { echo "SIG$sig: $vmdir left behind" >&2; exit 1; }
    echo "SIG$sig: QEMU stopped, $vmdir removed"
    vmdir=
done

start_vm
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
pid=
for _ in $(seq 1 50); do running "$qpid" || break; sleep 0.1; done
if running "$qpid"; then
    echo "SIGKILL: QEMU $qpid outlived imgbuild" >&2
    exit 1
fi
qpid=
echo "SIGKILL: QEMU died with imgbuild (its directory $vmdir is left, removed here)"
echo "ok"
