#!/usr/bin/env bash
# `imgbuild kube-apiserver` (the Kubernetes API stand-in) on a real etcd, checked with the REAL
# kubectl, oldest and newest on these machines (kubectl.1.27 and kubectl.1.33 beside the gcloud
# dispatcher; a fresh HOME and cache dir for each): flag validation as kube-apiserver does it,
# /readyz (also while etcd is stopped), namespaces, configmaps, secrets, a Node by apply and its
# status from the node's own certificate, the Table form of `get nodes`, an update conflict,
# bootstrap tokens (valid: 403 on nodes; expired, wrong secret: 401), and the objects under
# /registry/ in etcd (etcdctl).
set -uo pipefail

: "${IMGBUILD:?}" "${IMGBUILD_SOURCE_DIR:?}"
for tool in etcd etcdctl openssl jq kubectl; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
KDIR=$(dirname "$(readlink -f "$(command -v kubectl)")")
KUBECTLS=()
for v in 1.27 1.33; do
    [ -x "$KDIR/kubectl.$v" ] && KUBECTLS+=("$KDIR/kubectl.$v")
done
[ ${#KUBECTLS[@]} -gt 0 ] || { echo "skipped: no kubectl.1.27 / kubectl.1.33 beside $KDIR/kubectl"; exit 77; }

T=$(mktemp -d /tmp/test-kube-apiserver-XXXXXX)
ETCD_PID=
API_PID=
cleanup() {
    local rc=$?
    # only the processes this test started, by PID (etcd may be stopped: continue it first)
    if [ -n "$API_PID" ]; then kill "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null; fi
    if [ -n "$ETCD_PID" ]; then
        kill -CONT "$ETCD_PID" 2>/dev/null
        kill "$ETCD_PID" 2>/dev/null
        wait "$ETCD_PID" 2>/dev/null
    fi
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        for f in "$T"/api.log "$T"/etcd.log; do
            [ -f "$f" ] && { echo "==== $f"; tail -n 40 "$f"; }
        done
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "== $*"; }

# Ports: this test's range is 3000-4999 (tests/integration/README.md).
pick_port() {
    local p
    while :; do
        p=$((3000 + RANDOM % 1990))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 2))") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}
BASE=$(pick_port)
ETCD_PORT=$BASE
API_PORT=$((BASE + 2))
ETCD_URL=http://127.0.0.1:$ETCD_PORT

# ---- etcd ----
etcd --name kube --data-dir "$T/etcd" --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$((BASE + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 1))" \
    --initial-cluster "kube=http://127.0.0.1:$((BASE + 1))" --log-level warn >"$T/etcd.log" 2>&1 &
ETCD_PID=$!
end=$((SECONDS + 60)) # (this and the waits below: far above what a loaded machine needs)
while [ "$SECONDS" -lt "$end" ]; do
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" endpoint health >/dev/null 2>&1 && break
    sleep 0.1
done
ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" endpoint health >/dev/null 2>&1 || fail "etcd did not start"

# ---- PKI (openssl) ----
cd "$T" || exit 1
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec ca.key
openssl req -x509 -new -key ca.key -subj /CN=kubernetes-ca -days 2 -out ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || fail "CA"
leaf() { # name subject eku [san]
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" || fail "csr $1"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
        "$3" "${4:-}" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" \
        -out "$1.pem" 2>/dev/null || fail "cert $1"
}
leaf apiserver /CN=kube-apiserver serverAuth subjectAltName=IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default
leaf admin "/O=system:masters/CN=kubernetes-admin" clientAuth
leaf node1 "/O=system:nodes/CN=system:node:n1" clientAuth
leaf other "/CN=someone" clientAuth
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub

FLAGS=(--etcd-servers "$ETCD_URL" --tls-cert-file apiserver.pem --tls-private-key-file apiserver.key
    --client-ca-file ca.pem --secure-port "$API_PORT" --bind-address 127.0.0.1
    --service-account-key-file sa.pub --service-account-signing-key-file sa.key
    --service-account-issuer https://kubernetes.default.svc.cluster.local
    --service-cluster-ip-range 10.96.0.0/12 --enable-bootstrap-token-auth --authorization-mode Node,RBAC
    --allow-privileged=true --v=2)

# ---- flag validation: each refused with kube-apiserver's words, before listening ----
refused() { # WANT-IN-MESSAGE ARGS...
    local want=$1 out
    shift
    out=$("$IMGBUILD" kube-apiserver "$@" 2>&1) && fail "kube-apiserver accepted: $*"
    grep -qF -- "$want" <<<"$out" || fail "kube-apiserver $*: expected '$want', got: $out"
}
log "flag validation"
refused "unknown flag: --no-such-flag" "${FLAGS[@]}" --no-such-flag=1
refused "--etcd-servers must be specified" --tls-cert-file apiserver.pem --tls-private-key-file apiserver.key \
    --service-account-signing-key-file sa.key --service-account-issuer https://x
refused "service-account-issuer is a required flag" --etcd-servers "$ETCD_URL" --tls-cert-file apiserver.pem \
    --tls-private-key-file apiserver.key
refused "tls: private key does not match public key" "${FLAGS[@]}" --tls-private-key-file admin.key
refused "no such file or directory" "${FLAGS[@]}" --client-ca-file /nonexistent/ca.pem
refused "--secure-port 0 must be between 1 and 65535" "${FLAGS[@]}" --secure-port 0
refused 'authorization-mode "Bogus" is not a valid mode' "${FLAGS[@]}" --authorization-mode Node,Bogus
refused "service-cluster-ip-range[0] is not a valid cidr" "${FLAGS[@]}" --service-cluster-ip-range 10.96.0.0
refused 'invalid argument "maybe" for "--enable-bootstrap-token-auth" flag' "${FLAGS[@]}" --enable-bootstrap-token-auth=maybe

# ---- start ----
"$IMGBUILD" kube-apiserver "${FLAGS[@]}" >api.log 2>&1 &
API_PID=$!
end=$((SECONDS + 60))
while [ "$SECONDS" -lt "$end" ]; do
    grep -q '^kube-apiserver: ready$' api.log && break
    kill -0 "$API_PID" 2>/dev/null || fail "kube-apiserver exited"
    sleep 0.1
done
grep -q '^kube-apiserver: ready$' api.log || fail "kube-apiserver not ready"
grep -q -- '--allow-privileged accepted but not acted upon' api.log || fail "ignored flags not logged"

kubeconfig() { # FILE USER-YAML
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {certificate-authority: $T/ca.pem, server: "https://127.0.0.1:$API_PORT"}
users:
- name: u
  user: $2
contexts:
- name: standin
  context: {cluster: standin, user: u}
current-context: standin
EOF
}
kubeconfig admin.conf "{client-certificate: $T/admin.pem, client-key: $T/admin.key}"
kubeconfig node1.conf "{client-certificate: $T/node1.pem, client-key: $T/node1.key}"
kubeconfig other.conf "{client-certificate: $T/other.pem, client-key: $T/other.key}"
kubeconfig token.conf "{token: 07401b.f395accd246ae52d}"
kubeconfig expired.conf "{token: abcdef.0123456789abcdef}"
kubeconfig wrong.conf "{token: 07401b.f395accd246ae52e}"

run=0
k() { # KUBECTL CONFIG ARGS...: a fresh HOME and cache dir for every call
    local kc=$1 conf=$2
    shift 2
    run=$((run + 1))
    mkdir -p "$T/home.$run"
    HOME=$T/home.$run "$kc" --kubeconfig "$T/$conf" --cache-dir "$T/home.$run/cache" --request-timeout 20s "$@"
}

# readyz is up once the system namespaces exist
end=$((SECONDS + 60))
while [ "$SECONDS" -lt "$end" ]; do
    [ "$(k "${KUBECTLS[0]}" admin.conf get --raw /readyz 2>/dev/null)" = ok ] && break
    sleep 0.2
done

for kc in "${KUBECTLS[@]}"; do
    v=${kc##*kubectl.}
    ns=team-${v/./-}
    log "kubectl $v"
    [ "$(k "$kc" admin.conf get --raw /readyz)" = ok ] || fail "$v: readyz not ok"
    [ "$(k "$kc" admin.conf get --raw /livez)" = ok ] || fail "$v: livez not ok"
    out=$(k "$kc" admin.conf get namespaces -o name) && grep -qx namespace/kube-system <<<"$out" || fail "$v: no kube-system"

    out=$(k "$kc" admin.conf create namespace "$ns") || fail "$v: create namespace: $out"
    out=$(k "$kc" admin.conf create namespace "$ns" 2>&1) && fail "$v: second create namespace succeeded"
    grep -q 'AlreadyExists' <<<"$out" || fail "$v: second create namespace: $out"
    k "$kc" admin.conf create configmap cfg -n "$ns" --from-literal=a=1 --from-literal=b=two >/dev/null ||
        fail "$v: create configmap"
    json=$(k "$kc" admin.conf get configmap cfg -n "$ns" -o json) || fail "$v: get configmap"
    [ "$(jq -r '.data.b' <<<"$json")" = two ] || fail "$v: configmap data: $json"
    [ "$(jq -r '.metadata.namespace' <<<"$json")" = "$ns" ] || fail "$v: configmap namespace: $json"
    jq -e '.metadata.uid and .metadata.resourceVersion and .metadata.creationTimestamp' <<<"$json" >/dev/null ||
        fail "$v: configmap metadata: $json"
    out=$(k "$kc" admin.conf get configmaps -n "$ns") && grep -Eq '^cfg +2 ' <<<"$out" || fail "$v: configmap Table"
    out=$(k "$kc" admin.conf create configmap cfg -n no-such-ns --from-literal=a=1 2>&1) &&
        fail "$v: create in a missing namespace succeeded"
    grep -q 'namespaces "no-such-ns" not found' <<<"$out" || fail "$v: missing namespace: $out"
    k "$kc" admin.conf create secret generic s1 -n "$ns" --from-literal=password=hunter2 >/dev/null ||
        fail "$v: create secret"
    [ "$(k "$kc" admin.conf get secret s1 -n "$ns" -o jsonpath='{.data.password}' | base64 -d)" = hunter2 ] ||
        fail "$v: secret data"

    # update conflict: a PUT with the resourceVersion from before someone else's write
    k "$kc" admin.conf get configmap cfg -n "$ns" -o json >old.json || fail "$v: get"
    k "$kc" admin.conf label configmap cfg -n "$ns" changed=yes >/dev/null || fail "$v: label (merge patch)"
    out=$(k "$kc" admin.conf replace --validate=false -f old.json 2>&1) && fail "$v: stale replace succeeded"
    grep -q 'the object has been modified; please apply your changes to the latest version' <<<"$out" ||
        fail "$v: stale replace: $out"
    out=$(k "$kc" admin.conf get configmap cfg -n "$ns" -o jsonpath='{.metadata.labels.changed}') && grep -qx yes <<<"$out" ||
        fail "$v: the label is gone after the refused replace"

    # a Node by apply (no OpenAPI documents are served, so client-side validation is off)
    node=node-${v/./-}
    cat >node.yaml <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $node
  labels: {node-role.kubernetes.io/worker: ""}
EOF
    out=$(k "$kc" admin.conf apply --validate=false -f node.yaml) && grep -q "node/$node created" <<<"$out" || fail "$v: apply node"
    sed -i 's/worker: ""}/worker: "", applied: "twice"}/' node.yaml
    out=$(k "$kc" admin.conf apply --validate=false -f node.yaml) && grep -q "node/$node configured" <<<"$out" ||
        fail "$v: second apply (strategic merge patch)"
    [ "$(k "$kc" admin.conf get node "$node" -o jsonpath='{.metadata.labels.applied}')" = twice ] ||
        fail "$v: applied label"
    out=$(k "$kc" admin.conf get nodes) && grep -Eq "^$node +Unknown +worker +[0-9]+s" <<<"$out" || fail "$v: get nodes: $out"
    grep -Eq '^NAME +STATUS +ROLES +AGE +VERSION$' <<<"${out%%$'\n'*}" ||
        fail "$v: Table header: $out"

    # cordon: strategic merge patch of spec.unschedulable
    out=$(k "$kc" admin.conf cordon "$node") && grep -q cordoned <<<"$out" || fail "$v: cordon"
    out=$(k "$kc" admin.conf get nodes "$node") && grep -q 'Unknown,SchedulingDisabled' <<<"$out" || fail "$v: cordoned status"
    k "$kc" admin.conf uncordon "$node" >/dev/null || fail "$v: uncordon"
    [ -z "$(k "$kc" admin.conf get node "$node" -o jsonpath='{.spec.unschedulable}')" ] || fail "$v: still unschedulable"

    # a user with a certificate but no role: 403 with upstream's message
    out=$(k "$kc" other.conf get configmaps -n "$ns" 2>&1) && fail "$v: unprivileged list succeeded"
    grep -q "configmaps is forbidden: User \"someone\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"$ns\"" <<<"$out" ||
        fail "$v: forbidden message: $out"
done

# ---- a node's own certificate: its Node and status, not another's ----
kc=${KUBECTLS[-1]}
log "node credential"
cat >n1.yaml <<'EOF'
apiVersion: v1
kind: Node
metadata: {name: n1}
EOF
k "$kc" node1.conf apply --validate=false -f n1.yaml >/dev/null || fail "node n1 registering itself"
cat >n2.yaml <<'EOF'
apiVersion: v1
kind: Node
metadata: {name: n2}
EOF
out=$(k "$kc" node1.conf apply --validate=false -f n2.yaml 2>&1) && fail "node n1 created n2"
grep -q 'forbidden' <<<"$out" || fail "n1 creating n2: $out"
status='{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"stand-in kubelet"}],"nodeInfo":{"kubeletVersion":"v1.31.0"},"addresses":[{"type":"InternalIP","address":"10.0.0.5"}]}}'
k "$kc" node1.conf patch node n1 --subresource=status --type=strategic -p "$status" >/dev/null || fail "n1 status patch"
out=$(k "$kc" admin.conf get nodes n1) && grep -Eq '^n1 +Ready +<none> +[0-9]+s +v1\.31\.0$' <<<"$out" || fail "n1 not Ready: $out"
out=$(k "$kc" admin.conf get nodes n1 -o wide) && grep -q '10\.0\.0\.5' <<<"$out" || fail "wide: no InternalIP"
# a PATCH of the main resource does not change the status
k "$kc" admin.conf patch node n1 --type=merge -p '{"status":{"conditions":[]},"metadata":{"labels":{"l":"1"}}}' >/dev/null ||
    fail "main patch"
out=$(k "$kc" admin.conf get nodes n1) && grep -q ' Ready ' <<<"$out" || fail "status changed through the main resource"
first=${KUBECTLS[0]##*kubectl.}
out=$(k "$kc" node1.conf patch node "node-${first/./-}" --subresource=status --type=merge -p "$status" 2>&1) &&
    fail "n1 patched another node's status"
grep -q 'forbidden' <<<"$out" || fail "n1 patching another node: $out"

# ---- bootstrap tokens (A.3, A.4) ----
log "bootstrap tokens"
cat >tokens.yaml <<'EOF'
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-07401b, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: 07401b
  token-secret: f395accd246ae52d
  usage-bootstrap-authentication: "true"
  auth-extra-groups: system:bootstrappers:worker
---
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-abcdef, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: abcdef
  token-secret: 0123456789abcdef
  expiration: "2020-01-01T00:00:00Z"
  usage-bootstrap-authentication: "true"
EOF
k "$kc" admin.conf apply --validate=false -f tokens.yaml >/dev/null || fail "token secrets"
for kc in "${KUBECTLS[@]}"; do
    v=${kc##*kubectl.}
    [ "$(k "$kc" token.conf get --raw /readyz)" = ok ] || fail "$v: readyz with a token"
    out=$(k "$kc" token.conf get nodes 2>&1) && fail "$v: a bootstrapper listed nodes"
    grep -q 'nodes is forbidden: User "system:bootstrap:07401b" cannot list resource "nodes"' <<<"$out" ||
        fail "$v: bootstrapper get nodes: $out"
    out=$(k "$kc" expired.conf get nodes 2>&1) && fail "$v: an expired token listed nodes"
    grep -Eq 'Unauthorized|provide credentials' <<<"$out" || fail "$v: expired token: $out"
    out=$(k "$kc" wrong.conf get nodes 2>&1) && fail "$v: a wrong token secret listed nodes"
    grep -Eq 'Unauthorized|provide credentials' <<<"$out" || fail "$v: wrong token secret: $out"
done
# usage-bootstrap-authentication off: the same token stops working
k "$kc" admin.conf patch secret bootstrap-token-07401b -n kube-system --type=merge \
    -p '{"stringData":{"usage-bootstrap-authentication":"false"}}' >/dev/null || fail "usage patch"
out=$(k "$kc" token.conf get nodes 2>&1) && fail "a token without the authentication usage worked"
grep -Eq 'Unauthorized|provide credentials' <<<"$out" || fail "token without usage: $out"

# ---- etcd holds the objects where kube-apiserver keeps them ----
log "etcd keys"
keys=$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" get --prefix /registry/ --keys-only | grep -v '^$')
for want in /registry/namespaces/kube-system /registry/namespaces/team-1-33 /registry/configmaps/team-1-33/cfg \
    /registry/secrets/kube-system/bootstrap-token-07401b /registry/minions/n1 /registry/minions/node-1-33; do
    grep -qx "$want" <<<"$keys" || fail "etcd has no $want: $keys"
done
value=$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" get /registry/configmaps/team-1-33/cfg --print-value-only)
[ "$(jq -r '.data.a' <<<"$value")" = 1 ] || fail "etcd value: $value"
rv=$(k "$kc" admin.conf get configmap cfg -n team-1-33 -o jsonpath='{.metadata.resourceVersion}')
modrev=$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" get /registry/configmaps/team-1-33/cfg -w json | jq -r '.kvs[0].mod_revision')
[ "$rv" = "$modrev" ] || fail "resourceVersion $rv is not the etcd mod_revision $modrev"

# ---- readyz follows etcd ----
log "readyz without etcd"
kill -STOP "$ETCD_PID"
out=$(k "$kc" admin.conf get --raw '/readyz?verbose' 2>&1) && fail "readyz ok while etcd is stopped: $out"
[ "$(k "$kc" admin.conf get --raw /livez)" = ok ] || fail "livez failed while etcd is stopped"
kill -CONT "$ETCD_PID"
end=$((SECONDS + 60))
while [ "$SECONDS" -lt "$end" ]; do
    [ "$(k "$kc" admin.conf get --raw /readyz 2>/dev/null)" = ok ] && break
    sleep 0.2
done
[ "$(k "$kc" admin.conf get --raw /readyz)" = ok ] || fail "readyz not back after etcd continued"

# ---- clean stop ----
kill "$API_PID"
wait "$API_PID"
rc=$?
API_PID=
[ $rc -eq 0 ] || fail "kube-apiserver exited $rc on SIGTERM"
log "ok"
