#!/usr/bin/env bash
# bootagent's node role against the Kubernetes API stand-in (`imgbuild kube-apiserver` on a real
# etcd) and the local cloud (`imgbuild serve`: metadata with per-instance user-data, Vault). The
# test plays the cluster admin: it makes the bootstrap-token Secrets and the cluster-info
# ConfigMap, signed here with openssl (an implementation independent of lib/kube-bootstrap).
# Cases, one instance each, with units = exec starting tests/kubelet-standin as kubelet:
#   wrong CA pin: the discovery stage names both pins, and the API server's request log shows
#     that no request of that run carried a credential;
#   expired token: discovery passes (the JWS is the test's), the csr stage says the token was
#     rejected;
#   join: user-data, discovery (anonymous, then CA-verified), csr, kubelet-config, units,
#     ready; the written files and modes; the real kubectl (1.27 and 1.33) shows the Node Ready;
#     with CSR support in the stand-in: the CSR Approved,Issued, and an agent killed right after
#     csr re-run to the same state with exactly one CSR.
set -uo pipefail

: "${IMGBUILD:?}" "${BOOTAGENT:?}" "${IMGBUILD_SOURCE_DIR:?}" "${IMGBUILD_BINARY_DIR:?}"
for tool in etcd etcdctl openssl jq kubectl curl; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
KUBELET_STANDIN=$IMGBUILD_BINARY_DIR/tests/kubelet-standin
[ -x "$KUBELET_STANDIN" ] || { echo "FAIL: $KUBELET_STANDIN not built"; exit 1; }
KDIR=$(dirname "$(readlink -f "$(command -v kubectl)")")
KUBECTLS=()
for v in 1.27 1.33; do
    [ -x "$KDIR/kubectl.$v" ] && KUBECTLS+=("$KDIR/kubectl.$v")
done
[ ${#KUBECTLS[@]} -gt 0 ] || { echo "skipped: no kubectl.1.27 / kubectl.1.33 beside $KDIR/kubectl"; exit 77; }
source "$IMGBUILD_SOURCE_DIR/tests/integration/serve-lib.sh"

T=$(mktemp -d /tmp/test-agent-node-XXXXXX)
ETCD_PID=
API_PID=
cleanup() {
    local rc=$?
    set +e
    # only what this test started, by PID: the stand-in kubelets (each leads its process group)
    for pidfile in "$T"/node-*/var/lib/bootagent/kubelet.service.pid; do
        [ -f "$pidfile" ] && kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null
    done
    serve_stop
    [ -n "$API_PID" ] && { kill "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null; }
    [ -n "$ETCD_PID" ] && { kill "$ETCD_PID" 2>/dev/null; wait "$ETCD_PID" 2>/dev/null; }
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        for f in "$T"/api.log "$T"/state/serve.log "$T"/node-*/agent.log "$T"/node-*/var/lib/bootagent/kubelet.service.log; do
            [ -f "$f" ] && { echo "==== $f"; tail -n 40 "$f"; }
        done
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "== $*"; }

# Ports: this test's range is 1100-2999 (tests/integration/README.md): a free block of 40.
for _ in $(seq 50); do
    BASE=$((1100 + (RANDOM % 47) * 40))
    busy=
    for p in $BASE $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $(seq $((BASE + 11)) $((BASE + 15))) \
        $(seq $((BASE + 21)) $((BASE + 25))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && busy=1
    done
    [ -z "$busy" ] && break
done
ETCD_URL=http://127.0.0.1:$BASE
API_PORT=$((BASE + 2))
EXO_PORT=$((BASE + 3))
ENDPOINT=https://127.0.0.1:$API_PORT

# ---- etcd and the API stand-in (as test-kube-apiserver.sh starts them) ----
etcd --name kube --data-dir "$T/etcd" --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$((BASE + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 1))" \
    --initial-cluster "kube=http://127.0.0.1:$((BASE + 1))" --log-level warn >"$T/etcd.log" 2>&1 &
ETCD_PID=$!
for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" endpoint health >/dev/null 2>&1 && break
    sleep 0.1
done

cd "$T" || exit 1
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # NAME
    ec "$1.key"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$1" -days 2 -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || fail "CA $1"
}
ca ca
ca other-ca
leaf() { # name subject eku [san]
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" || fail "csr $1"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
        "$3" "${4:-}" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" \
        -out "$1.pem" 2>/dev/null || fail "cert $1"
}
leaf apiserver /CN=kube-apiserver serverAuth subjectAltName=IP:127.0.0.1,DNS:kubernetes
leaf admin "/O=system:masters/CN=kubernetes-admin" clientAuth
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
openssl pkey -in sa.key -pubout -out sa.pub
pin_of() { echo "sha256:$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)"; }
PIN=$(pin_of ca.pem)
OTHER_PIN=$(pin_of other-ca.pem)

FLAGS=(--etcd-servers "$ETCD_URL" --tls-cert-file apiserver.pem --tls-private-key-file apiserver.key
    --client-ca-file ca.pem --secure-port "$API_PORT" --bind-address 127.0.0.1
    --service-account-key-file sa.pub --service-account-signing-key-file sa.key
    --service-account-issuer https://kubernetes.default.svc.cluster.local
    --enable-bootstrap-token-auth --authorization-mode Node,RBAC --v=2)
# CSR signing, where the stand-in has it: the cluster CA signs kubelet client certificates.
if "$IMGBUILD" kube-apiserver --help 2>&1 | grep -q -- '--cluster-signing-cert-file'; then
    FLAGS+=(--cluster-signing-cert-file ca.pem --cluster-signing-key-file ca.key)
fi
"$IMGBUILD" kube-apiserver "${FLAGS[@]}" >api.log 2>&1 &
API_PID=$!
for _ in $(seq 100); do
    grep -q '^kube-apiserver: ready$' api.log && break
    kill -0 "$API_PID" 2>/dev/null || fail "kube-apiserver exited"
    sleep 0.1
done
grep -q '^kube-apiserver: ready$' api.log || fail "kube-apiserver not ready"

cat >admin.conf <<EOF
apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {certificate-authority: $T/ca.pem, server: "$ENDPOINT"}
users:
- name: admin
  user: {client-certificate: $T/admin.pem, client-key: $T/admin.key}
contexts:
- name: standin
  context: {cluster: standin, user: admin}
current-context: standin
EOF
run=0
k() { # KUBECTL ARGS...: as admin, a fresh HOME and cache dir for every call
    local kc=$1
    shift
    run=$((run + 1))
    mkdir -p "$T/home.$run"
    HOME=$T/home.$run "$kc" --kubeconfig "$T/admin.conf" --cache-dir "$T/home.$run/cache" --request-timeout 20s "$@"
}
KC=${KUBECTLS[-1]}
for _ in $(seq 50); do
    [ "$(k "$KC" get --raw /readyz 2>/dev/null)" = ok ] && break
    sleep 0.2
done

# ---- the cluster side of a join, as kubeadm init leaves it ----
log "bootstrap tokens and cluster-info"
TOKEN=07401b.f395accd246ae52d
EXPIRED=abcdef.0123456789abcdef
cat >tokens.yaml <<'EOF'
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
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-abcdef, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: abcdef
  token-secret: 0123456789abcdef
  expiration: "2020-01-01T00:00:00Z"
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
EOF
k "$KC" apply --validate=false -f tokens.yaml >/dev/null || fail "token secrets"
cat >cluster-info.kubeconfig <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 ca.pem)
    server: $ENDPOINT
  name: ""
contexts: null
current-context: ""
kind: Config
preferences: {}
users: null
EOF
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
jws() { # TOKEN: the detached JWS over cluster-info.kubeconfig (kubernetes-vault.md B.2)
    local id=${1%%.*} secret=${1#*.} h p
    h=$(printf '{"alg":"HS256","kid":"%s"}' "$id" | b64url)
    p=$(b64url <cluster-info.kubeconfig)
    printf '%s..%s' "$h" "$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -mac HMAC -macopt "key:$secret" -binary | b64url)"
}
k "$KC" create configmap cluster-info -n kube-public --from-file=kubeconfig=cluster-info.kubeconfig \
    --from-literal=jws-kubeconfig-07401b="$(jws $TOKEN)" --from-literal=jws-kubeconfig-abcdef="$(jws $EXPIRED)" \
    >/dev/null || fail "cluster-info"
# anonymous read works, as the agent needs it (and nothing else does)
curl -sf --cacert ca.pem "$ENDPOINT/api/v1/namespaces/kube-public/configmaps/cluster-info" | jq -e '.data.kubeconfig' >/dev/null ||
    fail "anonymous cluster-info read"
CSR_SUPPORT=
if k "$KC" get csr >/dev/null 2>&1; then
    CSR_SUPPORT=1
    # kubeadm's bindings: bootstrappers may create CSRs, and theirs are auto-approved
    cat >rbac.yaml <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kubeadm:kubelet-bootstrap}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node-bootstrapper}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:bootstrappers:kubeadm:default-node-token"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kubeadm:node-autoapprove-bootstrap}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:bootstrappers:kubeadm:default-node-token"}]
EOF
    k "$KC" apply --validate=false -f rbac.yaml >/dev/null 2>&1 || log "ClusterRoleBindings not served: relying on the stand-in's built-in policy"
else
    log "the API stand-in serves no CSRs: the join stops at the csr stage"
fi

# ---- the local cloud: one instance per case, each with its user-data ----
instance_id() { printf '00000000-0000-4000-8000-%012d' "$1"; }
userdata() { # TOKEN PIN NODE
    printf 'kube_token=%s\\nkube_endpoint=%s\\nkube_ca_pin=%s\\nnode_name=%s\\n' "$1" "$ENDPOINT" "$2" "$3"
}
instance() { # N USERDATA
    printf '{"id":"%s","name":"node-%s","state":"running","pool":"p1","private_ip":"127.0.0.1","public_ip":"127.0.0.1",
      "security_groups":["nodes"],"labels":{},"user_data":"%s","metadata_port":%s,"vault_port":%s}' \
        "$(instance_id "$1")" "$1" "$2" $((BASE + 10 + $1)) $((BASE + 20 + $1))
}
mkdir -p state
cat >state/cloud.json <<JSON
{
  "zone": "local", "api_port": $EXO_PORT,
  "api_key": "EXOtest0000000000000000000", "api_secret": "test-secret-not-real",
  "instances": [ $(instance 1 "$(userdata $TOKEN "$PIN" n1)"),
                 $(instance 5 "$(userdata $TOKEN "$PIN" n5)"),
                 $(instance 2 "$(userdata $TOKEN "$OTHER_PIN" n2)"),
                 $(instance 3 "$(userdata $EXPIRED "$PIN" n3)"),
                 $(instance 4 "$(userdata $TOKEN "$PIN" n4)") ],
  "pools": [ { "id": "p1", "name": "nodes", "size": 5, "template": "node@1" } ],
  "vault": {
    "roles": { "node": { "pool": "nodes", "security_group": "nodes", "policies": ["node"], "ttl": 3600 } },
    "policies": { "node": { "secret/data/node/*": ["read"] } }
  }
}
JSON
serve_start "$T/state" || fail "imgbuild serve did not start"

agent_conf() { # N [EXEC_START [READY_DEADLINE_MS]]
    local exec=${2:-} ready=${3:-20000}
    [ -n "$exec" ] || exec="$KUBELET_STANDIN --kubeconfig \${KUBELET_KUBECONFIG} --node-name \${KUBELET_NODE_NAME} --heartbeat-ms 1000"
    mkdir -p "$T/node-$1/etc/bootagent"
    cat >"$T/node-$1/etc/bootagent/agent.conf" <<CONF
[agent]
role = node

[metadata]
url = http://127.0.0.1:$((BASE + 10 + $1))
deadline_ms = 5000

[vault]
address = http://127.0.0.1:$((BASE + 20 + $1))
deadline_ms = 10000

[node]
discovery_deadline_ms = 5000
csr_deadline_ms = 20000
ready_deadline_ms = $ready

[units]
mode = exec
start = kubelet.service
exec_start = $exec
CONF
}
agent() { # N [ENV...]: run firstboot, return its status
    local n=$1
    shift
    env "$@" "$BOOTAGENT" firstboot --root "$T/node-$n" >>"$T/node-$n/agent.log" 2>&1
}
# (status exits 1 for a failed run; pipefail must not take that for grep's answer)
status() { "$BOOTAGENT" status --root "$T/node-$1" || true; }
failed_reason() { # N STAGE: the reason of the last failed STAGE in the journal
    { "$BOOTAGENT" status --json --root "$T/node-$1" || true; } |
        jq -r --arg s "$2" '.stages | map(select(.stage == $s and .ok == false)) | last | .detail // empty'
}
api_lines() { wc -l <"$T/api.log"; }
# oob_cert N NAME: sign node N's key for system:node:NAME with the cluster CA, as a signer would,
# and put the certificate where the csr stage keeps it (used when the stand-in has no CSRs).
oob_cert() {
    openssl req -new -key "$T/node-$1/var/lib/kubelet/pki/kubelet-client.key" -subj "/O=system:nodes/CN=system:node:$2" \
        -out "$2.csr" || fail "$2 csr"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$2.ext"
    openssl x509 -req -in "$2.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile "$2.ext" \
        -out "$T/node-$1/var/lib/kubelet/pki/kubelet-client.crt" 2>/dev/null || fail "$2 certificate"
}

# ---- (2) wrong CA pin: refused before the token goes anywhere ----
log "wrong CA pin"
agent_conf 2
before=$(api_lines)
agent 2 && fail "node 2 joined with a wrong CA pin"
reason=$(failed_reason 2 discovery)
[ "$reason" = "CA pin mismatch: expected $OTHER_PIN, got $PIN (the bootstrap token was not sent)" ] ||
    fail "wrong pin reason: '$reason'; status: $(status 2)"
requests=$(tail -n +"$((before + 1))" api.log | grep 'kube-apiserver: ' | grep ' credential=')
grep -q 'GET /api/v1/namespaces/kube-public/configmaps/cluster-info credential=none' <<<"$requests" ||
    fail "no anonymous cluster-info request recorded: $requests"
grep -v 'credential=none' <<<"$requests" | grep -q . && fail "a request of the wrong-pin run carried a credential: $requests"
grep -q "$TOKEN\|f395accd246ae52d" "$T/node-2/agent.log" "$T/node-2/var/lib/bootagent/journal" && fail "the token was logged"
status 2 | grep -q 'outcome: failed' || fail "status 2 outcome: $(status 2)"
[ ! -e "$T/node-2/var/lib/kubelet/pki/kubelet-client.key" ] || fail "wrong pin: a node key was made"

# ---- (3) expired token: discovery passes, the token is refused ----
log "expired token"
agent_conf 3
agent 3 && fail "node 3 joined with an expired token"
reason=$(failed_reason 3 csr)
[ "$reason" = "bootstrap token rejected (expired or unknown): token id abcdef" ] ||
    fail "expired token reason: '$reason'; status: $(status 3)"
status 3 | grep -Eq '^run 1 +discovery +ok' || fail "expired token: discovery did not pass: $(status 3)"
grep -q "0123456789abcdef" "$T/node-3/agent.log" "$T/node-3/var/lib/bootagent/journal" && fail "the token was logged"

# ---- (1) the join ----
log "join"
agent_conf 1
RUN=1
if [ -z "$CSR_SUPPORT" ]; then
    agent 1 && fail "node 1 joined without CSR support"
    status 1 | grep -Eq '^run 1 +user-data +ok .*endpoint https://127\.0\.0\.1:[0-9]+, token id 07401b, pin sha256:' ||
        fail "user-data stage: $(status 1)"
    status 1 | grep -Eq "^run 1 +discovery +ok .*cluster CA matches $PIN" || fail "discovery stage: $(status 1)"
    reason=$(failed_reason 1 csr)
    grep -q 'certificatesigningrequests: HTTP 40[34]' <<<"$reason" || fail "csr without CSR support: '$reason'"
    key=$T/node-1/var/lib/kubelet/pki/kubelet-client.key
    [ "$(stat -c %a "$key")" = 600 ] || fail "node key mode $(stat -c %a "$key")"
    openssl pkey -in "$key" -noout -text 2>/dev/null | grep -q 'prime256v1' || fail "node key is not P-256"
    tail -n 20 api.log | grep -q 'certificatesigningrequests/node-csr-[0-9a-f]\{16\} credential=bearer-token user=system:bootstrap:07401b' ||
        fail "no CSR request with the token: $(tail -n 20 api.log)"
    # The rest of the join with the certificate a signer would issue, put on disk by hand: the
    # csr stage keeps a certificate that matches the node key, then kubelet-config, units, ready.
    log "join, the node certificate signed out of band (no CSRs in the stand-in)"
    oob_cert 1 n1
    RUN=2
fi

agent 1 || fail "node 1 did not join: $(status 1)"
for s in user-data discovery csr kubelet-config units ready done; do
    status 1 | grep -Eq "^run $RUN +$s +ok" || fail "stage $s not ok: $(status 1)"
done
status 1 | grep -Eq "^run $RUN +units +ok .*kubelet.service started \(exec" || fail "units stage: $(status 1)"
R=$T/node-1
[ "$(stat -c %a "$R/var/lib/kubelet/pki/kubelet-client.key")" = 600 ] || fail "key mode"
[ "$(stat -c %a "$R/var/lib/kubelet/kubeconfig")" = 600 ] || fail "kubeconfig mode"
cmp -s "$R/var/lib/kubelet/pki/ca.crt" ca.pem || fail "CA file is not the cluster CA"
openssl verify -CAfile ca.pem "$R/var/lib/kubelet/pki/kubelet-client.crt" >/dev/null || fail "client certificate not from the CA"
openssl x509 -in "$R/var/lib/kubelet/pki/kubelet-client.crt" -noout -subject | grep -q 'O *= *system:nodes, CN *= *system:node:n1' ||
    fail "certificate subject: $(openssl x509 -in "$R/var/lib/kubelet/pki/kubelet-client.crt" -noout -subject)"
grep -q '^rotateCertificates: true$' "$R/var/lib/kubelet/config.yaml" || fail "KubeletConfiguration"
grep -rq "f395accd246ae52d" "$R/var/lib/kubelet" "$R/etc/default" && fail "the token reached kubelet's files"
for kc in "${KUBECTLS[@]}"; do
    v=${kc##*kubectl.}
    k "$kc" get nodes n1 | grep -Eq '^n1 +Ready +<none> +[0-9]+s +v1\.31\.0-standin$' || fail "$v: node n1 not Ready: $(k "$kc" get nodes)"
done
grep -q 'kubelet-standin: node n1 Ready' "$R/var/lib/bootagent/kubelet.service.log" || fail "stand-in kubelet log"

# ---- (5) kubelet never reports: not Ready by the deadline ----
log "not Ready by the deadline"
agent_conf 5 "sleep 60" 2000
if [ -z "$CSR_SUPPORT" ]; then
    agent 5 && fail "node 5 joined without CSR support"
    oob_cert 5 n5
fi
agent 5 && fail "node 5 is Ready without a kubelet"
reason=$(failed_reason 5 ready)
[ "$reason" = "not Ready within 2000 ms: the Node is not registered" ] || fail "not Ready reason: '$reason'; $(status 5)"
# registered, but its Ready condition is False: the condition's message is the reason
echo '{"apiVersion":"v1","kind":"Node","metadata":{"name":"n5"}}' >n5.json
k "$KC" create --validate=false -f n5.json >/dev/null || fail "node n5"
k "$KC" patch node n5 --subresource=status --type=strategic \
    -p '{"status":{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady","message":"container runtime network not ready"}]}}' \
    >/dev/null || fail "n5 status"
agent 5 && fail "node 5 is Ready with Ready=False"
reason=$(failed_reason 5 ready)
[ "$reason" = "not Ready within 2000 ms: Ready=False: container runtime network not ready" ] ||
    fail "not Ready reason: '$reason'; $(status 5)"

if [ -z "$CSR_SUPPORT" ]; then
    log "ok (without CSRs in the API stand-in: the CSR's approval and issue and the abort/re-run case not exercised)"
    exit 0
fi
csr=$(k "$KC" get csr -o json | jq -r '.items[] | select(.spec.username == "system:bootstrap:07401b") | .metadata.name')
[ "$(wc -w <<<"$csr")" = 1 ] || fail "CSRs of node 1: $csr"
for kc in "${KUBECTLS[@]}"; do
    v=${kc##*kubectl.}
    k "$kc" get csr "$csr" | grep -q 'Approved,Issued' || fail "$v: CSR not Approved,Issued: $(k "$kc" get csr)"
done

# ---- (4) killed right after csr, run again: one CSR, same end state ----
log "abort after csr, re-run"
agent_conf 4
rc=0
agent 4 BOOTAGENT_ABORT_AFTER=csr || rc=$?
[ $rc -eq 99 ] || fail "abort after csr: exit $rc"
[ ! -e "$T/node-4/var/lib/kubelet/kubeconfig" ] || fail "kubeconfig written before the abort point"
# the certificate lost as well: the re-run must find its CSR by the key's name, not make another
rm "$T/node-4/var/lib/kubelet/pki/kubelet-client.crt"
agent 4 || fail "re-run of node 4: $(status 4)"
status 4 | grep -Eq '^run 2 +csr +ok +.*CSR node-csr-[0-9a-f]{16} reused, approved' || fail "re-run csr stage: $(status 4)"
n=$(k "$KC" get csr -o json | jq '[.items[] | select(.spec.username == "system:bootstrap:07401b")] | length')
[ "$n" = 2 ] || fail "expected 2 CSRs (n1, n4), got $n: $(k "$KC" get csr)"
k "$KC" get nodes n4 | grep -Eq '^n4 +Ready ' || fail "node n4 not Ready"
log "ok"
