#!/usr/bin/env bash
# `imgbuild kube-apiserver` (the Kubernetes API stand-in) on a real etcd, checked with the REAL
# kubectl, oldest and newest on these machines (kubectl.1.27 and kubectl.1.33 beside the gcloud
# dispatcher; a fresh HOME and cache dir for each): flag validation as kube-apiserver does it,
# /readyz (also while etcd is stopped), namespaces, configmaps, secrets, a Node by apply and its
# status from the node's own certificate, the Table form of `get nodes`, an update conflict,
# bootstrap tokens (valid: 403 on nodes; expired, wrong secret: 401), CSRs (a bootstrap token's
# kubelet CSR Pending until the nodeclient ClusterRoleBinding exists, then auto-approved and
# signed with the right subject; renewal via selfnodeclient; a node's CSR for another name never
# approved; certificate deny/approve; the signer's failure; watch from a resourceVersion),
# pods + a PodDisruptionBudget + drain (eviction, DaemonSet and mirror pods skipped, 429 at the
# budget's floor, drain timing out), and the objects under /registry/ in etcd (etcdctl).
set -uo pipefail

# Ports: this test's range is 3000-3999 (tests/integration/README.md).
KUBE_LIB_NAME=test-kube-apiserver
KUBE_LIB_PORTS="3000 3999"
# shellcheck source=kube-lib.sh
. "${IMGBUILD_SOURCE_DIR:?}/tests/integration/kube-lib.sh"

kube_start_etcd

# ---- PKI (openssl) ----
cd "$T" || exit 1
kube_pki
leaf node1 "/O=system:nodes/CN=system:node:n1" clientAuth
leaf other "/CN=someone" clientAuth
kube_api_flags
FLAGS=("${KUBE_API_FLAGS[@]}")

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
refused "--cluster-signing-key-file does not match --cluster-signing-cert-file" "${FLAGS[@]}" --cluster-signing-key-file admin.key

# ---- start ----
kube_start_api
grep -q -- '--allow-privileged accepted but not acted upon' api.log || fail "ignored flags not logged"

kubeconfig admin.conf "{client-certificate: $T/admin.pem, client-key: $T/admin.key}"
kubeconfig node1.conf "{client-certificate: $T/node1.pem, client-key: $T/node1.key}"
kubeconfig other.conf "{client-certificate: $T/other.pem, client-key: $T/other.key}"
kubeconfig token.conf "{token: 07401b.f395accd246ae52d}"
kubeconfig expired.conf "{token: abcdef.0123456789abcdef}"
kubeconfig wrong.conf "{token: 07401b.f395accd246ae52e}"

# readyz is up once the system namespaces exist
kube_wait_readyz admin.conf

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
# ---- CSRs: TLS bootstrap, auto-approval only with the RBAC bindings, signing (A.5-A.7) ----
log "CSRs"
CSRS=$API/apis/certificates.k8s.io/v1/certificatesigningrequests
api() { # CREDENTIAL-ARGS... -- CURL-ARGS...: prints the body, then the status code on a line of its own
    local cred=()
    while [ "$1" != -- ]; do
        cred+=("$1")
        shift
    done
    shift
    curl -sS --cacert "$T/ca.pem" "${cred[@]}" -w '\n%{http_code}' "$@"
}
TOKEN=(-H "Authorization: Bearer 07401b.f395accd246ae52d")
ADMIN=(--cert "$T/admin.pem" --key "$T/admin.key")
NODE1=(--cert "$T/node1.pem" --key "$T/node1.key")
KUBELET_USAGES='["digital signature","key encipherment","client auth"]'
csr_body() { # NAME SUBJECT SIGNER USAGES-JSON: a fresh P-256 key and its request, as a CSR object
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null || fail "openssl req $1"
    jq -cn --arg n "$1" --arg r "$(base64 -w0 "$1.csr")" --arg s "$3" --argjson u "$4" \
        '{kind:"CertificateSigningRequest",apiVersion:"certificates.k8s.io/v1",metadata:{name:$n},
          spec:{request:$r,signerName:$s,usages:$u}}'
}
condition() { k "$kc" admin.conf get csr "$1" --no-headers | awk '{print $NF}'; }
wait_condition() { # NAME WANT
    for _ in $(seq 50); do
        [ "$(condition "$1")" = "$2" ] && return 0
        sleep 0.2
    done
    fail "csr $1: condition $(condition "$1"), expected $2"
}
rv0=$(api "${ADMIN[@]}" -- "$CSRS" | head -n1 | jq -r .metadata.resourceVersion)
# a bootstrap token creates the kubelet's CSR; the requester is filled in by the server
out=$(api "${TOKEN[@]}" -- -H 'Content-Type: application/json' \
    -d "$(csr_body node-csr-w1 /O=system:nodes/CN=system:node:w1 kubernetes.io/kube-apiserver-client-kubelet "$KUBELET_USAGES")" "$CSRS")
[ "$(tail -n1 <<<"$out")" = 201 ] || fail "bootstrapper creating a CSR: $out"
head -n1 <<<"$out" | jq -e '.spec.username == "system:bootstrap:07401b" and (.spec.groups | index("system:bootstrappers")) and .status == {}' >/dev/null ||
    fail "CSR requester: $out"
# no binding of system:bootstrappers to nodeclient yet: it stays Pending (the controllers run every 250 ms)
sleep 1.5
for kc in "${KUBECTLS[@]}"; do
    k "$kc" admin.conf get csr node-csr-w1 |
        grep -Eq '^node-csr-w1 +[0-9]+s +kubernetes.io/kube-apiserver-client-kubelet +system:bootstrap:07401b +<none> +Pending$' ||
        fail "${kc##*kubectl.}: get csr: $(k "$kc" admin.conf get csr)"
done
# a bootstrapper may not approve its own
out=$(api "${TOKEN[@]}" -- -X PUT -H 'Content-Type: application/json' -d '{}' "$CSRS/node-csr-w1/approval")
[ "$(tail -n1 <<<"$out")" = 403 ] || fail "bootstrapper approving: $out"
cat >crb.yaml <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auto-approve-csrs-for-group}
subjects: [{kind: Group, name: system:bootstrappers, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient", apiGroup: rbac.authorization.k8s.io}
EOF
k "$kc" admin.conf apply --validate=false -f crb.yaml | grep -q created || fail "ClusterRoleBinding"
# RBAC names are path segments, as upstream validates them: kubeadm's ':' names pass, '/', '%',
# '.' and '..' do not
CRBS=$API/apis/rbac.authorization.k8s.io/v1/clusterrolebindings
crb() { printf '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"%s"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:node-bootstrapper"},"subjects":[{"kind":"Group","name":"system:bootstrappers"}]}' "$1"; }
out=$(api "${ADMIN[@]}" -- -X POST -H 'Content-Type: application/json' -d "$(crb kubeadm:kubelet-bootstrap)" "$CRBS")
[ "$(tail -n1 <<<"$out")" = 201 ] || fail "ClusterRoleBinding kubeadm:kubelet-bootstrap: $out"
k "$kc" admin.conf get clusterrolebinding kubeadm:kubelet-bootstrap | grep -q '^kubeadm:kubelet-bootstrap ' ||
    fail "get clusterrolebinding kubeadm:kubelet-bootstrap"
for bad in 'a/b' 'a%b' '..'; do
    out=$(api "${ADMIN[@]}" -- -X POST -H 'Content-Type: application/json' -d "$(crb "$bad")" "$CRBS")
    [ "$(tail -n1 <<<"$out")" = 422 ] || fail "ClusterRoleBinding named '$bad': $out"
done
api "${ADMIN[@]}" -- -X DELETE "$CRBS/kubeadm:kubelet-bootstrap" >/dev/null
k "$kc" admin.conf get clusterrolebindings | grep -q 'ClusterRole/system:certificates.k8s.io:certificatesigningrequests:nodeclient' ||
    fail "get clusterrolebindings: $(k "$kc" admin.conf get clusterrolebindings)"
wait_condition node-csr-w1 Approved,Issued
json=$(k "$kc" admin.conf get csr node-csr-w1 -o json)
jq -e '.status.conditions[0] | .type == "Approved" and .reason == "AutoApproved" and
    .message == "Auto approving kubelet client certificate after SubjectAccessReview."' <<<"$json" >/dev/null ||
    fail "approval condition: $json"
jq -r .status.certificate <<<"$json" | base64 -d >w1.pem
openssl verify -CAfile ca.pem w1.pem >/dev/null || fail "issued certificate does not verify: $(openssl x509 -in w1.pem -noout -text)"
[ "$(openssl x509 -in w1.pem -noout -subject -nameopt RFC2253)" = "subject=CN=system:node:w1,O=system:nodes" ] ||
    fail "issued subject: $(openssl x509 -in w1.pem -noout -subject -nameopt RFC2253)"
openssl x509 -in w1.pem -noout -ext extendedKeyUsage | grep -q 'TLS Web Client Authentication' || fail "no clientAuth"
[ "$(openssl x509 -in w1.pem -noout -pubkey)" = "$(openssl pkey -in node-csr-w1.key -pubout)" ] || fail "issued for another key"
# the issued certificate is the node's identity now
kubeconfig w1.conf "{client-certificate: $T/w1.pem, client-key: $T/node-csr-w1.key}"
cat >w1-node.yaml <<'EOF'
apiVersion: v1
kind: Node
metadata: {name: w1}
EOF
k "$kc" w1.conf apply --validate=false -f w1-node.yaml >/dev/null || fail "w1 registering with its issued certificate"
# a watch from before the CSR existed sees it, in its latest state, over a chunked stream
api "${ADMIN[@]}" -- -D headers.txt "$CSRS?watch=true&resourceVersion=$rv0&timeoutSeconds=1" >watch.out
grep -qi '^transfer-encoding: chunked' headers.txt || fail "watch not chunked: $(cat headers.txt)"
grep '^{' watch.out | jq -se 'map(select(.object.metadata.name == "node-csr-w1")) | length == 1 and
    .[0].type == "ADDED" and (.[0].object.status.certificate | length > 0)' >/dev/null || fail "watch: $(cat watch.out)"

# renewal: a node asks for its own name; approved only once system:nodes is bound to selfnodeclient
out=$(api "${NODE1[@]}" -- -H 'Content-Type: application/json' \
    -d "$(csr_body csr-n1-renew /O=system:nodes/CN=system:node:n1 kubernetes.io/kube-apiserver-client-kubelet '["digital signature","client auth"]')" "$CSRS")
[ "$(tail -n1 <<<"$out")" = 201 ] || fail "node creating its renewal CSR: $out"
# and one for another node's name, which nothing here may approve
out=$(api "${NODE1[@]}" -- -H 'Content-Type: application/json' \
    -d "$(csr_body csr-n1-for-n9 /O=system:nodes/CN=system:node:n9 kubernetes.io/kube-apiserver-client-kubelet "$KUBELET_USAGES")" "$CSRS")
[ "$(tail -n1 <<<"$out")" = 201 ] || fail "node creating a CSR for n9: $out"
sleep 1.5
[ "$(condition csr-n1-renew)" = Pending ] || fail "renewal approved without the selfnodeclient binding"
sed -e 's/auto-approve-csrs-for-group/auto-approve-renewals-for-nodes/' -e 's/name: system:bootstrappers/name: system:nodes/' \
    -e 's/:nodeclient"/:selfnodeclient"/' crb.yaml >crb-self.yaml
k "$kc" admin.conf apply --validate=false -f crb-self.yaml >/dev/null || fail "selfnodeclient binding"
wait_condition csr-n1-renew Approved,Issued
k "$kc" admin.conf get csr csr-n1-renew -o jsonpath='{.status.conditions[0].message}' |
    grep -qx 'Auto approving self kubelet client certificate after SubjectAccessReview.' || fail "renewal message"
sleep 1
[ "$(condition csr-n1-for-n9)" = Pending ] || fail "a node's CSR for another node's name was approved"
# CSRs the approver never takes (another signer): kubectl certificate deny, then approve refused
for kc in "${KUBECTLS[@]}"; do
    v=${kc##*kubectl.}
    out=$(api "${ADMIN[@]}" -- -H 'Content-Type: application/json' \
        -d "$(csr_body "client-$v" /CN=someone kubernetes.io/kube-apiserver-client '["digital signature","client auth"]')" "$CSRS")
    [ "$(tail -n1 <<<"$out")" = 201 ] || fail "$v: admin creating a CSR: $out"
    k "$kc" admin.conf certificate deny "client-$v" | grep -q "certificatesigningrequest.certificates.k8s.io/client-$v denied" ||
        fail "$v: certificate deny"
    [ "$(condition "client-$v")" = Denied ] || fail "$v: deny: $(condition "client-$v")"
    out=$(k "$kc" admin.conf certificate approve "client-$v" 2>&1) && fail "$v: approving a denied CSR worked: $out"
    k "$kc" admin.conf get csr "client-$v" -o jsonpath='{.status.conditions[0].reason}' | grep -qx KubectlDeny || fail "$v: deny reason"
done
# approved by hand but not a valid kubelet client request: the signer fails it as upstream's does
out=$(api "${ADMIN[@]}" -- -H 'Content-Type: application/json' \
    -d "$(csr_body csr-no-org /CN=system:node:w2 kubernetes.io/kube-apiserver-client-kubelet "$KUBELET_USAGES")" "$CSRS")
[ "$(tail -n1 <<<"$out")" = 201 ] || fail "creating csr-no-org: $out"
k "$kc" admin.conf certificate approve csr-no-org | grep -q approved || fail "certificate approve"
wait_condition csr-no-org Approved,Failed
k "$kc" admin.conf get csr csr-no-org -o json | jq -e '.status.conditions[] | select(.type == "Failed") |
    .reason == "SignerValidationFailure" and .message == "subject organization is not system:nodes"' >/dev/null ||
    fail "signer failure: $(k "$kc" admin.conf get csr csr-no-org -o json)"
# a request that is not a CSR is refused at create
out=$(api "${TOKEN[@]}" -- -H 'Content-Type: application/json' \
    -d '{"metadata":{"name":"junk"},"spec":{"request":"aGVsbG8=","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["client auth"]}}' "$CSRS")
[ "$(tail -n1 <<<"$out")" = 422 ] || fail "junk CSR: $out"

# ---- pods, a PodDisruptionBudget, drain (C.3, C.4) ----
log "pods and drain"
cat >drain.yaml <<'EOF'
apiVersion: v1
kind: Node
metadata: {name: dn1}
---
apiVersion: v1
kind: Node
metadata: {name: dn2}
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
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: default
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-rs, uid: 00000000-0000-0000-0000-000000000001, controller: true}]
spec: {nodeName: dn1, containers: [{name: web, image: web}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-2
  namespace: default
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-rs, uid: 00000000-0000-0000-0000-000000000001, controller: true}]
spec: {nodeName: dn2, containers: [{name: web, image: web}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: agent-dn1
  namespace: default
  labels: {app: agent}
  ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: agent, uid: 00000000-0000-0000-0000-000000000002, controller: true}]
spec: {nodeName: dn1, containers: [{name: a, image: agent}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: static-dn1
  namespace: default
  annotations: {kubernetes.io/config.mirror: "0123abcd"}
spec: {nodeName: dn1, containers: [{name: s, image: static}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web-pdb, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
EOF
k "$kc" admin.conf apply --validate=false -f drain.yaml >/dev/null || fail "pods, DaemonSet, PDB"
ready='{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"c","ready":true,"restartCount":0}]}}'
for p in web-1 web-2 agent-dn1 static-dn1; do
    k "$kc" admin.conf patch pod "$p" --subresource=status --type=merge -p "$ready" >/dev/null || fail "pod $p status"
done
# Read whole, then matched: with pipefail, grep -q leaving at web-1 can SIGPIPE kubectl on the
# rows after it and fail a good listing.
out=$(k "$kc" admin.conf get pods) || fail "get pods failed"
grep -Eq '^web-1 +1/1 +Running +0 +[0-9]+s$' <<<"$out" || fail "get pods: $out"
k "$kc" admin.conf get pdb web-pdb | grep -Eq '^web-pdb +1 +N/A +1 +[0-9]+s$' || fail "get pdb: $(k "$kc" admin.conf get pdb)"
# a node writes the status of its own pods only
out=$(api "${NODE1[@]}" -- -X PATCH -H 'Content-Type: application/merge-patch+json' -d "$ready" \
    "$API/api/v1/namespaces/default/pods/web-1/status")
[ "$(tail -n1 <<<"$out")" = 403 ] || fail "node n1 patching a pod on dn1: $out"
# drain dn1 (oldest kubectl): cordon, evict web-1, skip the DaemonSet pod and the mirror pod
out=$(k "${KUBECTLS[0]}" admin.conf drain dn1 --ignore-daemonsets --timeout=60s 2>&1) || fail "drain dn1: $out"
grep -q 'evicting pod default/web-1' <<<"$out" || fail "drain dn1 did not evict web-1: $out"
grep -q 'node/dn1 drained' <<<"$out" || fail "drain dn1: $out"
grep -qi 'ignoring DaemonSet-managed Pods: default/agent-dn1' <<<"$out" || fail "drain dn1 did not skip the DaemonSet pod: $out"
pods=$(k "$kc" admin.conf get pods -o name)
grep -qx pod/web-1 <<<"$pods" && fail "web-1 still there after the drain"
grep -qx pod/agent-dn1 <<<"$pods" || fail "the DaemonSet pod was evicted"
grep -qx pod/static-dn1 <<<"$pods" || fail "the mirror pod was evicted"
k "$kc" admin.conf get nodes dn1 | grep -q 'SchedulingDisabled' || fail "dn1 not cordoned"
[ "$(k "$kc" admin.conf get pdb web-pdb -o jsonpath='{.status.disruptionsAllowed}/{.status.currentHealthy}/{.status.desiredHealthy}')" = 0/1/1 ] ||
    fail "pdb status after the drain: $(k "$kc" admin.conf get pdb web-pdb -o json)"
# the budget is at its floor: evicting web-2 is refused with 429 and the Status kubectl expects
out=$(api "${ADMIN[@]}" -- -H 'Content-Type: application/json' \
    -d '{"kind":"Eviction","apiVersion":"policy/v1","metadata":{"name":"web-2","namespace":"default"},"deleteOptions":{}}' \
    "$API/api/v1/namespaces/default/pods/web-2/eviction")
[ "$(tail -n1 <<<"$out")" = 429 ] || fail "eviction at the PDB floor: $out"
head -n1 <<<"$out" | jq -e '.reason == "TooManyRequests" and
    .message == "Cannot evict pod as it would violate the pod'"'"'s disruption budget." and
    .details.causes[0].reason == "DisruptionBudget" and
    .details.causes[0].message == "The disruption budget web-pdb needs 1 healthy pods and has 1 currently"' >/dev/null ||
    fail "429 body: $out"
# and draining dn2 (newest kubectl) retries until its timeout, saying why
out=$(k "${KUBECTLS[-1]}" admin.conf drain dn2 --ignore-daemonsets --timeout=7s 2>&1) && fail "drain dn2 succeeded: $out"
grep -q "Cannot evict pod as it would violate the pod's disruption budget" <<<"$out" || fail "drain dn2: $out"
k "$kc" admin.conf get pods -o name | grep -qx pod/web-2 || fail "web-2 was evicted despite the PDB"

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
