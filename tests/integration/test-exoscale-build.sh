#!/usr/bin/env bash
# `imgbuild build --provider exoscale` against fake-exoscale on loopback, with a real OpenSSH sshd
# standing in for the instance: it accepts the keys the build registered with the fake
# (AuthorizedKeysCommand) and runs every SSH command in a systemd-nspawn container on a throw-away
# Debian tree (ForceCommand), so build steps never run on the host. Checks: a build with run,
# copy and agent steps makes template exotest-1 in two zones, deletes its instance, security
# group, SSH key and snapshot, and records the template ids; the steps' effects are in the tree
# and not on the host. A failed operation and a wrong secret give a clear error and leave
# nothing. A build killed mid-step leaves a journal that `imgbuild gc` cleans up. SIGINT while
# the build waits for a cloud operation stops it within seconds and leaves nothing.
set -uo pipefail

: "${IMGBUILD:?}" "${BOOTAGENT:?}" "${IMGBUILD_SOURCE_DIR:?}" "${IMGBUILD_BINARY_DIR:?}"
FAKE=$IMGBUILD_BINARY_DIR/tests/fake-exoscale
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root (sshd, systemd-nspawn)"; exit 77; }
for tool in /usr/sbin/sshd ssh ssh-keygen systemd-nspawn mmdebstrap curl jq; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
[ -x "$FAKE" ] || { echo "skipped: $FAKE not built"; exit 77; }

# The tree goes here (a few hundred MB, removed at exit).
dir=$(mktemp -d "$IMGBUILD_BINARY_DIR/test-exoscale-build.XXXXXX")
# sshd runs an AuthorizedKeysCommand only if every directory above it is root-owned and writable
# by no one else, which the build directory need not be (a checkout under /tmp is not): /run is.
keys_dir=$(mktemp -d /run/imgbuild-exoscale-build.XXXXXX)
rootfs=$dir/rootfs
store=$dir/store
marker=/etc/imgbuild-exoscale-test
fake_pid= sshd_pid= build_pgid=

# Containers the test's sshd started (nspawn kills what runs inside on SIGTERM).
stop_instances() {
    local pid
    [ -f "$dir/instance.pids" ] || return 0
    for pid in $(cat "$dir/instance.pids"); do kill "$pid" 2>/dev/null; done
    for pid in $(cat "$dir/instance.pids"); do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    rm -f "$dir/instance.pids"
}

cleanup() {
    [ -n "$build_pgid" ] && kill -KILL -- "-$build_pgid" 2>/dev/null
    stop_instances
    [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    rm -rf "$dir" "$keys_dir"
}
trap cleanup EXIT

# wait_until SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds (0) or SECONDS have
# passed (1). Callers pick a bound far above what a loaded machine needs; it only turns a hang
# into a failure with the logs.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}

fail() {
    echo "FAIL: $*" >&2
    for f in build.log gc.log sshd.log fake.log; do
        [ -s "$dir/$f" ] && { echo "--- $f" >&2; tail -n 40 "$dir/$f" >&2; }
    done
    exit 1
}

[ -e "$marker" ] && { echo "skipped: $marker exists on this host"; exit 77; }

# The throw-away tree: Debian minbase with bootagent's libraries and systemd (systemctl enable
# for the agent step), cached as a tarball next to the build (~30 s the first time).
cache=$IMGBUILD_BINARY_DIR/test-cache/exoscale-rootfs.tar
if [ ! -s "$cache" ]; then
    mkdir -p "${cache%/*}"
    mmdebstrap --quiet --variant=minbase \
        --include=systemd,libarchive13,libcbor0.8,libcurl4,libjansson4,libssl3,libsystemd0 \
        bookworm "${cache%.tar}.tmp.tar" http://deb.debian.org/debian || fail "mmdebstrap failed"
    # (mmdebstrap picks the output format from the name: it must end in .tar)
    mv "${cache%.tar}.tmp.tar" "$cache"
fi
mkdir "$rootfs" && tar -xf "$cache" -C "$rootfs" || fail "cannot unpack $cache"
# A sanitizer build's bootagent also needs the sanitizer runtimes, which Debian's do not have.
for lib in $(ldd "$BOOTAGENT" | awk '$3 ~ /^\// { print $3 }'); do
    [ -e "$rootfs$lib" ] || install -D -m 0644 "$lib" "$rootfs$lib" || fail "cannot copy $lib into the tree"
done

# The fake API.
key=EXOtestkey
secret=test-secret-not-real
EXOSCALE_API_KEY=$key EXOSCALE_API_SECRET=$secret "$FAKE" --pending-polls 1 >"$dir/fake.port" 2>"$dir/fake.log" &
fake_pid=$!
wait_until 60 test -s "$dir/fake.port"
fake_port=$(head -n1 "$dir/fake.port")
[ -n "$fake_port" ] || fail "fake-exoscale did not start"
fake=http://127.0.0.1:$fake_port
state() { curl -fsS "$fake/_fake/state"; }

# The "instance": sshd on a loopback port (this test's range, tests/integration/README.md).
while :; do
    ssh_port=$((9000 + RANDOM % 1000))
    (exec 3<>"/dev/tcp/127.0.0.1/$ssh_port") 2>/dev/null || break
done
cat >"$keys_dir/authorized-keys" <<EOF
#!/bin/sh
exec curl -fsS $fake/_fake/ssh-keys
EOF
cat >"$dir/instance" <<EOF
#!/bin/sh
# Whatever the client asked for runs in the container, never on the host. (--keep-unit: no
# system bus here to register a scope on.) The PID is recorded for the test's cleanup: a killed
# build's session may leave a step running in here.
echo \$\$ >>$dir/instance.pids
exec systemd-nspawn --register=no --keep-unit --quiet --private-network -D $rootfs --pipe -- /bin/sh -c "\$SSH_ORIGINAL_COMMAND"
EOF
chmod 0755 "$keys_dir/authorized-keys" "$dir/instance"
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" || fail "ssh-keygen failed"
cat >"$dir/sshd_config" <<EOF
HostKey $dir/host_key
PidFile none
AuthorizedKeysFile none
AuthorizedKeysCommand $keys_dir/authorized-keys
AuthorizedKeysCommandUser root
ForceCommand $dir/instance
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
EOF
mkdir -p /run/sshd # privilege separation directory sshd insists on
/usr/sbin/sshd -D -f "$dir/sshd_config" -p "$ssh_port" -o ListenAddress=127.0.0.1 -E "$dir/sshd.log" &
sshd_pid=$!
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_until 60 port_open "$ssh_port" || fail "sshd does not listen on port $ssh_port"

# The recipe.
mkdir -p "$dir/recipes/files" "$dir/images"
cp -r "$IMGBUILD_SOURCE_DIR/images/debian-12" "$dir/images/"
echo "copied by the exoscale build test" >"$dir/recipes/files/motd"
cat >"$dir/recipes/exotest.recipe" <<EOF
template exotest 1
base debian-12
exoscale zone=ch-gva-2 instance-type=standard.small template="Linux Debian 12 (Bookworm) 64-bit" disk=10
var PAUSE = 0
env GREETING=hello
run echo "\$GREETING from the build" > $marker
copy files/motd /etc/exotest-motd mode=0640
agent role=etcd
run sleep \${PAUSE}
EOF

export EXOSCALE_API_KEY=$key EXOSCALE_API_SECRET=$secret
export EXOSCALE_API_ENDPOINT="$fake/{zone}/v2" IMGBUILD_EXOSCALE_POLL_MS=20
build() {
    "$IMGBUILD" build "$dir/recipes/exotest.recipe" --provider exoscale --cache-dir "$store" \
        --bootagent "$BOOTAGENT" --ssh-port "$ssh_port" --ssh-option ConnectionAttempts=1 \
        --copy-to-zone de-fra-1 --boot-timeout 30 "$@"
}

# Nothing temporary in the fake: instances (any zone), security groups, SSH keys, snapshots.
check_no_leftovers() {
    local s
    s=$(state) || fail "cannot read the fake's state"
    [ "$(jq '[.zones[].instance | length] | add' <<<"$s")" = 0 ] || fail "$1: an instance remains"
    [ "$(jq '[.zones[].snapshot | length] | add' <<<"$s")" = 0 ] || fail "$1: a snapshot remains"
    [ "$(jq '.global."security-group" | length' <<<"$s")" = 0 ] || fail "$1: a security group remains"
    [ "$(jq '.global."ssh-key" | length' <<<"$s")" = 0 ] || fail "$1: an SSH key remains"
    [ -z "$(ls "$store/cloud/"*.json 2>/dev/null)" ] || fail "$1: a build journal remains"
}
private_templates() { # zone
    state | jq -r --arg z "$1" '.zones[$z].template[] | select(.visibility == "private") | .id'
}

# 1. A build that works.
build_start=$SECONDS
build >"$dir/out" 2>"$dir/build.log" || fail "the build failed"
# The paused builds below run steps 1-3 of this same build before they sleep: they get twice
# (at least 60 s) what this one took on this machine at its present load.
paused_bound=$(((SECONDS - build_start) * 2))
[ "$paused_bound" -ge 60 ] || paused_bound=60
cat "$dir/out" >>"$dir/build.log"
t_gva=$(private_templates ch-gva-2)
t_fra=$(private_templates de-fra-1)
[ -n "$t_gva" ] && [ -n "$t_fra" ] || fail "no template in ch-gva-2 and de-fra-1"
[ "$(state | jq -r --arg id "$t_gva" '.zones["ch-gva-2"].template[$id].name')" = exotest-1 ] ||
    fail "the template is not called exotest-1"
check_no_leftovers "after a build"
manifest=$store/exoscale/exotest/1/manifest.json
[ "$(tail -n1 "$dir/out")" = "$manifest" ] || fail "the manifest path is not printed last"
[ "$(jq -r '.templates["ch-gva-2"]' "$manifest")" = "$t_gva" ] || fail "manifest: wrong ch-gva-2 template"
[ "$(jq -r '.templates["de-fra-1"]' "$manifest")" = "$t_fra" ] || fail "manifest: wrong de-fra-1 template"
[ "$(jq '[.steps[] | select(.cached == false)] | length' "$manifest")" = 5 ] || fail "manifest: 5 steps that ran"
# The instance's installed packages, from dpkg-query during hygiene.
jq -e '.packages | any(.name == "systemd" and (.version | length > 0))' "$manifest" >/dev/null ||
    fail "manifest: no installed package list"
grep -q 'Step 5/5 hygiene.*: done in' "$dir/build.log" || fail "no progress line for the hygiene step"
grep -q "Instance .* running at 127.0.0.1" "$dir/build.log" || fail "no progress line for the instance"
# The steps ran in the container's tree, not on the host.
[ "$(cat "$rootfs$marker")" = "hello from the build" ] || fail "the run step's file is not in the tree"
[ ! -e "$marker" ] || fail "a build step ran on the host"
[ "$(stat -c %a "$rootfs/etc/exotest-motd")" = 640 ] || fail "the copy step's file is missing or has the wrong mode"
[ -x "$rootfs/usr/local/bin/bootagent" ] || fail "bootagent was not kept for the agent step"
[ -L "$rootfs/etc/systemd/system/multi-user.target.wants/bootagent-firstboot.service" ] ||
    fail "the agent step did not enable bootagent-firstboot"
[ ! -s "$rootfs/etc/machine-id" ] || fail "hygiene did not empty machine-id"

# 2. A failing operation after the template exists (exported and registered this time): everything
# goes, the error names the call.
curl -fsS -X POST "$fake/_fake/fail?command=copy-template&reason=unavailable&message=no+capacity" >/dev/null
rm -f "$rootfs$marker"
build --export >"$dir/out" 2>"$dir/build.log" && fail "a build with a failing copy succeeded"
grep -q 'Template exotest-1 .* exported and registered' "$dir/build.log" || fail "no export and register"
# Registered with the base template's boot mode (the fake's is uefi; the API's default is legacy).
grep -q 'registered template exotest-1 in ch-gva-2 with boot-mode uefi' "$dir/fake.log" ||
    fail "the exported snapshot was not registered with the base template's boot mode"
grep -q 'Sanitizer' "$dir/build.log" && fail "the sanitizers found a problem in the failed build"
grep -q 'Failed to copy the template: operation .* failed: unavailable: no capacity' "$dir/build.log" ||
    fail "the error does not name the failed operation"
grep -q '^<6>deleted template exotest-1' "$dir/build.log" || grep -q 'deleted template exotest-1' "$dir/build.log" ||
    fail "the unfinished template was not deleted"
check_no_leftovers "after a failed copy"
[ "$(private_templates ch-gva-2 | wc -l)" = 1 ] || fail "the failed build left a template"

# 3. A wrong secret: the first call fails with its URL and status, nothing is created.
EXOSCALE_API_SECRET=wrong build >"$dir/out" 2>"$dir/build.log" && fail "a build with a wrong secret succeeded"
grep -q 'Sanitizer' "$dir/build.log" && fail "the sanitizers found a problem in the refused build"
grep -q "GET $fake/ch-gva-2/v2/instance-type: HTTP 403: Invalid signature" "$dir/build.log" ||
    fail "the wrong secret's error does not name the call and status"
check_no_leftovers "after a wrong secret"

# start_paused_build: a build in its own process group that sleeps in step 4 (build_pgid).
# Waits until the build says step 4 runs, or has exited (which fails the test with its log).
paused_or_exited() {
    grep -q 'Step 4/5 run sleep 120: running' "$dir/build.log" 2>/dev/null || ! kill -0 "$build_pgid" 2>/dev/null
}
start_paused_build() {
    # The background job opens (and truncates) build.log only when it gets to run: until then
    # the log of the build before would say step 4 runs already.
    rm -f "$dir/build.log"
    setsid "$IMGBUILD" build "$dir/recipes/exotest.recipe" --provider exoscale --cache-dir "$store" \
        --bootagent "$BOOTAGENT" --ssh-port "$ssh_port" --var PAUSE=120 >"$dir/out" 2>"$dir/build.log" &
    build_pgid=$!
    wait_until "$paused_bound" paused_or_exited ||
        fail "the build did not reach its sleep step in ${paused_bound} s (twice the first build's time)"
    kill -0 "$build_pgid" 2>/dev/null || fail "the build exited before its sleep step"
}

# 4. SIGINT in the middle of a step: the build cleans up itself and exits 130.
start_paused_build
kill -INT "$build_pgid"
wait "$build_pgid"
status=$?
build_pgid=
[ "$status" = 130 ] || fail "an interrupted build exited with $status, not 130"
grep -q 'Interrupted in step 4/5' "$dir/build.log" || fail "the interrupted build does not say where it stopped"
stop_instances
check_no_leftovers "after SIGINT"

# 5. Killed in the middle of a step: the journal lists what exists, gc deletes it.
start_paused_build
kill -KILL "$build_pgid"
# Its ssh session ends with it (EOF); anything of its group that lingers is ended here.
for _ in $(seq 100); do kill -0 -- "-$build_pgid" 2>/dev/null || break; sleep 0.1; done
kill -KILL -- "-$build_pgid" 2>/dev/null
build_pgid=
stop_instances
journal=$(ls "$store/cloud/"*.json)
[ -n "$journal" ] || fail "the killed build left no journal"
[ "$(jq '[.resources[] | select(.state == "created")] | length' "$journal")" = 3 ] ||
    fail "the journal does not list the key, group and instance"
[ "$(state | jq '.global."ssh-key" | length')" = 1 ] || fail "the killed build's key is not in the fake"
# As if it had been killed before the API answered: gc finds the instance and group by name.
jq '(.resources[] | select(.kind == "instance" or .kind == "security-group")) |= (del(.id) | .state = "creating")' \
    "$journal" >"$journal.new" && mv "$journal.new" "$journal"
"$IMGBUILD" gc --cache-dir "$store" --dry-run >"$dir/gc.log" 2>&1 || fail "gc --dry-run failed"
grep -q '^would delete instance imgbuild-exotest-' "$dir/gc.log" || fail "gc --dry-run does not name the instance"
[ "$(state | jq '[.zones[].instance | length] | add')" = 1 ] || fail "gc --dry-run deleted the instance"
"$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.log" 2>&1 || fail "gc failed"
grep -q 'Sanitizer' "$dir/gc.log" && fail "the sanitizers found a problem in gc"
for kind in instance security-group ssh-key; do
    grep -q "^deleted $kind imgbuild-exotest-" "$dir/gc.log" || fail "gc did not say it deleted the $kind"
done
check_no_leftovers "after gc"

# 6. gc with no journals does nothing cloud-side and needs no credentials.
env -u EXOSCALE_API_KEY -u EXOSCALE_API_SECRET "$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.log" 2>&1 ||
    fail "gc without journals or credentials failed"
grep -q deleted "$dir/gc.log" && fail "gc without journals deleted something"
# 7. SIGINT while the build waits for a cloud operation (the snapshot, which the fake keeps
# pending): the build stops within seconds, not when the operation would end (up to an hour),
# and deletes what it made.
curl -fsS -X POST "$fake/_fake/hold?command=create-snapshot" >/dev/null || fail "cannot hold snapshots"
setsid "$IMGBUILD" build "$dir/recipes/exotest.recipe" --provider exoscale --cache-dir "$store" \
    --bootagent "$BOOTAGENT" --ssh-port "$ssh_port" >"$dir/out" 2>"$dir/build.log" &
build_pgid=$!
for _ in $(seq 3000); do
    [ "$(curl -fsS "$fake/_fake/held" | jq .polls)" -gt 0 ] && break
    kill -0 "$build_pgid" 2>/dev/null || fail "the build ended before it waited for the snapshot"
    sleep 0.1
done
[ "$(curl -fsS "$fake/_fake/held" | jq .polls)" -gt 0 ] || fail "the build never waited for the snapshot"
t0=$(date +%s%N)
kill -INT "$build_pgid"
# A generous bound (the build stops within about a second): it would otherwise wait for the
# operation's hour.
for _ in $(seq 100); do kill -0 "$build_pgid" 2>/dev/null || break; sleep 0.05; done
stopped_ms=$((($(date +%s%N) - t0) / 1000000))
kill -0 "$build_pgid" 2>/dev/null && fail "the build did not stop within 5 s of SIGINT while waiting for the snapshot"
wait "$build_pgid"
status=$?
build_pgid=
echo "stopped ${stopped_ms} ms after SIGINT in the snapshot wait"
[ "$status" = 130 ] || fail "a build interrupted in a cloud wait exited with $status, not 130"
grep -q 'Interrupted by signal 2 while trying to snapshot the instance' "$dir/build.log" ||
    fail "the build interrupted in the snapshot wait does not say where it stopped"
grep -q 'Sanitizer' "$dir/build.log" && fail "the sanitizers found a problem in the interrupted build"
stop_instances
check_no_leftovers "after SIGINT in a cloud wait"
echo "PASS"
