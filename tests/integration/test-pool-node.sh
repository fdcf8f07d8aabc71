#!/usr/bin/env bash
# A node pool on the host provider (`imgbuild pool create --role node`), rolled under a workload,
# against a real etcd and the Kubernetes API stand-in (`imgbuild kube-apiserver`, kube-lib.sh),
# everything a user does through the REAL kubectl (newest on this machine, a fresh HOME per call).
# Members: bootagent's node role with units = exec, tests/kubelet-standin as their kubelet (a
# STAND-IN: it registers the Node and reports it Ready, runs no pods).
#
# STAND-IN for the pod side of Kubernetes: the stand-in API server runs no controllers for pods,
# so this test runs a background loop (controller_loop) that plays the ReplicaSet controller, the
# scheduler and the kubelet for the pods of app=web: it keeps REPLICAS pods (ownerReferences to a
# ReplicaSet, so a drain evicts them), binds each new one to the schedulable Ready Node with the
# fewest of them (spec.nodeName) and sets it Running and Ready through pods/NAME/status.
#
# Cases:
#   create: 3 members, each Node registered under its member's name (pool.json), Ready;
#   roll to node@2 while a writer updates a ConfigMap through kubectl and a sampler reads the PDB
#     (minAvailable REPLICAS-1) all the time: afterwards every Node Ready and uncordoned, exactly
#     the members' Nodes (no stale Node of a removed member), no pod on a missing Node, the PDB
#     never violated (currentHealthy >= desiredHealthy in every sample), every acknowledged
#     ConfigMap write present, pods removed only through evictions;
#   a drain blocked past --drain-timeout (the PDB raised to minAvailable REPLICAS): the roll stops
#     with exit status 1 and a message naming the pod and the budget; `pool status` shows the
#     member leaving and cordoned, the surge member active, the roll target; --abort uncordons,
#     removes the surge member and its Node: size 3, all on node@2;
#   blocked again, the blocker removed, the roll run again: it resumes and finishes (node@3).
set -uo pipefail

# Ports: this test's range is 17500-19999 (tests/integration/README.md): etcd and the API
# stand-in in 19500-19999, the pool's local cloud a block of 500 in 17500-19499.
KUBE_LIB_NAME=test-pool-node
KUBE_LIB_PORTS="19500 19999"
# shellcheck source=kube-lib.sh
. "${IMGBUILD_SOURCE_DIR:?}/tests/integration/kube-lib.sh"
: "${BOOTAGENT:?}"
KUBELET_STANDIN=${IMGBUILD_BINARY_DIR:?}/tests/kubelet-standin
[ -x "$KUBELET_STANDIN" ] || fail "$KUBELET_STANDIN not built"

export IMGBUILD_STATE_DIR=$T/state
export IMGBUILD_BOOTAGENT=$BOOTAGENT
POOL=nodes
POOL_DIR=$IMGBUILD_STATE_DIR/pools/$POOL
PORT_BASE=$((17500 + (RANDOM % 4) * 500))
REPLICAS=3
BG_PIDS=()

pool() { "$IMGBUILD" pool "$@"; }
# What the pool recorded of its processes: the local cloud and each member's kubelet.
pool_pids() {
    [ -f "$POOL_DIR/pool.json" ] || return 0
    jq -r '.provider.serve_pid // empty' "$POOL_DIR/pool.json"
    cat "$POOL_DIR"/members/*/var/lib/bootagent/kubelet.service.pid 2>/dev/null || true
}
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
kube_lib_cleanup() {
    local p pids f
    rm -f "$T"/*.on
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "${rc:-0}" -ne 0 ] && [ "${rc:-0}" -ne 77 ]; then
        for f in "$T"/*.log "$POOL_DIR"/serve.log "$POOL_DIR"/members/*/agent.log \
            "$POOL_DIR"/members/*/var/lib/bootagent/kubelet.service.log; do
            [ -f "$f" ] && { echo "==== $f"; tail -n 30 "$f"; }
        done
    fi
    pids=$(pool_pids)
    [ -d "$POOL_DIR" ] && { pool delete "$POOL" || echo "FAIL: pool delete" >&2; }
    for p in $pids; do
        if running "$p"; then
            echo "FAIL: process $p survived pool delete" >&2
            kill -KILL -- "-$p" 2>/dev/null
        fi
    done
}

kube_start_etcd
cd "$T" || exit 1
kube_pki
kube_api_flags
kube_start_api
# The pool takes a JSON kubeconfig; kubectl reads it as well.
cat >admin.json <<EOF
{"apiVersion": "v1", "kind": "Config",
 "clusters": [{"name": "standin", "cluster": {"certificate-authority": "$T/ca.pem", "server": "$API"}}],
 "users": [{"name": "admin", "user": {"client-certificate": "$T/admin.pem", "client-key": "$T/admin.key"}}],
 "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "admin"}}],
 "current-context": "standin"}
EOF
kube_wait_readyz admin.json
KC=${KUBECTLS[-1]}
kk() { k "$KC" admin.json "$@"; }
wait_for() { # DESCRIPTION COMMAND...: until the command succeeds (120 s: far above what a loaded machine needs)
    local what=$1 end=$((SECONDS + 120))
    shift
    while [ "$SECONDS" -lt "$end" ]; do
        "$@" && return 0
        sleep 0.2
    done
    fail "timed out waiting for $what"
}

# ---- the cluster side of a join, as kubeadm init leaves it (as test-agent-node.sh) ----
log "bootstrap token, cluster-info, auto-approval"
TOKEN=07401b.f395accd246ae52d
printf '%s\n' "$TOKEN" >token
chmod 600 token
cat >cluster.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-07401b, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: 07401b
  token-secret: f395accd246ae52d
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "kubeadm:node-autoapprove-bootstrap"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:bootstrappers:kubeadm:default-node-token"}]
EOF
out=$(kk apply --validate=false -f cluster.yaml 2>&1) || fail "token and binding: $out"
cat >cluster-info.kubeconfig <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 ca.pem)
    server: $API
  name: ""
contexts: null
current-context: ""
kind: Config
preferences: {}
users: null
EOF
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
h=$(printf '{"alg":"HS256","kid":"07401b"}' | b64url)
jws="$h..$(printf '%s.%s' "$h" "$(b64url <cluster-info.kubeconfig)" |
    openssl dgst -sha256 -mac HMAC -macopt key:f395accd246ae52d -binary | b64url)"
out=$(kk create configmap cluster-info -n kube-public --from-file=kubeconfig=cluster-info.kubeconfig \
    --from-literal=jws-kubeconfig-07401b="$jws" 2>&1) || fail "cluster-info: $out"
PIN="sha256:$(openssl x509 -in ca.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)"

# ---- helpers over pool.json and the API ----
pool_json() { cat "$POOL_DIR/pool.json"; }
# The Node names of the pool's members (optionally of those in STATE), sorted.
member_nodes() {
    pool_json | jq -r --arg s "${1:-}" '.provider.instances as $i | .members[] | select($s == "" or .state == $s) |
        .id as $id | $i[] | select(.id == $id) | .node_name' | sort
}
api_nodes() { kk get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }
# Every Node the API has is a member's, Ready and schedulable, and every member has one.
nodes_serving() {
    local want got bad
    want=$(member_nodes) got=$(api_nodes) || return 1
    [ "$want" = "$got" ] || { echo "Nodes '$got' are not the members' '$want'"; return 1; }
    bad=$(kk get nodes -o json | jq -r '.items[] | select((.spec.unschedulable // false) or
        (any(.status.conditions[]?; .type == "Ready" and .status == "True") | not)) | .metadata.name') || return 1
    [ -z "$bad" ] || { echo "not Ready or cordoned: $bad"; return 1; }
}
unschedulable() { kk get node "$1" -o jsonpath='{.spec.unschedulable}'; }

# ---- create ----
log "create (port base $PORT_BASE)"
pool create "$POOL" --provider host --role node --template node@1 --size 3 --port-base "$PORT_BASE" \
    --kubeconfig admin.json --kubelet "$KUBELET_STANDIN" --kube-endpoint "$API" --kube-ca-pin "$PIN" \
    --kube-token-file token >create.out 2>create.log || fail "create: $(cat create.log)"
grep -q "pool $POOL: 3 members on node@1" create.log || fail "create said: $(cat create.log)"
[ "$(member_nodes | tr '\n' ' ')" = "nodes-1 nodes-2 nodes-3 " ] || fail "member Node names: $(member_nodes)"
out=$(nodes_serving) || fail "after create: $out"
out=$(kk get nodes nodes-1) && grep -Eq '^nodes-1 +Ready +<none> ' <<<"$out" || fail "kubectl get nodes: $out"
# the token is in no command line, log or config of the members, only in the user-data (0600)
grep -rq f395accd246ae52d create.log "$POOL_DIR"/members/*/agent.log "$POOL_DIR"/members/*/etc "$POOL_DIR"/serve.log &&
    fail "the token was logged or written to a member's config"
[ "$(stat -c %a "$POOL_DIR/pool.json")" = 600 ] && [ "$(stat -c %a "$POOL_DIR/cloud/cloud.json")" = 600 ] ||
    fail "pool.json / cloud.json not 0600"
out=$(pool status "$POOL") || fail "status: $out"
echo "$out" >status-create.out
[ "$(grep -Ec '^[0-9a-f-]{36} +127\.0\.0\.[0-9]+ +node@1 +active +running +Ready +healthy +done$' <<<"$out")" = 3 ] ||
    fail "status after create: $out"

# ---- the workload: REPLICAS pods of app=web (the controller loop), a PDB, a ConfigMap ----
log "workload"
cat >workload.yaml <<EOF
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web-pdb, namespace: default}
spec:
  minAvailable: $((REPLICAS - 1))
  selector: {matchLabels: {app: web}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: default}
data: {k0: "0"}
EOF
out=$(kk apply --validate=false -f workload.yaml 2>&1) || fail "workload: $out"
ready_json='{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}'
# STAND-IN for the ReplicaSet controller, the scheduler and the kubelet (see the top).
controller_loop() {
    local i=0 nodes pods ready readyall p node n best count c out
    while [ -e "$T/controller.on" ]; do
        sleep 0.3
        nodes=$(kk get nodes -o json) && pods=$(kk get pods -l app=web -o json) || continue
        readyall=$(jq -r '.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) |
            .metadata.name' <<<"$nodes")
        ready=$(jq -r '.items[] | select(.spec.unschedulable // false | not) |
            select(any(.status.conditions[]?; .type == "Ready" and .status == "True")) | .metadata.name' <<<"$nodes")
        # the kubelet: a pod bound to a Ready Node becomes Running and Ready
        for p in $(jq -r '.items[] | select(.metadata.deletionTimestamp == null) |
            select(any(.status.conditions[]?; .type == "Ready" and .status == "True") | not) |
            "\(.metadata.name)/\(.spec.nodeName)"' <<<"$pods"); do
            grep -qx "${p#*/}" <<<"$readyall" &&
                kk patch pod "${p%/*}" --subresource=status --type=merge -p "$ready_json" >/dev/null
        done
        # the ReplicaSet controller and the scheduler
        n=$(jq '[.items[] | select(.metadata.deletionTimestamp == null)] | length' <<<"$pods")
        [ -n "$ready" ] || continue
        while [ "$n" -lt "$REPLICAS" ]; do
            best='' count=''
            for node in $ready; do
                c=$(jq --arg n "$node" '[.items[] | select(.spec.nodeName == $n)] | length' <<<"$pods")
                if [ -z "$best" ] || [ "$c" -lt "$count" ]; then best=$node count=$c; fi
            done
            # as a scheduler whose cache has caught up: never a node cordoned by now
            out=$(kk get node "$best" -o jsonpath='{.spec.unschedulable}') && [ -z "$out" ] || continue 2
            i=$((i + 1))
            cat >"$T/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: web-$i
  namespace: default
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-rs, uid: 00000000-0000-0000-0000-000000000001, controller: true}]
spec: {nodeName: $best, containers: [{name: web, image: web}]}
EOF
            kk create --validate=false -f "$T/pod.yaml" >/dev/null || continue 2
            kk patch pod "web-$i" --subresource=status --type=merge -p "$ready_json" >/dev/null
            pods=$(jq --arg n "$best" '.items += [{spec: {nodeName: $n}}]' <<<"$pods")
            n=$((n + 1))
        done
    done
}
touch controller.on
controller_loop >controller.log 2>&1 &
BG_PIDS+=($!)
pdb_status() { kk get pdb web-pdb -o jsonpath='{.status.currentHealthy} {.status.desiredHealthy}'; }
healthy_pods() { [ "$(pdb_status)" = "$REPLICAS $((REPLICAS - 1))" ]; }
wait_for "$REPLICAS healthy pods" healthy_pods

# The PDB sampler: every sample of the budget's status, a line "VIOLATED" when it is broken.
sampler_loop() {
    local s h d
    while [ -e "$T/sampler.on" ]; do
        s=$(pdb_status 2>/dev/null) || continue
        read -r h d <<<"$s"
        echo "$h $d" >>"$T/pdb.samples"
        [[ "$h" =~ ^[0-9]+$ && "$d" =~ ^[0-9]+$ ]] || { echo "BAD '$s'" >>"$T/pdb.samples"; continue; }
        [ "$h" -ge "$d" ] || echo "VIOLATED $h < $d at $(date +%T.%3N)" >>"$T/pdb.samples"
        sleep 0.2
    done
}
# The writer: one ConfigMap key per update; an acknowledged update is recorded.
writer_loop() {
    local i=0
    while [ -e "$T/writer.on" ]; do
        i=$((i + 1))
        kk patch configmap app-config --type=merge -p "{\"data\":{\"k$i\":\"v$i\"}}" >/dev/null 2>>"$T/writer.err" &&
            echo "$i" >>"$T/writes.acked"
        sleep 0.2
    done
}
start_watchers() {
    touch sampler.on writer.on
    sampler_loop 2>sampler.err &
    BG_PIDS+=($!)
    writer_loop &
    BG_PIDS+=($!)
}
stop_watchers() { # then check what they saw
    local acked data
    rm -f sampler.on writer.on
    sleep 1
    [ -s pdb.samples ] || fail "no PDB sample taken"
    grep -E 'VIOLATED|BAD' pdb.samples && fail "the PDB was violated (samples: $(wc -l <pdb.samples))"
    [ -s writes.acked ] || fail "no ConfigMap write acknowledged: $(tail -3 writer.err)"
    data=$(kk get configmap app-config -o json) || fail "get configmap"
    acked=$(wc -l <writes.acked)
    while read -r i; do
        [ "$(jq -r --arg k "k$i" '.data[$k] // empty' <<<"$data")" = "v$i" ] || fail "acknowledged write k$i missing"
    done <writes.acked
    log "PDB samples: $(wc -l <pdb.samples), all currentHealthy >= desiredHealthy; $acked acknowledged writes present"
}
# No pod on a Node that is gone, and none DELETEd but through an eviction.
pods_consistent() {
    local bound nodes
    bound=$(kk get pods -l app=web -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort -u)
    nodes=$(api_nodes)
    [ -z "$(comm -23 <(echo "$bound") <(echo "$nodes"))" ] || fail "pods on missing Nodes: $bound (Nodes: $nodes)"
    grep -E 'kube-apiserver: DELETE /api/v1/(namespaces/[^/ ]+/)?pods' api.log && fail "a pod was DELETEd"
    return 0
}

# ---- roll under the workload ----
log "roll to node@2 under the workload"
start_watchers
pool roll "$POOL" --template node@2 >roll1.out 2>roll1.log || fail "roll: $(cat roll1.log)"
stop_watchers
grep -q "pool $POOL: every member is on the new template" roll1.log || fail "roll said: $(cat roll1.log)"
grep -Eq "pool $POOL: Node nodes-1 drained: [1-9][0-9]* evicted" roll1.log || fail "no eviction from nodes-1: $(cat roll1.log)"
[ "$(member_nodes | tr '\n' ' ')" = "nodes-4 nodes-5 nodes-6 " ] || fail "members after the roll: $(member_nodes)"
[ "$(pool_json | jq -r '[.members[].template] | unique | join(",")')" = node@2 ] || fail "templates: $(pool_json | jq -c .members)"
out=$(nodes_serving) || fail "after the roll: $out"
for n in nodes-1 nodes-2 nodes-3; do
    out=$(kk get node "$n" 2>&1) && fail "stale Node $n: $out"
done
pods_consistent
wait_for "$REPLICAS healthy pods" healthy_pods

# ---- a drain blocked past --drain-timeout ----
log "blocked drain"
out=$(kk patch pdb web-pdb --type=merge -p "{\"spec\":{\"minAvailable\":$REPLICAS}}" 2>&1) || fail "raise the PDB: $out"
wait_for "the raised budget" eval '[ "$(pdb_status)" = "$REPLICAS $REPLICAS" ]'
pool roll "$POOL" --template node@3 --drain-timeout 5 >roll2.out 2>roll2.log
rc=$?
[ $rc -eq 1 ] || fail "blocked roll: exit $rc: $(cat roll2.log)"
grep -Eq "pool $POOL: roll failed: drain of node nodes-4 blocked for [0-9]+ s: default/web-[0-9]+: Cannot evict pod as it would violate the pod's disruption budget\. \(causes: The disruption budget web-pdb needs $REPLICAS healthy pods and has $REPLICAS currently\); member [0-9a-f-]+ stays leaving and cordoned" roll2.log ||
    fail "blocked roll message: $(cat roll2.log)"
# pool.json and pool status agree: nodes-4 leaving and cordoned, the surge member nodes-7 active
[ "$(member_nodes leaving)" = nodes-4 ] && [ "$(member_nodes active | tr '\n' ' ')" = "nodes-5 nodes-6 nodes-7 " ] ||
    fail "members after the blocked roll: $(pool_json | jq -c .members)"
st=$(pool status "$POOL" --json) || fail "status --json"
[ "$(jq -r .roll_target <<<"$st")" = node@3 ] || fail "roll target: $st"
[ "$(jq -r '[.members[] | select(.state == "leaving") | .node.state] | join(",")' <<<"$st")" = cordoned ] ||
    fail "status of the leaving member: $st"
[ "$(unschedulable nodes-4)" = true ] || fail "nodes-4 not cordoned"
out=$(pool status "$POOL") && grep -q "rolling to node@3" <<<"$out" || fail "status: $out"
echo "$out" >status-blocked.out

log "abort"
pool roll "$POOL" --abort >abort.out 2>abort.log || fail "abort: $(cat abort.log)"
[ "$(member_nodes | tr '\n' ' ')" = "nodes-4 nodes-5 nodes-6 " ] || fail "members after abort: $(member_nodes)"
[ "$(pool_json | jq -r '[.members[] | "\(.template)/\(.state)"] | unique | join(",")')" = node@2/active ] ||
    fail "after abort: $(pool_json | jq -c .members)"
[ "$(pool_json | jq -r '.roll_target // empty')" = "" ] || fail "roll target after abort: $(pool_json | jq -c .)"
out=$(nodes_serving) || fail "after abort: $out"
out=$(kk get node nodes-7 2>&1) && fail "the surge member's Node is still there: $out"
pods_consistent

log "blocked again, then the blocker removed: the roll resumes and finishes"
pool roll "$POOL" --template node@3 --drain-timeout 3 >roll3.out 2>roll3.log && fail "roll not blocked: $(cat roll3.log)"
grep -q "blocked for" roll3.log || fail "second blocked roll: $(cat roll3.log)"
out=$(kk patch pdb web-pdb --type=merge -p "{\"spec\":{\"minAvailable\":$((REPLICAS - 1))}}" 2>&1) || fail "lower the PDB: $out"
start_watchers
pool roll "$POOL" --template node@3 >roll4.out 2>roll4.log || fail "resumed roll: $(cat roll4.log)"
stop_watchers
grep -q "pool $POOL: every member is on the new template" roll4.log || fail "resumed roll said: $(cat roll4.log)"
[ "$(pool_json | jq -r '[.members[] | "\(.template)/\(.state)"] | unique | join(",")')" = node@3/active ] ||
    fail "after the resumed roll: $(pool_json | jq -c .members)"
[ "$(pool_json | jq '.members | length')" = 3 ] || fail "size after the resumed roll: $(pool_json | jq -c .members)"
out=$(nodes_serving) || fail "after the resumed roll: $out"
for n in nodes-4 nodes-5 nodes-6 nodes-7; do
    out=$(kk get node "$n" 2>&1) && fail "stale Node $n: $out"
done
pods_consistent
wait_for "$REPLICAS healthy pods" healthy_pods
log "ok"
