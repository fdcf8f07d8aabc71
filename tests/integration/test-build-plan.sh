#!/usr/bin/env bash
# `imgbuild build --plan` builds nothing and needs no base disk: with an empty store it shows the
# base and every step as a miss, exits 0 and leaves the store untouched; with the base (and a
# step's committed layer) in the store those show as hits. No VM, no root: the store entries are
# the files the lookups check, with the keys the plan printed. Also: the options of the two build
# providers (each one's --help, the other one's options refused by name). The Kubernetes recipes
# plan with no --var (their pinned release and sha512s are the defaults), and with a stand-in node
# tarball through --var kube_url=file://... and its own kube_node_sha512.
set -euo pipefail
[ -n "${IMGBUILD:-}" ] && [ -x "$IMGBUILD" ] && [ -x "${BOOTAGENT:-}" ] || { echo "run through ctest" >&2; exit 77; }
T=$(mktemp -d /tmp/imgbuild-plan.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$IMGBUILD_SOURCE_DIR"
plan() { "$IMGBUILD" build --plan --cache-dir "$T/store" --bootagent "$BOOTAGENT" "$@" recipes/etcd.recipe; }
steps=$("$IMGBUILD" inspect --json recipes/etcd.recipe | grep -c "\"kind\":")
[ "$steps" -ge 3 ] || fail "inspect lists $steps steps"

# 1. No store at all: everything misses, the base "will be built", nothing is created.
plan > "$T/plan.txt" 2> "$T/plan.err" || fail "plan exited $? with an empty store: $(cat "$T/plan.err")"
cat "$T/plan.txt"
[ ! -e "$T/store" ] || fail "plan created the store: $(find "$T/store")"
[ "$(wc -l < "$T/plan.txt")" = $((steps + 1)) ] || fail "plan lists $(wc -l < "$T/plan.txt") lines, expected base + $steps steps"
grep -q '^miss  0 [0-9a-f]\{12\} base .*images/debian-12/image.conf (will be built)$' "$T/plan.txt" || fail "no base miss line"
[ "$(grep -c '^miss ' "$T/plan.txt")" = $((steps + 1)) ] || fail "not every line is a miss"
[ ! -s "$T/plan.err" ] || fail "plan printed errors: $(cat "$T/plan.err")"
plan --json > "$T/plan.json" || fail "plan --json"
[ "$(grep -c '"event":"plan".*"state":"miss"' "$T/plan.json")" = $((steps + 1)) ] || fail "json plan is not all misses"
base_key=$(sed -n 's/.*"index":0,"key":"\([0-9a-f]*\)".*"step":"base".*/\1/p' "$T/plan.json")
step1_key=$(sed -n 's/.*"index":1,"key":"\([0-9a-f]*\)".*/\1/p' "$T/plan.json")
[ ${#base_key} = 64 ] && [ ${#step1_key} = 64 ] || fail "no keys in the json plan"

# 2. An empty store directory stays empty.
mkdir "$T/store"
plan > /dev/null || fail "plan with an empty store directory"
[ -z "$(ls -A "$T/store")" ] || fail "plan wrote into the store: $(ls -A "$T/store")"

# 3. With the base disk in place the base is a hit and the steps still miss; with the first step's
# committed layer that step is a hit too, and the rest miss.
mkdir -p "$T/store/base/$base_key" "$T/store/layers"
: > "$T/store/base/$base_key/disk.qcow2"
plan > "$T/plan2.txt" || fail "plan with a base"
grep -q "^hit   0 ${base_key:0:12} base .*image.conf\$" "$T/plan2.txt" || fail "base not a hit: $(head -1 "$T/plan2.txt")"
[ "$(grep -c '^miss ' "$T/plan2.txt")" = "$steps" ] || fail "steps should all miss with only the base"
: > "$T/store/layers/$step1_key.qcow2"
echo "$step1_key" > "$T/store/layers/$step1_key.done"
plan > "$T/plan3.txt" || fail "plan with a layer"
grep -q "^hit   1 ${step1_key:0:12} packages " "$T/plan3.txt" || fail "step 1 not a hit: $(sed -n 2p "$T/plan3.txt")"
[ "$(grep -c '^miss ' "$T/plan3.txt")" = $((steps - 1)) ] || fail "steps after the first should miss"
# 4. One option parser for both providers: each one's --help lists its own options, and an option
# of the other provider is refused by name before anything is read.
"$IMGBUILD" build --help > "$T/help.txt" || fail "build --help"
grep -q -- '--plan' "$T/help.txt" && grep -q -- '--provider NAME' "$T/help.txt" || fail "build --help lacks --plan/--provider"
grep -q -- '--zone' "$T/help.txt" && fail "build --help lists exoscale's --zone"
"$IMGBUILD" build --provider exoscale --help > "$T/help.txt" || fail "build --provider exoscale --help"
grep -q -- '--zone ZONE' "$T/help.txt" && grep -q -- '--cache-dir DIR' "$T/help.txt" || fail "exoscale --help lacks --zone/--cache-dir"
grep -q -- '--plan' "$T/help.txt" && fail "exoscale --help lists qemu's --plan"
rc=0; "$IMGBUILD" build --zone ch-gva-2 --cache-dir "$T/store" recipes/etcd.recipe 2> "$T/opt.err" || rc=$?
[ "$rc" = 1 ] && grep -q -- '--zone is an option of --provider exoscale, not of qemu' "$T/opt.err" \
    || fail "qemu build with --zone: exit $rc, $(cat "$T/opt.err")"
rc=0; "$IMGBUILD" build --provider exoscale --plan --cache-dir "$T/store" recipes/etcd.recipe 2> "$T/opt.err" || rc=$?
[ "$rc" = 1 ] && grep -q -- '--plan is an option of --provider qemu, not of exoscale' "$T/opt.err" \
    || fail "exoscale build with --plan: exit $rc, $(cat "$T/opt.err")"
rc=0; "$IMGBUILD" build --provider=nope recipes/etcd.recipe 2> "$T/opt.err" || rc=$?
[ "$rc" = 1 ] && grep -q "Unknown provider 'nope' (qemu or exoscale)" "$T/opt.err" || fail "unknown provider: exit $rc"

# 5. The Kubernetes recipes pin a release: no --var needed to plan them. The node recipe with a
# stand-in tarball (file:// and its own sha512) plans too: the steps before the download keep
# their keys, the download and every later step get new ones, and the recipe's unpack command
# works on it. A wrong-length sha512 is a recipe error at its file:line:col.
kplan() { "$IMGBUILD" build --plan --cache-dir "$T/kstore" --bootagent "$BOOTAGENT" "$@"; }
for r in control-plane node; do
    kplan "recipes/$r.recipe" > "$T/$r.plan" 2> "$T/$r.err" || fail "plan of $r without --var exited $?: $(cat "$T/$r.err")"
    [ ! -s "$T/$r.err" ] || fail "plan of $r printed errors: $(cat "$T/$r.err")"
    grep -q "^miss  4 [0-9a-f]\{12\} download https://dl.k8s.io/v1.32.5/kubernetes-" "$T/$r.plan" \
        || fail "no upstream download in the $r plan: $(cat "$T/$r.plan")"
    # The full arguments: the upstream tarball and a 128-digit sha512.
    tarball=kubernetes-$([ $r = node ] && echo node || echo server)-linux-amd64.tar.gz
    "$IMGBUILD" inspect --json "recipes/$r.recipe" | tr -d ' \n' > "$T/$r.json"
    grep -q "\"args\":\[\"https://dl.k8s.io/v1.32.5/$tarball\",\"/var/tmp/[a-z-]*.tar.gz\",\"sha512=[0-9a-f]\{128\}\"" \
        "$T/$r.json" || fail "$r does not download $tarball with a sha512: $(cat "$T/$r.json")"
done
[ ! -e "$T/kstore" ] || fail "plan created the store"
mkdir -p "$T/kube/kubernetes/node/bin"
printf '#!/bin/sh\necho stand-in kubelet\n' > "$T/kube/kubernetes/node/bin/kubelet"
printf '#!/bin/sh\necho stand-in kubectl\n' > "$T/kube/kubernetes/node/bin/kubectl"
chmod 0755 "$T/kube/kubernetes/node/bin/"*
tar -czf "$T/kube/kubernetes-node-linux-amd64.tar.gz" -C "$T/kube" kubernetes
sum=$(sha512sum "$T/kube/kubernetes-node-linux-amd64.tar.gz" | cut -d' ' -f1)
kplan --var "kube_url=file://$T/kube" --var "kube_node_sha512=$sum" recipes/node.recipe > "$T/standin.plan" \
    2> "$T/standin.err" || fail "plan with a stand-in exited $?: $(cat "$T/standin.err")"
grep -q "^miss  4 [0-9a-f]\{12\} download file://$T/kube" "$T/standin.plan" \
    || fail "stand-in download not in the plan: $(cat "$T/standin.plan")"
keys() { awk '{print $3}' "$1"; }
paste <(keys "$T/node.plan") <(keys "$T/standin.plan") | awk 'NR <= 4 && $1 != $2 { exit 1 } NR > 4 && $1 == $2 { exit 1 }' \
    || fail "stand-in keys: $(paste "$T/node.plan" "$T/standin.plan")"
# The recipes' unpack steps on stand-in tarballs, on the host with their guest paths moved under
# $T: the members they name are in the tarballs' layout, land as executables, and the tarball goes.
unpack() { # RECIPE TARBALL-DIR(server|node) BINARY...
    local r=$1 kind=$2 g="$T/guest-$1" cmd b; shift 2
    mkdir -p "$g/src/kubernetes/$kind/bin" "$g/bin" "$g/tmp"
    for b in "$@"; do printf '#!/bin/sh\necho stand-in %s\n' "$b" > "$g/src/kubernetes/$kind/bin/$b"; done
    chmod 0755 "$g/src/kubernetes/$kind/bin/"*
    tar -czf "$g/tmp/kubernetes-$kind.tar.gz" -C "$g/src" kubernetes
    cmd=$("$IMGBUILD" inspect --json "recipes/$r.recipe" | jq -r '.steps[] | select(.kind == "run") | .args[0]' | grep '^tar ')
    sh -c "$(echo "$cmd" | sed "s#/usr/local/bin#$g/bin#g; s#/var/tmp/#$g/tmp/#g")" || fail "$r unpack: $cmd"
    for b in "$@"; do
        [ "$("$g/bin/$b")" = "stand-in $b" ] || fail "$r: $b not unpacked: $(ls -lR "$g/bin")"
    done
    [ ! -e "$g/tmp/kubernetes-$kind.tar.gz" ] || fail "$r: the tarball stayed"
}
unpack node node kubelet kubectl
unpack control-plane server kube-apiserver kube-controller-manager kube-scheduler kubectl
rc=0; kplan --var "kube_node_sha512=${sum:0:64}" recipes/node.recipe > /dev/null 2> "$T/badsum.err" || rc=$?
[ "$rc" = 2 ] && grep -q "^recipes/node.recipe:25:12: error: invalid sha512 '${sum:0:64}': expected 128 hex digits" "$T/badsum.err" \
    || fail "64-digit sha512: exit $rc, $(cat "$T/badsum.err")"
echo ok
