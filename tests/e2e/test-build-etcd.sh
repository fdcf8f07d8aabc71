# The etcd template end to end: `imgbuild build` of recipes/etcd.recipe (plus a step using a
# secret variable and a step whose length a variable sets), checks on the exported disk, a boot of
# the template, an unchanged rebuild that boots nothing, a build killed mid-step that the next
# build resumes, and a broken agent config that fails the build with FILE:LINE.
# Cache: IMGBUILD_E2E_CACHE (kept, reuses base and layers) or a fresh one under /tmp.
set -euo pipefail
. "$(dirname "$0")/lib-vm.sh"
command -v debugfs >/dev/null || skip "debugfs not installed"

T=$(mktemp -d /tmp/imgbuild-e2e-etcd.XXXXXX)
CACHE=${IMGBUILD_E2E_CACHE:-$T/cache}
build_pid=
cleanup() {
    if [ -n "$build_pid" ]; then kill -TERM -- "-$build_pid" 2>/dev/null || true; wait "$build_pid" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# The recipe under test: etcd.recipe with its files, plus a secret used by a run step and a last
# step that sleeps for ${nap} seconds (the interrupt test makes it long).
mkdir -p "$T/recipe"
cp -r "$IMGBUILD_SOURCE_DIR/recipes/files" "$IMGBUILD_SOURCE_DIR/recipes/common.inc" "$T/recipe/"
{
    echo "secret var token"
    echo "var nap = \"0\""
    sed 's/^template etcd 1$/template etcd-e2e 1/' "$IMGBUILD_SOURCE_DIR/recipes/etcd.recipe"
    echo 'run echo ${token} > /dev/null'
    echo 'run sleep ${nap}'
} > "$T/recipe/etcd-e2e.recipe"
RECIPE=$T/recipe/etcd-e2e.recipe
SECRET="e2e-secret-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

build() { # build LOG [imgbuild build options]
    local log=$1; shift
    (cd "$IMGBUILD_SOURCE_DIR" && IMGBUILD_VAR_token=$SECRET "$IMGBUILD" build --cache-dir "$CACHE" \
        --bootagent "$GUEST_BOOTAGENT" "$@" "$RECIPE") > "$log" 2>&1 || { tail -40 "$log" >&2; return 1; }
}

# 1. Cold (or partly cached) build.
start=$(date +%s)
build "$T/build1.log" || fail "first build"
echo "first build: $(( $(date +%s) - start )) s"
DIR=$(tail -1 "$T/build1.log")
for f in disk.qcow2 vmlinuz initrd.img manifest.json; do [ -s "$DIR/$f" ] || fail "template lacks $f"; done
[ "$DIR" = "$CACHE/templates/etcd-e2e/1" ] || fail "template in $DIR"
"$IMGBUILD" templates --cache-dir "$CACHE" | grep -q "^etcd-e2e@1 .*$(sha256sum "$DIR/disk.qcow2" | cut -c1-64)\$" \
    || fail "imgbuild templates does not list etcd-e2e@1 with its sha256"

# 2. The exported disk: no machine identity, the agent in place, no etcd data, no secret.
qemu-img convert -O raw "$DIR/disk.qcow2" "$T/disk.raw"
root_fs() { debugfs -R "$1" "$T/disk.raw" 2>/dev/null; }
root_fs 'stat /etc/machine-id' | grep -q '^User: .* Size: 0$' || fail "/etc/machine-id not empty"
root_fs 'stat /usr/local/bin/bootagent' | grep -q 'Type: regular' || fail "no /usr/local/bin/bootagent"
root_fs 'stat /etc/bootagent/agent.conf' | grep -q 'Mode:  0600' || fail "agent.conf is not 0600"
root_fs 'stat /etc/systemd/system/etcd.service.d/bootagent.conf' | grep -q 'Type: regular' || fail "no etcd drop-in"
root_fs 'stat /usr/sbin/policy-rc.d' | grep -q 'Type: regular' && fail "policy-rc.d left in the template"
root_fs 'ls /var/lib/etcd' | grep -q member && fail "etcd ran during the build (/var/lib/etcd/member)"
[ "$(grep -c -a -F "$SECRET" "$T/disk.raw" || true)" = 0 ] || fail "the secret is on the exported disk"
grep -q -F "$SECRET" "$T/build1.log" "$DIR/manifest.json" && fail "the secret is in the build log or manifest"
rm -f "$T/disk.raw"

# 3. The template boots and has etcd, the agent and its enabled first-boot unit.
"$IMGBUILD" vm-exec --cache-dir "$CACHE" --template etcd-e2e@1 -- /bin/sh -c \
    'etcd --version && test -x /usr/local/bin/bootagent && systemctl is-enabled bootagent-firstboot.service bootagent-renew.timer' \
    > "$T/boot.log" 2>&1 || { cat "$T/boot.log" >&2; fail "template boot"; }
grep -q '^etcd Version: ' "$T/boot.log" || fail "no etcd --version"
[ "$(grep -c '^enabled$' "$T/boot.log")" = 2 ] || fail "firstboot/renew not enabled"

# 4. Unchanged rebuild: every step cached, no VM, nothing exported.
start=$(date +%s%N)
build "$T/build2.log" --json || fail "rebuild"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "unchanged rebuild: $ms ms"
grep -q 'VM started' "$T/build2.log" && fail "unchanged rebuild booted a VM"
[ "$(grep -c '"event":"step-end"' "$T/build2.log")" -gt 5 ] || fail "no step events"
grep -q '"event":"step-start"\|"cached":false' "$T/build2.log" && fail "a step was not cached"
grep -q '"event":"build-end"' "$T/build2.log" || fail "no build-end event"
[ "$ms" -lt 20000 ] || fail "unchanged rebuild took $ms ms"
(cd "$IMGBUILD_SOURCE_DIR" && IMGBUILD_VAR_token=$SECRET "$IMGBUILD" build --plan --cache-dir "$CACHE" \
    --bootagent "$GUEST_BOOTAGENT" "$RECIPE") > "$T/plan.log" 2>/dev/null || fail "plan"
grep -q '^miss' "$T/plan.log" && fail "plan reports a miss after a build"

# 5. Killed mid-step: no qemu left; the next build resumes after the last finished step.
(cd "$IMGBUILD_SOURCE_DIR" && IMGBUILD_VAR_token=$SECRET exec setsid "$IMGBUILD" build --cache-dir "$CACHE" \
    --bootagent "$GUEST_BOOTAGENT" --var nap=600 "$RECIPE") > "$T/build3.log" 2>&1 &
build_pid=$!
for _ in $(seq 600); do grep -q 'run sleep 600: running' "$T/build3.log" && break; sleep 1; done
grep -q 'run sleep 600: running' "$T/build3.log" || { tail -20 "$T/build3.log" >&2; fail "slow step never started"; }
qemu_pid=$(sed -n 's/.*VM started (pid \([0-9]*\).*/\1/p' "$T/build3.log")
kill -TERM "$build_pid"
rc=0; wait "$build_pid" || rc=$?
build_pid=
[ "$rc" = $((128 + 15)) ] || fail "killed build exited $rc"
sleep 1
kill -0 "$qemu_pid" 2>/dev/null && fail "qemu $qemu_pid outlived the build"
build "$T/build4.log" --json --var nap=1 || fail "build after the kill"
n=$(grep -c ': cached (' "$T/build4.log")
[ "$(grep -c ': running (' "$T/build4.log")" = 2 ] || fail "resumed build ran other steps than the last and hygiene"
[ "$(grep -c '"event":"step-start"' "$T/build4.log")" = 2 ] || fail "no step-start events for the steps that ran"
grep '"event":"step-end"' "$T/build4.log" | grep -q '"cached":false' || fail "no step-end event for a step that ran"
grep -q "\"event\":\"build-end\".*\"path\":\"$CACHE/templates/etcd-e2e/1\"" "$T/build4.log" || fail "no build-end event"
echo "resumed with $n cached steps"

# 6. A broken agent config fails the build at the agent step, naming the line.
cp "$T/recipe/files/etcd-agent.conf" "$T/agent.conf.good"
sed -i '0,/^role = etcd$/s//role = etcd\nbogus = 1/' "$T/recipe/files/etcd-agent.conf"
build "$T/build5.log" && fail "a build with a broken agent config succeeded"
grep -q 'etcd-agent.conf:6: unknown key .bogus. in \[agent\]' "$T/build5.log" || fail "no FILE:LINE for the broken config"
grep -q 'etcd-e2e.recipe:[0-9]*: agent config .* was refused' "$T/build5.log" || fail "the recipe line is not named"

# 7. gc drops what neither the template nor the newest build uses (the killed step's layer, the
# layers of the nap=0 build) and keeps the template's layers: the plan is still all hits.
cp "$T/agent.conf.good" "$T/recipe/files/etcd-agent.conf"
"$IMGBUILD" gc --cache-dir "$CACHE" > "$T/gc.log" || fail "gc"
cat "$T/gc.log"
grep -q '^Freed [1-9][0-9]* layers' "$T/gc.log" || fail "gc freed nothing"
(cd "$IMGBUILD_SOURCE_DIR" && IMGBUILD_VAR_token=$SECRET "$IMGBUILD" build --plan --cache-dir "$CACHE" \
    --bootagent "$GUEST_BOOTAGENT" --var nap=1 "$RECIPE") > "$T/plan2.log" 2>/dev/null || fail "plan after gc"
grep -q '^miss' "$T/plan2.log" && fail "gc removed a layer of the template"
echo "ok"
