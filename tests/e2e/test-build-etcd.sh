# The etcd template end to end: `imgbuild build` of recipes/etcd.recipe (plus a step using a
# secret variable and a step whose length a variable sets), checks on the exported disk and its
# manifest (the installed packages), a boot of the template, an unchanged rebuild that boots
# nothing, a re-export from cached layers on a terminal (live progress lines), a build killed
# mid-step that the next build resumes, and broken agent configs: refused on the host before
# anything boots, or (a user only the guest knows) in the VM with FILE:LINE.
# Cache: IMGBUILD_E2E_CACHE (kept, reuses base and layers) or a fresh one under /tmp.
set -euo pipefail
. "$(dirname "$0")/lib-vm.sh"
command -v debugfs >/dev/null || skip "debugfs not installed"

T=$(mktemp -d /tmp/imgbuild-e2e-etcd.XXXXXX)
CACHE=${IMGBUILD_E2E_CACHE:-$T/cache}
build_pid= imgbuild_pid=
cleanup() {
    # imgbuild under script has its own session: stopped by its pid (it stops its VM).
    if [ -n "$imgbuild_pid" ]; then kill -TERM "$imgbuild_pid" 2>/dev/null || true; fi
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

# The same build on a pseudo-terminal, as a person runs it: live progress lines.
tty_build() { # tty_build LOG [imgbuild build options]
    local log=$1; shift
    IMGBUILD_VAR_token=$SECRET script -qefc "cd $(printf '%q' "$IMGBUILD_SOURCE_DIR") && $(printf '%q ' "$IMGBUILD" \
        build --cache-dir "$CACHE" --bootagent "$GUEST_BOOTAGENT" "$@" "$RECIPE")" /dev/null < /dev/null > "$log" 2>&1
}
# The installed packages of a manifest: the top-level list of {arch, name, version} objects.
installed() { grep -o '"packages":\[{[^]]*\]' "$1"; }
ESC=$'\033'
CR=$'\r'

# 1. Cold (or partly cached) build.
start=$(date +%s)
build "$T/build1.log" || fail "first build"
echo "first build: $(( $(date +%s) - start )) s"
DIR=$(tail -1 "$T/build1.log")
for f in disk.qcow2 vmlinuz initrd.img manifest.json; do [ -s "$DIR/$f" ] || fail "template lacks $f"; done
[ "$DIR" = "$CACHE/templates/etcd-e2e/1" ] || fail "template in $DIR"
out=$("$IMGBUILD" templates --cache-dir "$CACHE") && grep -q "^etcd-e2e@1 .*$(sha256sum "$DIR/disk.qcow2" | cut -c1-64)\$" <<<"$out" \
    || fail "imgbuild templates does not list etcd-e2e@1 with its sha256"

# 2. The exported disk: no machine identity, the agent in place, no etcd data, no secret.
qemu-img convert -O raw "$DIR/disk.qcow2" "$T/disk.raw"
root_fs() { debugfs -R "$1" "$T/disk.raw" 2>/dev/null; }
out=$(root_fs 'stat /etc/machine-id') && grep -q '^User: .* Size: 0$' <<<"$out" || fail "/etc/machine-id not empty"
out=$(root_fs 'stat /usr/local/bin/bootagent') && grep -q 'Type: regular' <<<"$out" || fail "no /usr/local/bin/bootagent"
out=$(root_fs 'stat /etc/bootagent/agent.conf') && grep -q 'Mode:  0600' <<<"$out" || fail "agent.conf is not 0600"
out=$(root_fs 'stat /etc/systemd/system/etcd.service.d/bootagent.conf') && grep -q 'Type: regular' <<<"$out" || fail "no etcd drop-in"
out=$(root_fs 'stat /usr/sbin/policy-rc.d') && grep -q 'Type: regular' <<<"$out" && fail "policy-rc.d left in the template"
out=$(root_fs 'ls /var/lib/etcd') && grep -q member <<<"$out" && fail "etcd ran during the build (/var/lib/etcd/member)"
# The base image's dpkg path filters (images/debian-12/image.conf) held for the recipe's packages
# too: of etcd-server's documentation only its copyright file is a file (dpkg still makes the
# directories and symlinks), and no manual page is.
files_under() { # the regular files under a directory of the disk, one per line ("" when it has none)
    rm -rf "$T/dump"; mkdir "$T/dump"
    debugfs -R "rdump $1 $T/dump" "$T/disk.raw" >/dev/null 2>&1 || true
    (cd "$T/dump" && find . -type f | sort)
}
out=$(files_under /usr/share/doc/etcd-server)
[ "$out" = "./etcd-server/copyright" ] || fail "etcd-server's docs were installed: $(head -5 <<<"$out")"
out=$(files_under /usr/share/man)
[ -z "$out" ] || fail "manual pages were installed: $(head -5 <<<"$out")"
out=$(root_fs 'cat /etc/dpkg/dpkg.cfg.d/99mmdebstrap') && grep -qx 'path-exclude=/usr/share/doc/\*' <<<"$out" ||
    fail "no dpkg path filters in the template: $out"
# Hygiene trimmed the freed blocks before the snapshot (fstrim -v prints what it trimmed).
grep -q '^/: .* trimmed' "$T/build1.log" || fail "no fstrim in hygiene's output"
[ "$(grep -c -a -F "$SECRET" "$T/disk.raw" || true)" = 0 ] || fail "the secret is on the exported disk"
grep -q -F "$SECRET" "$T/build1.log" "$DIR/manifest.json" && fail "the secret is in the build log or manifest"
rm -f "$T/disk.raw"
out=$(installed "$DIR/manifest.json") && grep -q '{"arch":"amd64","name":"etcd-server","version":"[0-9][^"]*"}' <<<"$out" \
    || fail "the manifest does not list etcd-server with its version"
# (dpkg's own progress has \r: only the live line's erase is looked for.)
grep -q "$ESC\\[K" "$T/build1.log" && fail "live progress lines in a piped build's output"

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
grep -q "$ESC\\[K" "$T/build2.log" && fail "live progress lines in a piped --json build"

# 4b. The template removed, an unchanged rebuild on a terminal exports it again from the cached
# layers: no VM, the same installed packages (kept next to the hygiene layer), a line per cached
# step and the export's live line, redrawn in place.
installed "$DIR/manifest.json" > "$T/packages1"
rm -rf "$DIR"
tty_build "$T/build-tty.log" || { tail -40 "$T/build-tty.log" >&2; fail "rebuild on a terminal"; }
cat -v "$T/build-tty.log" | tail -12
grep -q 'VM started' "$T/build-tty.log" && fail "rebuild on a terminal booted a VM"
installed "$DIR/manifest.json" | cmp -s - "$T/packages1" || fail "the re-exported manifest lists other packages"
grep -a -q "\[1/[0-9]*\] packages .* \.\.\. cached$CR\$" "$T/build-tty.log" || fail "no cached step line on the terminal"
grep -a -q "${CR}exporting the template disk \.\.\. [0-9]*s [0-9.]* MiB${ESC}\[K" "$T/build-tty.log" || fail "no live export line"

# 5. Ctrl-C mid-step on a terminal (live progress running): imgbuild stops its VM and exits 130,
# the step's line ends FAILED; the next build resumes after the last finished step.
IMGBUILD_VAR_token=$SECRET setsid script -qefc "cd $(printf '%q' "$IMGBUILD_SOURCE_DIR") && exec $(printf '%q ' \
    "$IMGBUILD" build --cache-dir "$CACHE" --bootagent "$GUEST_BOOTAGENT" --var nap=600 "$RECIPE")" /dev/null \
    < /dev/null > "$T/build3.log" 2>&1 &
build_pid=$!
for _ in $(seq 600); do grep -a -q "${CR}\[[0-9/]*\] run sleep 600 \.\.\. 1s" "$T/build3.log" 2>/dev/null && break; sleep 1; done
grep -a -q "${CR}\[[0-9/]*\] run sleep 600 \.\.\. 1s" "$T/build3.log" || { tail -c 2000 "$T/build3.log" >&2; fail "slow step never started"; }
qemu_pid=$(sed -n 's/.*VM started (pid \([0-9]*\).*/\1/p' "$T/build3.log")
imgbuild_pid=$(pgrep -P "$build_pid")
[ -n "$qemu_pid" ] && [ -n "$imgbuild_pid" ] || fail "no qemu ($qemu_pid) or imgbuild ($imgbuild_pid) pid"
kill -INT "$imgbuild_pid"
rc=0; wait "$build_pid" || rc=$?
build_pid= imgbuild_pid=
cat -v "$T/build3.log" | tail -5
[ "$rc" = $((128 + 2)) ] || fail "interrupted build exited $rc"
sleep 1
kill -0 "$qemu_pid" 2>/dev/null && fail "qemu $qemu_pid outlived the build"
grep -a -q "\[[0-9/]*\] run sleep 600 \.\.\. [0-9.]*s FAILED$CR\$" "$T/build3.log" || fail "the interrupted step's line does not end FAILED"
grep -a -q 'Interrupted in step [0-9]*, VM stopped' "$T/build3.log" || fail "no word of the interruption"
# The resumed build has other content (nap=1) than etcd-e2e@1 (nap=0): it runs what is left,
# then refuses to replace the exported version; once that is deleted it exports from the cache.
rc=0; build "$T/build4.log" --json --var nap=1 || rc=$?
[ "$rc" = 1 ] || fail "a rebuild of etcd-e2e@1 with other content exited $rc, expected 1"
grep -q "Template etcd-e2e@1 already exists in $DIR with other content" "$T/build4.log" || fail "no word of the refusal"
[ -s "$DIR/disk.qcow2" ] || fail "the refused rebuild touched $DIR"
rm -rf "$DIR"
build "$T/build4b.log" --json --var nap=1 || fail "build after deleting the old version"
grep -q ': running (' "$T/build4b.log" && fail "the build after the refusal ran a step again"
grep -q "\"event\":\"build-end\".*\"path\":\"$CACHE/templates/etcd-e2e/1\"" "$T/build4b.log" || fail "no build-end event"
n=$(grep -c ': cached (' "$T/build4.log")
[ "$(grep -c ': running (' "$T/build4.log")" = 2 ] || fail "resumed build ran other steps than the last and hygiene"
[ "$(grep -c '"event":"step-start"' "$T/build4.log")" = 2 ] || fail "no step-start events for the steps that ran"
out=$(grep '"event":"step-end"' "$T/build4.log") && grep -q '"cached":false' <<<"$out" || fail "no step-end event for a step that ran"
echo "resumed with $n cached steps"

# 6. A broken agent config. A wrong key: validate and build find it on the host, naming the line,
# before anything boots. A user only the guest can look up: accepted there, refused by the agent
# step in the VM (this build runs on a terminal: the guest's FILE:LINE comes out whole above the
# live line, whose last state is FAILED).
cp "$T/recipe/files/etcd-agent.conf" "$T/agent.conf.good"
sed -i '0,/^role = etcd$/s//role = etcd\nbogus = 1/' "$T/recipe/files/etcd-agent.conf"
validate() { (cd "$IMGBUILD_SOURCE_DIR" && "$IMGBUILD" validate "$RECIPE"); } # the base is images/NAME there
rc=0; validate > "$T/validate.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || { cat "$T/validate.log" >&2; fail "validate of a broken agent config exited $rc"; }
grep -q 'files/etcd-agent.conf:6: error: unknown key .bogus. in \[agent\]$' "$T/validate.log" || fail "validate: no FILE:LINE"
rc=0
(cd "$IMGBUILD_SOURCE_DIR" && IMGBUILD_VAR_token=$SECRET "$IMGBUILD" build --cache-dir "$CACHE" \
    --bootagent "$GUEST_BOOTAGENT" "$RECIPE") > "$T/build5.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || { tail -20 "$T/build5.log" >&2; fail "build with a broken agent config exited $rc, expected 2"; }
grep -q 'files/etcd-agent.conf:6: error: unknown key .bogus. in \[agent\]$' "$T/build5.log" || fail "build: no FILE:LINE"
grep -q 'etcd-e2e.recipe:[0-9]*: note: in the agent config of this step' "$T/build5.log" || fail "the recipe line is not named"
grep -q 'VM started\|Step ' "$T/build5.log" && fail "a build with a bad agent config got as far as the steps"
cp "$T/agent.conf.good" "$T/recipe/files/etcd-agent.conf"
sed -i '0,/^owner = etcd$/s//owner = no-such-user/' "$T/recipe/files/etcd-agent.conf"
validate > "$T/validate2.log" 2>&1 || { cat "$T/validate2.log" >&2; fail "validate looked up a guest user"; }
tty_build "$T/build6.log" && fail "a build with an unknown user in the agent config succeeded"
cat -v "$T/build6.log" | tail -12
grep -a -q "etcd-agent.conf:21: unknown user or group in 'no-such-user'" "$T/build6.log" || fail "no FILE:LINE from the guest"
grep -a -q 'etcd-e2e.recipe:[0-9]*: agent config .* was refused' "$T/build6.log" || fail "the recipe line is not named"
grep -a -q "${CR}booting the build VM \.\.\. 1s${ESC}\[K" "$T/build6.log" || fail "the boot line is not redrawn"
grep -a -q "\[[0-9]*/[0-9]*\] agent role=etcd config=files/etcd-agent.conf \.\.\. [0-9.]*s FAILED$CR\$" "$T/build6.log" \
    || fail "no FAILED line for the agent step"

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
