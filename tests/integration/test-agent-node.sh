#!/usr/bin/env bash
# bootagent's node role against the Kubernetes API stand-in (`imgbuild kube-apiserver` on a real
# etcd) and the local cloud (`imgbuild serve`: metadata with per-instance user-data, Vault). The
# test plays the cluster admin: it makes the bootstrap-token Secrets and the cluster-info
# ConfigMap, signed here with openssl (an implementation independent of lib/kube-bootstrap).
# Cases, one instance each, with units = exec starting tests/kubelet-standin as kubelet (for the
# join, with the arguments of the kubelet.service drop-in bootagent installs):
#   wrong CA pin: the discovery stage names both pins, and the API server's request log shows
#     that no request of that run carried a credential;
#   expired token: discovery passes (the JWS is the test's), the csr stage says the token was
#     rejected;
#   join: user-data, discovery (anonymous, then CA-verified), csr (auto-approved and signed by
#     the stand-in's controllers), kubelet-config, units, ready; the files, their modes and the
#     certificate; the real kubectl (1.27 and 1.33) shows the CSR Approved,Issued and the Node
#     Ready; a second run changes nothing and makes no second CSR;
#   CSR denied: a token whose group is not auto-approved, the CSR denied with kubectl while the
#     agent waits: the reason names the CSR and kubectl's reason;
#   not Ready: no kubelet (the Node never registers), then a Node with Ready=False;
#   killed right after csr (BOOTAGENT_ABORT_AFTER=csr), the certificate lost, re-run: the CSR
#     named from the key is found and reused, exactly one CSR, the Node Ready; this node has no
#     [vault] section: no login, secrets or pki stage.
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
AGENT6=
cleanup() {
    local rc=$?
    set +e
    [ -n "$AGENT6" ] && { kill "$AGENT6" 2>/dev/null; wait "$AGENT6" 2>/dev/null; }
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
    for p in $BASE $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $(seq $((BASE + 11)) $((BASE + 16))) \
        $(seq $((BASE + 21)) $((BASE + 26))); do
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
# the stand-in's CSR signer: the cluster CA signs kubelet client certificates
FLAGS+=(--cluster-signing-cert-file ca.pem --cluster-signing-key-file ca.key)
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
MANUAL=0d0d0d.0123456789abcdef
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
---
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-token-0d0d0d, namespace: kube-system}
type: bootstrap.kubernetes.io/token
stringData:
  token-id: 0d0d0d
  token-secret: 0123456789abcdef
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: system:bootstrappers:manual-approval
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
    --from-literal=jws-kubeconfig-0d0d0d="$(jws $MANUAL)" \
    >/dev/null || fail "cluster-info"
# anonymous read works, as the agent needs it (and nothing else does)
curl -sf --cacert ca.pem "$ENDPOINT/api/v1/namespaces/kube-public/configmaps/cluster-info" | jq -e '.data.kubeconfig' >/dev/null ||
    fail "anonymous cluster-info read"
# kubeadm's binding: the default token's CSRs are auto-approved (the stand-in lets every
# bootstrapper create CSRs: system:node-bootstrapper)
cat >rbac.yaml <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "kubeadm:node-autoapprove-bootstrap"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:bootstrappers:kubeadm:default-node-token"}]
EOF
k "$KC" apply --validate=false -f rbac.yaml >/dev/null || fail "ClusterRoleBinding"

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
                 $(instance 6 "$(userdata $MANUAL "$PIN" n6)"),
                 $(instance 2 "$(userdata $TOKEN "$OTHER_PIN" n2)"),
                 $(instance 3 "$(userdata $EXPIRED "$PIN" n3)"),
                 $(instance 4 "$(userdata $TOKEN "$PIN" n4)") ],
  "pools": [ { "id": "p1", "name": "nodes", "size": 6, "template": "node@1" } ],
  "vault": {
    "roles": { "node": { "pool": "nodes", "security_group": "nodes", "policies": ["node"], "ttl": 3600 } },
    "policies": { "node": { "secret/data/node/*": ["read"] } }
  }
}
JSON
serve_start "$T/state" || fail "imgbuild serve did not start"

agent_conf() { # N [EXEC_START [READY_DEADLINE_MS]]; NO_VAULT=1: no [vault] section
    local exec=${2:-} ready=${3:-20000} vault
    vault=$(printf '[vault]\naddress = http://127.0.0.1:%s\ndeadline_ms = 10000\n' $((BASE + 20 + $1)))
    [ -n "${NO_VAULT:-}" ] && vault="# no [vault]: the node role joins with its user-data alone"
    [ -n "$exec" ] || exec="$KUBELET_STANDIN --kubeconfig \${KUBELET_KUBECONFIG} --node-name \${KUBELET_NODE_NAME} --heartbeat-ms 1000"
    mkdir -p "$T/node-$1/etc/bootagent"
    cat >"$T/node-$1/etc/bootagent/agent.conf" <<CONF
[agent]
role = node

[metadata]
url = http://127.0.0.1:$((BASE + 10 + $1))
deadline_ms = 5000

$vault

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

# The join runs kubelet the way kubelet.service.d/bootagent.conf (as `bootagent install-units
# --role node` writes it) does, the stand-in in kubelet's place: its ExecStart's variables all come
# from the environment file the role writes, at the drop-in's EnvironmentFile= path.
"$BOOTAGENT" install-units --root "$T/units" --role node >/dev/null || fail "install-units --role node"
DROPIN=$T/units/etc/systemd/system/kubelet.service.d/bootagent.conf
DROPIN_ARGS=$(sed -n 's|^ExecStart=/usr/local/bin/kubelet ||p' "$DROPIN")
DROPIN_ENV=$(sed -n 's|^EnvironmentFile=\(/.*\)|\1|p' "$DROPIN")
[ -n "$DROPIN_ARGS" ] && [ -n "$DROPIN_ENV" ] || fail "drop-in without kubelet ExecStart or EnvironmentFile: $(cat "$DROPIN")"
grep -qx "ConditionPathExists=$DROPIN_ENV" "$DROPIN" || fail "drop-in not conditioned on $DROPIN_ENV"

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

csrs_of() { # USER: the names of the CSRs USER made
    k "$KC" get csr -o json | jq -r --arg u "$1" '.items[] | select(.spec.username == $u) | .metadata.name'
}

# ---- (1) the join ----
log "join"
agent_conf 1 "$KUBELET_STANDIN $DROPIN_ARGS --heartbeat-ms 1000"
agent 1 || fail "node 1 did not join: $(status 1)"
[ -f "$T/node-1$DROPIN_ENV" ] || fail "no environment file at the drop-in's $DROPIN_ENV"
args=$(tr '\0' ' ' <"/proc/$(cat "$T/node-1/var/lib/bootagent/kubelet.service.pid")/cmdline")
grep -q -- " --kubeconfig=$T/node-1/var/lib/kubelet/kubeconfig --config=$T/node-1/var/lib/kubelet/config.yaml --hostname-override=n1 " <<<"$args" ||
    fail "kubelet not run with the drop-in's flags: $args"
for s in user-data discovery csr kubelet-config units ready done; do
    status 1 | grep -Eq "^run 1 +$s +ok" || fail "stage $s not ok: $(status 1)"
done
status 1 | grep -Eq '^run 1 +user-data +ok .*endpoint https://127\.0\.0\.1:[0-9]+, token id 07401b, pin sha256:' ||
    fail "user-data stage: $(status 1)"
status 1 | grep -Eq "^run 1 +discovery +ok .*cluster CA matches $PIN" || fail "discovery stage: $(status 1)"
status 1 | grep -Eq '^run 1 +csr +ok .*CSR node-csr-[0-9a-f]{16} created, approved \(AutoApproved\), certificate issued, new key' ||
    fail "csr stage: $(status 1)"
status 1 | grep -Eq "^run 1 +units +ok .*kubelet.service started \(exec" || fail "units stage: $(status 1)"
R=$T/node-1
key=$R/var/lib/kubelet/pki/kubelet-client.key
[ "$(stat -c %a "$key")" = 600 ] || fail "key mode $(stat -c %a "$key")"
openssl pkey -in "$key" -noout -text 2>/dev/null | grep -q 'prime256v1' || fail "node key is not P-256"
[ "$(stat -c %a "$R/var/lib/kubelet/kubeconfig")" = 600 ] || fail "kubeconfig mode"
cmp -s "$R/var/lib/kubelet/pki/ca.crt" ca.pem || fail "CA file is not the cluster CA"
cert=$R/var/lib/kubelet/pki/kubelet-client.crt
openssl verify -CAfile ca.pem "$cert" >/dev/null || fail "client certificate not from the CA"
[ "$(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253)" = "subject=CN=system:node:n1,O=system:nodes" ] ||
    fail "certificate subject: $(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253)"
[ "$(openssl x509 -in "$cert" -noout -pubkey)" = "$(openssl pkey -in "$key" -pubout)" ] || fail "certificate for another key"
grep -q '^rotateCertificates: true$' "$R/var/lib/kubelet/config.yaml" || fail "KubeletConfiguration"
grep -rq "f395accd246ae52d" "$R/var/lib/kubelet" "$R/etc/default" && fail "the token reached kubelet's files"
grep -q "f395accd246ae52d" "$R/agent.log" "$R/var/lib/bootagent/journal" && fail "the token was logged"
spki=$(openssl pkey -in "$key" -pubout -outform der | openssl dgst -sha256 -r | cut -c1-16)
csr=$(csrs_of system:bootstrap:07401b)
[ "$csr" = "node-csr-$spki" ] || fail "CSRs of node 1: '$csr', expected node-csr-$spki"
grep -q "POST /apis/certificates.k8s.io/v1/certificatesigningrequests credential=bearer-token user=system:bootstrap:07401b" api.log ||
    fail "the CSR was not made with the bootstrap token"
grep -q "GET /api/v1/nodes/n1 credential=client-certificate user=system:node:n1" api.log ||
    fail "the ready stage did not use the node's certificate"
for kc in "${KUBECTLS[@]}"; do
    v=${kc##*kubectl.}
    k "$kc" get csr "$csr" | grep -Eq "^$csr +.* +system:bootstrap:07401b +.*Approved,Issued\$" ||
        fail "$v: CSR not Approved,Issued: $(k "$kc" get csr)"
    k "$kc" get nodes n1 | grep -Eq '^n1 +Ready +<none> +[0-9]+s +v1\.31\.0-standin$' || fail "$v: node n1 not Ready: $(k "$kc" get nodes)"
done
grep -q 'kubelet-standin: node n1 Ready' "$R/var/lib/bootagent/kubelet.service.log" || fail "stand-in kubelet log"
# a second run: the certificate on disk is kept, nothing rewritten, no second CSR
agent 1 || fail "node 1 second run: $(status 1)"
status 1 | grep -Eq '^run 2 +csr +ok .*the certificate on disk matches the node key' || fail "second run csr: $(status 1)"
status 1 | grep -Eq '^run 2 +kubelet-config +ok .*0 of 4 files written' || fail "second run kubelet-config: $(status 1)"
status 1 | grep -Eq '^run 2 +units +ok .*already running' || fail "second run units: $(status 1)"
status 1 | grep -Eq '^run 2 +done +ok' || fail "second run: $(status 1)"
[ "$(csrs_of system:bootstrap:07401b)" = "$csr" ] || fail "a second CSR after the second run: $(k "$KC" get csr)"

# ---- (6) CSR denied by the admin while the agent waits ----
log "CSR denied"
agent_conf 6
agent 6 &
AGENT6=$!
csr6=
for _ in $(seq 100); do
    csr6=$(csrs_of system:bootstrap:0d0d0d)
    [ -n "$csr6" ] && break
    sleep 0.1
done
[ -n "$csr6" ] || fail "node 6 made no CSR: $(status 6)"
sleep 0.5
k "$KC" get csr "$csr6" | grep -Eq ' Pending$' || fail "the manual-approval CSR was not Pending: $(k "$KC" get csr "$csr6")"
k "${KUBECTLS[0]}" certificate deny "$csr6" | grep -q denied || fail "certificate deny"
rc=0
wait "$AGENT6" || rc=$?
AGENT6=
[ $rc -ne 0 ] || fail "node 6 joined with a denied CSR"
reason=$(failed_reason 6 csr)
[ "$reason" = "CSR $csr6 denied (KubectlDeny): This CSR was denied by kubectl certificate deny." ] ||
    fail "denied reason: '$reason'; $(status 6)"
[ ! -e "$T/node-6/var/lib/kubelet/kubeconfig" ] || fail "denied: a kubeconfig was written"

# ---- (5) kubelet never reports: not Ready by the deadline ----
log "not Ready by the deadline"
agent_conf 5 "sleep 60" 2000
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

# ---- (4) killed right after csr, the certificate lost, run again: one CSR, same end state ----
log "abort after csr, re-run (no [vault])"
NO_VAULT=1 agent_conf 4
grep -q '^\[vault\]' "$T/node-4/etc/bootagent/agent.conf" && fail "node 4 has a [vault] section"
before=$(csrs_of system:bootstrap:07401b | wc -l)
rc=0
agent 4 BOOTAGENT_ABORT_AFTER=csr || rc=$?
[ $rc -eq 99 ] || fail "abort after csr: exit $rc"
[ ! -e "$T/node-4/var/lib/kubelet/kubeconfig" ] || fail "kubeconfig written before the abort point"
rm "$T/node-4/var/lib/kubelet/pki/kubelet-client.crt"
agent 4 || fail "re-run of node 4: $(status 4)"
status 4 | grep -Eq '^run 2 +csr +ok +.*CSR node-csr-[0-9a-f]{16} reused, approved \(AutoApproved\)' || fail "re-run csr stage: $(status 4)"
after=$(csrs_of system:bootstrap:07401b | wc -l)
[ "$after" = $((before + 1)) ] || fail "node 4 made $((after - before)) CSRs: $(k "$KC" get csr)"
# without Vault: identity, then the node's own stages; no login, secrets or pki
[ "$(status 4 | awk '$1 == "run" && $2 == 2 {printf "%s ", $3}')" = "identity user-data discovery csr kubelet-config units ready done " ] ||
    fail "stages of node 4 without [vault]: $(status 4)"
csr4=$(status 4 | grep -Eo 'CSR node-csr-[0-9a-f]{16} reused' | cut -d' ' -f2)
for kc in "${KUBECTLS[@]}"; do
    k "$kc" get csr "$csr4" | grep -q "Approved,Issued" || fail "${kc##*kubectl.}: CSR $csr4: $(k "$kc" get csr)"
    k "$kc" get nodes n4 | grep -Eq '^n4 +Ready ' || fail "${kc##*kubectl.}: node n4 not Ready: $(k "$kc" get nodes)"
done
log "ok"
