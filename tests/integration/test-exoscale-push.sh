#!/usr/bin/env bash
# `imgbuild push` against fake-exoscale on loopback: its API and its object store, which checks
# every request's SigV4 signature (lib/sigv4, itself checked against AWS's vectors in
# tests/unit/lib/test-sigv4.c) and registers templates only from its own presigned URLs with the
# right MD5. Checks:
#   1. a disk above the part size goes up as a multipart upload (one part answered 500 and
#      retried), is registered with its MD5 and boot mode, copied to a second zone, the object
#      deleted, the ids recorded in the manifest, no journal left;
#   2. the same version is not pushed twice;
#   3. a small disk goes up in one PUT, with the manifest's boot mode (uefi); when its object
#      cannot be deleted the push still succeeds, warning, and gc deletes the object later;
#   4. a wrong secret is refused by the object store (403 SignatureDoesNotMatch) and the push
#      fails saying so; gc then clears its journal;
#   5. SIGKILL in the middle of a multipart upload: gc aborts the upload and deletes the object;
#   6. SIGKILL while the registration runs: the presigned URL serves the disk (and a tampered
#      one is refused), gc deletes the template (found by its description) and the object;
#   7. SIGTERM while the registration runs: the push deletes what it made and exits 143.
# No fixed ports: the fake takes an ephemeral one.
set -uo pipefail

: "${IMGBUILD:?}" "${IMGBUILD_BINARY_DIR:?}"
FAKE=$IMGBUILD_BINARY_DIR/tests/fake-exoscale
for tool in curl jq md5sum sha256sum cmp; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
[ -x "$FAKE" ] || { echo "skipped: $FAKE not built"; exit 77; }

dir=$(mktemp -d "$IMGBUILD_BINARY_DIR/test-exoscale-push.XXXXXX")
store=$dir/store
fake_pid= push_pid=

cleanup() {
    [ -n "$push_pid" ] && kill -KILL "$push_pid" 2>/dev/null && wait "$push_pid" 2>/dev/null
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

# wait_until SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds (0) or SECONDS have
# passed (1): a bound far above what a loaded machine needs, turning a hang into a failure.
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
    for f in push.log gc.log fake.log; do
        [ -s "$dir/$f" ] && { echo "--- $f" >&2; tail -n 40 "$dir/$f" >&2; }
    done
    exit 1
}

# make_template NAME VERSION KIB [BOOT-MODE]: a template in the store whose disk is a qcow2
# header followed by random bytes, with the manifest fields push reads.
make_template() {
    local t=$store/templates/$1/$2
    mkdir -p "$t"
    { printf 'QFI\xfb'; head -c "$(($3 * 1024))" /dev/urandom; } >"$t/disk.qcow2"
    : >"$t/vmlinuz"
    : >"$t/initrd.img"
    jq -n --arg n "$1" --arg v "$2" --arg s "$(sha256sum <"$t/disk.qcow2" | cut -d' ' -f1)" --arg b "${4:-}" \
        '{template: {name: $n, version: $v}, output: {sha256: $s}} + (if $b == "" then {} else {"boot-mode": $b} end)' \
        >"$t/manifest.json"
}

key=EXOpushtest0123456789abcdef
secret=pushtestsecretpushtestsecretpushtestsecret
EXOSCALE_API_KEY=$key EXOSCALE_API_SECRET=$secret "$FAKE" --pending-polls 1 --sos-bucket imgs \
    --sos-min-part-size 1048576 >"$dir/fake.port" 2>"$dir/fake.log" &
fake_pid=$!
wait_until 60 test -s "$dir/fake.port" || fail "fake-exoscale did not start"
fake=http://127.0.0.1:$(head -n1 "$dir/fake.port")

export EXOSCALE_API_KEY=$key EXOSCALE_API_SECRET=$secret
export EXOSCALE_API_ENDPOINT="$fake/{zone}/v2" EXOSCALE_SOS_ENDPOINT="$fake/sos/{zone}" IMGBUILD_EXOSCALE_POLL_MS=20

state() { curl -fsS "$fake/_fake/state"; }
# The templates named $1 in zone $2, as JSON objects.
templates() { state | jq -c --arg n "$1" --arg z "$2" '[.zones[$z].template[] | select(.name == $n)]'; }
journals() { find "$store/cloud" -name '*.json' 2>/dev/null | wc -l; }
check_store_empty() {
    [ "$(state | jq '.sos.objects | length')" = 0 ] || fail "$1: objects left: $(state | jq -c .sos.objects)"
    [ "$(state | jq '.sos.uploads | length')" = 0 ] || fail "$1: uploads left: $(state | jq -c .sos.uploads)"
}
push_args=(push --cache-dir "$store" --bucket imgs --zone ch-gva-2)
push() { "$IMGBUILD" "${push_args[@]}" "$@"; }

"$IMGBUILD" push --help | grep -q -- '--boot-mode MODE' || fail "push --help does not document --boot-mode"
"$IMGBUILD" --help | grep -q '^  push ' || fail "imgbuild --help does not list push"
push pushtest@1 --zone '' >/dev/null 2>&1 && fail "push without a template in the store succeeded"

# 1. Multipart (4 parts of 1 MiB, the last shorter), one part failing once, copied to de-fra-1.
make_template pushtest 1 3500
disk1=$store/templates/pushtest/1/disk.qcow2
curl -fsS -X POST "$fake/_fake/fail?command=upload-part&reason=x" >/dev/null || fail "cannot arm a part failure"
push pushtest@1 --copy-to-zone de-fra-1 --part-size 1M >"$dir/out" 2>"$dir/push.log" || fail "push 1 failed"
grep -q 'Part 4/4 uploaded' "$dir/push.log" || fail "push 1 was not a 4-part upload"
grep -q 'InternalError' "$dir/push.log" && fail "the retried part's error was reported as a failure"
for zone in ch-gva-2 de-fra-1; do
    t=$(templates pushtest-1 "$zone")
    [ "$(jq length <<<"$t")" = 1 ] || fail "push 1: $zone has $(jq length <<<"$t") templates pushtest-1"
    id=$(jq -r '.[0].id' <<<"$t")
    grep -qx "$zone $id" "$dir/out" || fail "push 1 did not print $zone $id"
    [ "$(jq -r --arg z "$zone" '.templates[$z]' "$store/exoscale/pushtest/1/manifest.json")" = "$id" ] ||
        fail "the manifest does not record $id in $zone"
    [ "$(jq -r '.[0]["boot-mode"]' <<<"$t")" = legacy ] || fail "push 1: boot mode is not legacy in $zone"
done
t=$(templates pushtest-1 ch-gva-2)
[ "$(jq -r '.[0].checksum' <<<"$t")" = "$(md5sum <"$disk1" | cut -d' ' -f1)" ] || fail "push 1: wrong checksum"
[ "$(jq -r '.[0].size' <<<"$t")" = "$(stat -c %s "$disk1")" ] || fail "push 1: the fake did not get the whole disk"
jq -r '.[0].description' <<<"$t" | grep -q '^imgbuild push [0-9a-f]\{16\}$' || fail "push 1: no push description"
jq -r '.[0].url' <<<"$t" | grep -q 'X-Amz-Signature=' || fail "push 1: not registered from a presigned URL"
check_store_empty "push 1"
# Every PUT with a body (the 4 parts and the retried one) carried a Content-MD5 the store checked.
[ "$(state | jq '.sos.puts')" = 5 ] || fail "push 1: $(state | jq '.sos.puts') PUTs with a body, not 5"
[ "$(state | jq '.sos["puts-with-content-md5"]')" = 5 ] || fail "push 1: a PUT without Content-MD5"
[ "$(journals)" = 0 ] || fail "push 1 left a journal"

# 2. Not twice.
push pushtest@1 >"$dir/out" 2>"$dir/push.log" && fail "a second push of pushtest@1 succeeded"
grep -q 'is on Exoscale already' "$dir/push.log" || fail "the second push does not say why it was refused"

# 3. One PUT, the manifest's boot mode.
make_template pushtest 2 200 uefi
push pushtest@2 >"$dir/out" 2>"$dir/push.log" || fail "push 2 failed"
grep -q 'Part ' "$dir/push.log" && fail "push 2 used a multipart upload"
[ "$(templates pushtest-2 ch-gva-2 | jq -r '.[0]["boot-mode"]')" = uefi ] || fail "push 2: boot mode is not uefi"
check_store_empty "push 2"

# 3b. --boot-mode over a manifest without one. The object cannot be deleted after a good push: a warning, the manifest is written, the
# journal keeps the object for gc.
make_template pushtest 8 200
curl -fsS -X POST "$fake/_fake/fail?command=delete-object&reason=on" >/dev/null || fail "cannot fail deletes"
push pushtest@8 --boot-mode uefi >"$dir/out" 2>"$dir/push.log" ||
    fail "push 8 failed when only its object could not be deleted"
[ "$(templates pushtest-8 ch-gva-2 | jq -r '.[0]["boot-mode"]')" = uefi ] || fail "push 8: --boot-mode uefi was not sent"
grep -q 'warning: The uploaded object of push .* remains' "$dir/push.log" || fail "push 8 does not warn about its object"
[ -s "$store/exoscale/pushtest/8/manifest.json" ] || fail "push 8 wrote no manifest"
[ "$(journals)" = 1 ] || fail "push 8 kept no journal for its object"
curl -fsS -X POST "$fake/_fake/fail?command=delete-object&reason=off" >/dev/null || fail "cannot stop failing deletes"
"$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.log" 2>&1 || fail "gc after push 8 failed"
grep -q '^deleted object imgs/imgbuild/pushtest-8-' "$dir/gc.log" || fail "gc did not delete push 8's object"
[ "$(templates pushtest-8 ch-gva-2 | jq length)" = 1 ] || fail "gc deleted push 8's template"
check_store_empty "gc after push 8"
[ "$(journals)" = 0 ] || fail "gc left push 8's journal"

# 4. A wrong secret: the object store refuses the signature; gc (with the right one) clears the
# journal of the object the push could not delete either.
make_template pushtest 3 200
EXOSCALE_API_SECRET=wrong push pushtest@3 >"$dir/out" 2>"$dir/push.log" && fail "a push with a wrong secret succeeded"
grep -q 'HTTP 403: SignatureDoesNotMatch' "$dir/push.log" || fail "the wrong secret's error is not SignatureDoesNotMatch"
[ "$(templates pushtest-3 ch-gva-2 | jq length)" = 0 ] || fail "a push with a wrong secret registered a template"
"$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.log" 2>&1 || fail "gc after the wrong secret failed"
[ "$(journals)" = 0 ] || fail "gc left the wrong secret's journal"

# 5. SIGKILL in the middle of a multipart upload: parts 2.. never get an answer.
make_template pushtest 4 3500
curl -fsS -X POST "$fake/_fake/hold?command=upload-part" >/dev/null || fail "cannot hold parts"
"$IMGBUILD" "${push_args[@]}" pushtest@4 --part-size 1M >"$dir/out" 2>"$dir/push.log" &
push_pid=$!
held_parts() { [ "$(curl -fsS "$fake/_fake/held" | jq .parts)" -gt 0 ]; }
wait_until 120 held_parts || fail "push 4 never sent part 2"
[ "$(state | jq '[.sos.uploads[] | select(.key | startswith("imgbuild/pushtest-4-"))] | .[0].parts')" = 1 ] ||
    fail "push 4: no unfinished upload with one part"
kill -KILL "$push_pid"
wait "$push_pid" 2>/dev/null
push_pid=
# Background pushes run imgbuild itself (not the shell function), so $! is its pid.
[ "$(journals)" = 1 ] || fail "the killed push 4 left no journal"
"$IMGBUILD" gc --cache-dir "$store" --dry-run >"$dir/gc.log" 2>&1 || fail "gc --dry-run failed"
grep -q '^would abort the multipart upload ' "$dir/gc.log" || fail "gc --dry-run does not name the upload"
[ "$(state | jq '.sos.uploads | length')" = 1 ] || fail "gc --dry-run aborted the upload"
"$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.log" 2>&1 || fail "gc after push 4 failed"
grep -q '^aborted the multipart upload .* of imgs/imgbuild/pushtest-4-' "$dir/gc.log" || fail "gc did not abort the upload"
grep -q '^deleted object imgs/imgbuild/pushtest-4-.* in ch-gva-2' "$dir/gc.log" || fail "gc did not delete the object"
check_store_empty "gc after push 4"
[ "$(journals)" = 0 ] || fail "gc left push 4's journal"

# 6. SIGKILL while the registration runs (small disk: one PUT, parts are not involved).
make_template pushtest 5 300
curl -fsS -X POST "$fake/_fake/hold?command=register-template" >/dev/null || fail "cannot hold registrations"
"$IMGBUILD" "${push_args[@]}" pushtest@5 --copy-to-zone de-fra-1 >"$dir/out" 2>"$dir/push.log" &
push_pid=$!
held_polls() { [ "$(curl -fsS "$fake/_fake/held" | jq .polls)" -gt 0 ]; }
wait_until 120 held_polls || fail "push 5 never waited for its registration"
url=$(templates pushtest-5 ch-gva-2 | jq -r '.[0].url')
curl -fsS -o "$dir/download" "$url" || fail "the presigned URL does not serve the object"
cmp -s "$dir/download" "$store/templates/pushtest/5/disk.qcow2" || fail "the presigned URL serves other bytes"
code=$(curl -sS -o "$dir/refused" -w '%{http_code}' "${url/pushtest-5-/pushtest-6-}")
[ "$code" = 403 ] && grep -q '<Code>SignatureDoesNotMatch</Code>' "$dir/refused" ||
    fail "a tampered presigned URL was not refused with SignatureDoesNotMatch (HTTP $code)"
kill -KILL "$push_pid"
wait "$push_pid" 2>/dev/null
push_pid=
"$IMGBUILD" gc --cache-dir "$store" >"$dir/gc.log" 2>&1 || fail "gc after push 5 failed"
grep -q '^deleted template pushtest-5 .* in ch-gva-2' "$dir/gc.log" || fail "gc did not delete push 5's template"
grep -q '^deleted object imgs/imgbuild/pushtest-5-' "$dir/gc.log" || fail "gc did not delete push 5's object"
[ "$(templates pushtest-5 ch-gva-2 | jq length)" = 0 ] || fail "push 5's template is left"
[ "$(templates pushtest-5 de-fra-1 | jq length)" = 0 ] || fail "push 5 copied before it was registered"
check_store_empty "gc after push 5"
[ "$(journals)" = 0 ] || fail "gc left push 5's journal"

# 7. SIGTERM while the registration runs: the push cleans up itself.
make_template pushtest 7 300
before=$(curl -fsS "$fake/_fake/held" | jq .polls)
"$IMGBUILD" "${push_args[@]}" pushtest@7 >"$dir/out" 2>"$dir/push.log" &
push_pid=$!
more_polls() { [ "$(curl -fsS "$fake/_fake/held" | jq .polls)" -gt "$before" ]; }
wait_until 120 more_polls || fail "push 7 never waited for its registration"
kill -TERM "$push_pid"
wait "$push_pid"
status=$?
push_pid=
[ "$status" = 143 ] || fail "push 7 exited $status after SIGTERM, not 143"
grep -q 'Interrupted by signal 15' "$dir/push.log" || fail "push 7 does not say it was interrupted"
[ "$(templates pushtest-7 ch-gva-2 | jq length)" = 0 ] || fail "push 7's template is left"
check_store_empty "push 7"
[ "$(journals)" = 0 ] || fail "push 7 left a journal"
[ -e "$store/exoscale/pushtest/7/manifest.json" ] && fail "push 7 wrote a manifest"

echo "ok"
