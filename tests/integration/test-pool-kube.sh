#!/usr/bin/env bash
# builder/pool/pool-kube.c (what the node and control-plane pool roles ask the Kubernetes API)
# against `imgbuild kube-apiserver` on a real etcd, driven through tests/pool-kube-driver (a test
# driver: one module call per run) and checked with the REAL kubectl (newest on this machine, a
# fresh HOME for each call; kube-lib.sh):
#   readyz: ok, and a failure while etcd is stopped;
#   node-get: exists / Ready / cordoned and the pods a drain would evict, for a Ready node, a node
#     without status, a missing node;
#   cordon / uncordon: spec.unschedulable as kubectl shows it, idempotent, a missing node refused;
#   drain n1: exactly the right pods evicted through the eviction subresource (a ReplicaSet's pod
#     under the PDB, a pod in another namespace, a finished Job pod: as kubectl drain, which removes
#     finished pods), the DaemonSet pod and the mirror pod stay and are counted as skipped, pods of
#     other nodes untouched, the node cordoned;
#   drain n2: the PDB blocks (429), the drain retries (blocked_retries > 0, the 429 message kept),
#     the test makes another pod Ready meanwhile, and the drain then succeeds;
#   drain n3: blocked for good: exit 3 (-ETIMEDOUT, distinct from the 1 of other failures such as
#     a missing node) with the message naming the pod and the budget, the pods still there;
#     SIGTERM during such a drain: exit 4 (-ECANCELED);
#   the PDB is never violated: currentHealthy >= desiredHealthy in every sample kubectl takes
#     (after each step and every ~0.3 s while drain n2 runs), and no pod is ever DELETEd;
#   delete-node: gone for kubectl, and a second delete succeeds.
set -uo pipefail

# Ports: this test's range is 4000-4999 (tests/integration/README.md).
KUBE_LIB_NAME=test-pool-kube
KUBE_LIB_PORTS="4000 4999"
# shellcheck source=kube-lib.sh
. "${IMGBUILD_SOURCE_DIR:?}/tests/integration/kube-lib.sh"

DRIVER=${IMGBUILD_BINARY_DIR:?}/tests/pool-kube-driver
[ -x "$DRIVER" ] || fail "no test driver at $DRIVER (build the pool-kube-driver target)"
BG_PIDS=()
kube_lib_cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}

kube_start_etcd
cd "$T" || exit 1
kube_pki
kube_api_flags
kube_start_api
kubeconfig admin.conf "{client-certificate: $T/admin.pem, client-key: $T/admin.key}"
kube_wait_readyz admin.conf

KC=${KUBECTLS[-1]}
kk() { k "$KC" admin.conf "$@"; }
# (an array, so that a driver run in the background is $! itself, not a subshell around it)
DRV=("$DRIVER" --server "$API" --ca-file "$T/ca.pem" --cert-file "$T/admin.pem" --key-file "$T/admin.key")
drv() { "${DRV[@]}" "$@"; }

# One sample of the budget: fails unless currentHealthy >= desiredHealthy; appends to
# $PDB_SAMPLES (default pdb.samples).
pdb_check() {
    local s h d
    s=$(kk get pdb web-pdb -o jsonpath='{.status.currentHealthy} {.status.desiredHealthy}') || fail "get pdb"
    read -r h d <<<"$s"
    [[ "$h" =~ ^[0-9]+$ && "$d" =~ ^[0-9]+$ ]] || fail "pdb status: '$s'"
    echo "$h $d" >>"${PDB_SAMPLES:-pdb.samples}"
    [ "$h" -ge "$d" ] || fail "PDB violated: currentHealthy $h < desiredHealthy $d"
}
pods_now() { kk get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' | sort; }
evictions() { grep -c "^imgbuild: kube-apiserver: POST /api/v1/namespaces/default/pods/$1/eviction " api.log; }
wait_for() { # DESCRIPTION COMMAND...: until the command succeeds (60 s: far above what a loaded machine needs)
    local what=$1 end=$((SECONDS + 60))
    shift
    while [ "$SECONDS" -lt "$end" ]; do
        "$@" && return 0
        sleep 0.1
    done
    fail "timed out waiting for $what"
}

# ---- readyz ----
log "readyz"
out=$(drv readyz) || fail "readyz: $out"
[ "$out" = ok ] || fail "readyz printed: $out"

# ---- the cluster: three nodes, pods bound to them, a DaemonSet, a mirror pod, a PDB ----
log "nodes, pods, PDB"
cat >objects.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
---
apiVersion: v1
kind: Node
metadata: {name: n3}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: agent}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web-pdb, namespace: default}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
EOF
web_pod() { # NAME NODE
    cat <<EOF
---
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: default
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-rs, uid: 00000000-0000-0000-0000-000000000001, controller: true}]
spec: {nodeName: $2, containers: [{name: web, image: web}]}
EOF
}
{
    web_pod web-1 n1
    web_pod web-2 n2
    web_pod web-3 n3
    web_pod web-4 n3
    cat <<'EOF'
---
apiVersion: v1
kind: Pod
metadata:
  name: cache-1
  namespace: team
  labels: {app: cache}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: cache-rs, uid: 00000000-0000-0000-0000-000000000003, controller: true}]
spec: {nodeName: n1, containers: [{name: c, image: cache}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: batch-1
  namespace: default
  labels: {app: batch}
  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: batch, uid: 00000000-0000-0000-0000-000000000004, controller: true}]
spec: {nodeName: n1, restartPolicy: Never, containers: [{name: b, image: batch}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: agent-n1
  namespace: default
  labels: {app: agent}
  ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: agent, uid: 00000000-0000-0000-0000-000000000002, controller: true}]
spec: {nodeName: n1, containers: [{name: a, image: agent}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: agent-n2
  namespace: default
  labels: {app: agent}
  ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: agent, uid: 00000000-0000-0000-0000-000000000002, controller: true}]
spec: {nodeName: n2, containers: [{name: a, image: agent}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: static-n1
  namespace: kube-system
  annotations: {kubernetes.io/config.mirror: "0123abcd"}
spec: {nodeName: n1, containers: [{name: s, image: static}]}
EOF
} >>objects.yaml
out=$(kk apply --validate=false -f objects.yaml 2>&1) || fail "apply: $out"

# Ready as the kubelet reports it, through the status subresource: nodes n1 and n2 (n3 has no
# status yet), every pod but web-4 (Running, not Ready) and batch-1 (finished).
node_ready='{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"test"}]}}'
for n in n1 n2; do
    kk patch node "$n" --subresource=status --type=merge -p "$node_ready" >/dev/null || fail "node $n status"
done
pod_status() { # NS NAME PHASE READY
    kk patch pod "$2" -n "$1" --subresource=status --type=merge \
        -p "{\"status\":{\"phase\":\"$3\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"$4\"}]}}" >/dev/null ||
        fail "pod $1/$2 status"
}
for p in default/web-1 default/web-2 default/web-3 team/cache-1 default/agent-n1 default/agent-n2 kube-system/static-n1; do
    pod_status "${p%/*}" "${p#*/}" Running True
done
pod_status default web-4 Running False
pod_status default batch-1 Succeeded False
# 3 of the web pods healthy, 2 wanted: one eviction allowed at a time
[ "$(kk get pdb web-pdb -o jsonpath='{.status.currentHealthy}/{.status.desiredHealthy}/{.status.disruptionsAllowed}')" = 3/2/1 ] ||
    fail "pdb before the drains: $(kk get pdb web-pdb -o json)"
pdb_check

# ---- node-get ----
log "node-get"
out=$(drv node-get n1) || fail "node-get n1: $out"
[ "$out" = "exists=1 ready=1 unschedulable=0 pods=3 daemonset_pods=1 mirror_pods=1" ] || fail "node-get n1: $out"
out=$(drv node-get n3) || fail "node-get n3: $out"
[ "$out" = "exists=1 ready=0 unschedulable=0 pods=2 daemonset_pods=0 mirror_pods=0" ] || fail "node-get n3: $out"
out=$(drv node-get nosuch) || fail "node-get nosuch: $out"
[ "$out" = "exists=0 ready=0 unschedulable=0 pods=0 daemonset_pods=0 mirror_pods=0" ] || fail "node-get nosuch: $out"

# ---- cordon / uncordon ----
log "cordon"
unschedulable() { kk get node "$1" -o jsonpath='{.spec.unschedulable}'; }
for i in 1 2; do # twice: idempotent
    out=$(drv cordon n2 2>&1) || fail "cordon n2 ($i): $out"
    [ "$(unschedulable n2)" = true ] || fail "n2 not cordoned for kubectl ($i)"
done
out=$(kk get nodes n2) && grep -Eq '^n2 +Ready,SchedulingDisabled ' <<<"$out" || fail "kubectl get nodes n2: $out"
[ "$(drv node-get n2)" = "exists=1 ready=1 unschedulable=1 pods=1 daemonset_pods=1 mirror_pods=0" ] ||
    fail "node-get n2 cordoned: $(drv node-get n2)"
for i in 1 2; do
    out=$(drv uncordon n2 2>&1) || fail "uncordon n2 ($i): $out"
    [ -z "$(unschedulable n2)" ] || fail "n2 still unschedulable after uncordon ($i): $(unschedulable n2)"
done
[ "$(drv node-get n2)" = "exists=1 ready=1 unschedulable=0 pods=1 daemonset_pods=1 mirror_pods=0" ] ||
    fail "node-get n2 uncordoned: $(drv node-get n2)"
out=$(drv cordon nosuch 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "cordon of a missing node: exit $rc: $out"
grep -q 'nodes "nosuch" not found' <<<"$out" || fail "cordon of a missing node: $out"

# ---- drain n1: exactly the right pods ----
log "drain n1"
before=$(pods_now)
out=$(drv drain n1 --timeout-ms 60000 --retry-ms 300 2>&1) || fail "drain n1: $out"
[ "$out" = "evicted=3 gone=0 skipped_daemonset=1 skipped_mirror=1 blocked_retries=0" ] || fail "drain n1 report: $out"
after=$(pods_now)
gone=$(comm -23 <(echo "$before") <(echo "$after") | tr '\n' ' ')
[ "$gone" = "default/batch-1 default/web-1 team/cache-1 " ] || fail "drain n1 removed: '$gone'"
[ -z "$(comm -13 <(echo "$before") <(echo "$after"))" ] || fail "pods appeared: $after"
for p in default/agent-n1 kube-system/static-n1 default/web-2 default/agent-n2 default/web-3 default/web-4; do
    grep -qx "$p" <<<"$after" || fail "$p is gone after drain n1"
done
for p in web-1 batch-1; do
    [ "$(evictions "$p")" -ge 1 ] || fail "$p went without an eviction: $(grep "$p" api.log)"
done
grep -q '^imgbuild: kube-apiserver: POST /api/v1/namespaces/team/pods/cache-1/eviction ' api.log || fail "cache-1 went without an eviction"
[ "$(unschedulable n1)" = true ] || fail "n1 not cordoned by the drain"
[ "$(drv node-get n1)" = "exists=1 ready=1 unschedulable=1 pods=0 daemonset_pods=1 mirror_pods=1" ] ||
    fail "node-get n1 drained: $(drv node-get n1)"
[ "$(kk get pdb web-pdb -o jsonpath='{.status.currentHealthy}/{.status.desiredHealthy}/{.status.disruptionsAllowed}')" = 2/2/0 ] ||
    fail "pdb after drain n1: $(kk get pdb web-pdb -o json)"
pdb_check

# ---- drain n2: blocked by the PDB, then allowed once web-4 is Ready ----
log "drain n2 (blocked, then allowed)"
touch sampling
(
    PDB_SAMPLES=sampler.samples
    while [ -e sampling ]; do
        pdb_check
        sleep 0.3
    done
) 2>sampler.err &
SAMPLER=$!
BG_PIDS+=("$SAMPLER")
"${DRV[@]}" drain n2 --timeout-ms 300000 --retry-ms 300 >drain2.out 2>drain2.err &
D2=$!
BG_PIDS+=("$D2")
# two eviction requests for web-2: the first was refused (the drain asks again only after a 429)
wait_for "two evictions of web-2" eval '[ "$(evictions web-2)" -ge 2 ]'
kill -0 "$D2" 2>/dev/null || fail "drain n2 ended while the budget forbids: $(cat drain2.out drain2.err)"
pods_now | grep -qx default/web-2 || fail "web-2 evicted while the budget forbids it"
pdb_check
pod_status default web-4 Running True
wait "$D2"
rc=$?
[ $rc -eq 0 ] || fail "drain n2: exit $rc: $(cat drain2.out drain2.err)"
rm -f sampling
wait "$SAMPLER"
rc=$?
[ $rc -eq 0 ] || fail "the PDB sampler: $(cat sampler.err)"
[ -s sampler.samples ] || fail "no PDB sample taken while drain n2 ran"
grep -Eq '^evicted=1 gone=0 skipped_daemonset=1 skipped_mirror=0 blocked_retries=[1-9][0-9]*$' drain2.out ||
    fail "drain n2 report: $(cat drain2.out)"
grep -qxF "blocked=default/web-2: Cannot evict pod as it would violate the pod's disruption budget. (causes: The disruption budget web-pdb needs 2 healthy pods and has 2 currently)" drain2.out ||
    fail "drain n2 blocked message: $(cat drain2.out)"
after=$(pods_now)
grep -qx default/web-2 <<<"$after" && fail "web-2 still there after drain n2"
grep -qx default/agent-n2 <<<"$after" || fail "the DaemonSet pod of n2 was evicted"
pdb_check

# ---- drain n3: blocked for good ----
log "drain n3 (blocked for good)"
out=$(drv drain n3 --timeout-ms 3000 --retry-ms 300 2>&1)
rc=$?
[ $rc -eq 3 ] || fail "drain n3: exit $rc (want 3, timed out): $out"
grep -Eq "pool-kube-driver: drain: drain of node n3 blocked for [0-9]+ s: default/web-[34]: Cannot evict pod as it would violate the pod's disruption budget\. \(causes: The disruption budget web-pdb needs 2 healthy pods and has 2 currently\)$" <<<"$out" ||
    fail "drain n3 message: $out"
grep -Eq '^evicted=0 gone=0 skipped_daemonset=0 skipped_mirror=0 blocked_retries=([2-9]|[1-9][0-9]+)$' <<<"$out" || fail "drain n3 report: $out"
after=$(pods_now)
grep -qx default/web-3 <<<"$after" && grep -qx default/web-4 <<<"$after" || fail "a pod of n3 went despite the budget: $after"
[ "$(unschedulable n3)" = true ] || fail "n3 not cordoned"
pdb_check
# another failure has another exit code
out=$(drv drain nosuch --timeout-ms 3000 --retry-ms 300 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "drain of a missing node: exit $rc (want 1): $out"
grep -q 'nodes "nosuch" not found' <<<"$out" || fail "drain of a missing node: $out"
# and SIGTERM ends a blocked drain (cancel flag) long before its deadline
n=$(($(evictions web-3) + $(evictions web-4)))
"${DRV[@]}" drain n3 --timeout-ms 120000 --retry-ms 300 >drain3.out 2>drain3.err &
D3=$!
BG_PIDS+=("$D3")
wait_for "an eviction by the cancelled drain" eval '[ $(($(evictions web-3) + $(evictions web-4))) -gt '"$n"' ]'
kill -TERM "$D3"
wait "$D3"
rc=$?
[ $rc -eq 4 ] || fail "cancelled drain: exit $rc (want 4): $(cat drain3.out drain3.err)"
grep -q 'drain of node n3 cancelled' drain3.err || fail "cancelled drain: $(cat drain3.err)"
pods_now | grep -qx default/web-3 || fail "web-3 gone after the cancelled drain"
pdb_check

# no pod was ever deleted but through its eviction
grep -E '^imgbuild: kube-apiserver: DELETE /api/v1/(namespaces/[^/ ]+/)?pods' api.log && fail "a pod was DELETEd"

# ---- delete-node ----
log "delete-node"
out=$(drv delete-node n1 2>&1) || fail "delete-node n1: $out"
out=$(kk get node n1 2>&1) && fail "n1 still there: $out"
grep -q 'nodes "n1" not found' <<<"$out" || fail "kubectl get node n1: $out"
out=$(drv delete-node n1 2>&1) || fail "second delete-node n1: $out"
# its DaemonSet and mirror pods are still bound to it: listed, not counted for a drain
[ "$(drv node-get n1)" = "exists=0 ready=0 unschedulable=0 pods=0 daemonset_pods=1 mirror_pods=1" ] ||
    fail "node-get n1 deleted: $(drv node-get n1)"
kk get node n2 >/dev/null || fail "n2 gone with n1"

# ---- readyz while etcd is stopped ----
log "readyz without etcd"
kill -STOP "$ETCD_PID"
out=$(drv readyz 2>&1)
rc=$?
kill -CONT "$ETCD_PID"
[ $rc -eq 1 ] || fail "readyz while etcd is stopped: exit $rc: $out"
grep -q 'HTTP 500' <<<"$out" || fail "readyz while etcd is stopped: $out"
wait_for "readyz back" eval '[ "$(drv readyz 2>/dev/null)" = ok ]'

log "ok"
