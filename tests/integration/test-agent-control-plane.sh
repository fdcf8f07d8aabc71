#!/usr/bin/env bash
# bootagent's control-plane role against the local cloud (`imgbuild serve`: metadata, Vault with
# PKI and KV, the Exoscale-compatible API) and real etcd. Topology: 3 etcd agents form their
# cluster (as test-agent-etcd does), 2 control-plane agents find it through the cloud API by pool
# name, write the flags, and their units start `imgbuild kube-apiserver` (the stand-in) on it; then
# 3 node agents join through the endpoint with the token the platform keeps in Vault KV.
# Checked with the real kubectl (1.27 and 1.33): 3 Ready nodes with their names, their CSRs
# Approved,Issued, /readyz ok through either control-plane member; exactly one bootstrap-token
# Secret, cluster-info signed for the token, kubeadm's RBAC objects under kubeadm's names.
# Negative: a control-plane member whose etcd pool does not answer fails in etcd-servers with one
# reason (also in `bootagent status`), and has written no flags and started nothing. Crash
# recovery: the bootstrap objects removed, a third control-plane member is stopped after each of
# its stages (and inside certificates and bootstrap) and run again: one bootstrap Secret, the same
# cluster-info, a node still joins; a re-run of a first member keeps everything.
PORT_RANGE_START=27500 PORT_BLOCKS=20 source "$(dirname "$0")/agent-lib.sh"
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }
KUBELET_STANDIN=${IMGBUILD_BINARY_DIR:?}/tests/kubelet-standin
[ -x "$KUBELET_STANDIN" ] || fail "$KUBELET_STANDIN not built"
KDIR=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent/kubectl)")")
KUBECTLS=()
for v in 1.27 1.33; do
        [ -x "$KDIR/kubectl.$v" ] && KUBECTLS+=("$KDIR/kubectl.$v")
done
[ ${#KUBECTLS[@]} -gt 0 ] || { echo "skip: no kubectl.1.27 / kubectl.1.33 beside $KDIR/kubectl"; exit 77; }

cleanup() {
        local rc=$?
        set +e
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
                for f in "$T"/agent-*/var/lib/bootagent/kube-apiserver.service.log "$T"/agent-*/var/lib/bootagent/kubelet.service.log; do
                        [ -f "$f" ] && { echo "==== $f"; tail -n 20 "$f"; }
                done
        fi
        (exit $rc)
        agent_cleanup
}
trap cleanup EXIT

KUBE_PORT=$((BASE + 43))
CP_POOL=7e3a1c00-0000-4000-8000-00000000c0c0
CP_NET=7e3a1c00-0000-4000-8000-00000000c0de
NODE_POOL=7e3a1c00-0000-4000-8000-00000000d0d0
DOWN_POOL=7e3a1c00-0000-4000-8000-00000000e0e0
DOWN_NET=7e3a1c00-0000-4000-8000-00000000e0de
ETCDS=(1 2 3)
CPS=(21 22)
NODES=(41 42 43)
ENDPOINT=https://$(instance_ip 21):$KUBE_PORT
TOKEN=07401b.f395accd246ae52d

# ---- what the platform keeps in Vault KV: made here with openssl ----
K=$T/keys
mkdir -p "$K"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/sa.key" 2>/dev/null || fail "sa key"
openssl pkey -in "$K/sa.key" -pubout -out "$K/sa.pub" 2>/dev/null || fail "sa pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/signing.key" 2>/dev/null || fail "signing key"
openssl req -x509 -new -key "$K/signing.key" -subj "/CN=kubelet-client-signer" -days 2 -out "$K/signing.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || fail "signing CA"
ENC_KEY=$(head -c 32 /dev/urandom | base64 -w0)

# cloud_json NODE_USERDATA: the whole local cloud (the services re-read it when it changes).
cloud_json() {
        local ud=$1
        jq -n --arg api "$API_PORT" --arg etcd_pool "$POOL_ID" --arg etcd_net "$NET_ID" --arg cp_pool "$CP_POOL" \
                --arg cp_net "$CP_NET" --arg node_pool "$NODE_POOL" --arg down_pool "$DOWN_POOL" --arg down_net "$DOWN_NET" \
                --arg ud "$ud" --rawfile sa_key "$K/sa.key" --rawfile sa_pub "$K/sa.pub" --arg enc "$ENC_KEY" \
                --rawfile sign_crt "$K/signing.crt" --rawfile sign_key "$K/signing.key" --arg token "$TOKEN" \
                --argjson etcds "$(printf '%s\n' "${ETCDS[@]}" | jq -s .)" --argjson cps "[21,22,23,24]" \
                --argjson nodes "$(printf '%s\n' "${NODES[@]}" | jq -s .)" '
        def inst($n; $name; $pool; $sg): {id: ("00000000-0000-4000-8000-" + ("000000000000" + ($n|tostring))[-12:]),
                name: $name, state: "running", pool: $pool, private_ip: ("127.0.0." + ((10 + $n)|tostring)),
                public_ip: ("127.0.0." + ((10 + $n)|tostring)), security_groups: [$sg], labels: {}, user_data: "",
                metadata_socket: ("m\($n)-metadata.sock"), vault_socket: ("m\($n)-vault.sock")};
        {zone: "local", api_port: ($api|tonumber), api_key: "EXOtest0000000000000000000", api_secret: "test-secret-not-real",
         instances: ([$etcds[] | inst(.; "etcd-\(.)"; $etcd_pool; "etcd")]
                     + [$cps[] | inst(.; "cp-\(.)"; $cp_pool; "cp")]
                     + [$nodes[] | inst(.; "n\(. - 40)"; $node_pool; "nodes") | . as $i | .user_data = ($ud | gsub("NODE"; $i.name))]
                     + [inst(9; "etcd-down"; $down_pool; "etcd")]),
         pools: [{id: $etcd_pool, name: "etcd", size: 3, template: "etcd@1", private_network: $etcd_net},
                 {id: $cp_pool, name: "cp", size: 4, template: "control-plane@1", private_network: $cp_net},
                 {id: $node_pool, name: "nodes", size: 3, template: "node@1"},
                 {id: $down_pool, name: "etcd-down", size: 1, template: "etcd@1", private_network: $down_net}],
         vault: {
           roles: {etcd: {pool: "etcd", security_group: "etcd", policies: ["etcd"], ttl: 3600},
                   "control-plane": {pool: "cp", security_group: "cp", policies: ["cp"], ttl: 3600},
                   node: {pool: "nodes", security_group: "nodes", policies: ["node"], ttl: 3600}},
           policies: {etcd: {"secret/data/etcd/*": ["read", "create", "update"], "secret/data/bootagent/*": ["read"],
                             "pki/issue/etcd-peer": ["update"], "pki/sign/etcd-peer": ["update"]},
                      cp: {"secret/data/kubernetes/*": ["read"], "secret/data/bootagent/*": ["read"],
                           "pki/sign/kube-server": ["update"], "pki/sign/kube-masters": ["update"],
                           "pki/sign/kube-client": ["update"]},
                      node: {"secret/data/node/*": ["read"]}},
           pki_roles: {"etcd-peer": {allowed_domains: ["etcd.local"], allow_subdomains: true, allow_ip_sans: true,
                                     allow_any_name: true, max_ttl: 86400},
                       "kube-server": {allow_any_name: true, allow_ip_sans: true, max_ttl: 86400},
                       "kube-masters": {allow_any_name: true, allow_ip_sans: false, organization: ["system:masters"],
                                        max_ttl: 86400},
                       "kube-client": {allow_any_name: true, allow_ip_sans: false, max_ttl: 86400}},
           kv: {"bootagent/cloud-api": {api_key: "EXOtest0000000000000000000", api_secret: "test-secret-not-real",
                                        api_url: "http://127.0.0.1:\($api)/v2"},
                "etcd/shared": {token: "shared-etcd-token"},
                "kubernetes/service-account": {private_key: $sa_key, public_key: $sa_pub},
                "kubernetes/encryption": {key: $enc},
                "kubernetes/bootstrap-token": {token: $token},
                "kubernetes/cluster-signing": {cert: $sign_crt, key: $sign_key}}}}'
}

mkdir -p "$T/state"
cloud_json "" >"$T/state/cloud.json"
"$IMGBUILD" serve --state-dir "$T/state" >"$T/serve.out" 2>"$T/serve.log" &
SERVE_PID=$!
end=$((SECONDS + 60)) # far above what a loaded machine needs
until grep -q "serve: ready" "$T/serve.out" 2>/dev/null; do
        kill -0 "$SERVE_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ] || fail "imgbuild serve not ready"
        sleep 0.1
done
wait_metadata 1

# The nodes' user-data: the endpoint, the token and the pin of the cluster CA (Vault's PKI CA,
# which signs the apiservers' serving certificates).
VAULT_CA=$T/vault-ca.pem
curl -sf --unix-socket "$(vault_socket 1)" http://vault.local:8200/v1/pki/ca/pem >"$VAULT_CA" || fail "Vault CA"
PIN="sha256:$(openssl x509 -in "$VAULT_CA" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)"
cloud_json "$(printf 'kube_token=%s\nkube_endpoint=%s\nkube_ca_pin=%s\nnode_name=NODE\n' "$TOKEN" "$ENDPOINT" "$PIN")" \
        >"$T/state/cloud.json.tmp"
mv "$T/state/cloud.json.tmp" "$T/state/cloud.json"
for n in "${NODES[@]}"; do wait_metadata "$n"; done
curl -sf --unix-socket "$(metadata_socket 41)" http://169.254.169.254/latest/user-data | grep -q "^node_name=n1$" ||
        fail "user-data of node n1 not served"

# ---- the etcd pool ----
log "etcd: three agents"
for n in "${ETCDS[@]}"; do write_agent_config "$n"; done
pids=()
for n in "${ETCDS[@]}"; do run_agent "$n" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "an etcd agent failed"; done
[ "$(member_lines 1 | grep -c false)" -eq 3 ] || fail "etcd: not 3 voting members: $(member_lines 1)"

# ---- control-plane agents ----
# cp_conf N [ETCD_POOL [ETCD_DEADLINE_MS]]: agent-lib.sh writes it (ci/bench-agent.sh uses it too)
cp_conf() { write_cp_agent_conf "$@"; }
status() { "$BOOTAGENT" status --root "$T/agent-$1" || true; }
failed_reason() { # N STAGE
        { "$BOOTAGENT" status --json --root "$T/agent-$1" || true; } |
                jq -r --arg s "$2" '.stages | map(select(.stage == $s and .ok == false)) | last | .detail // empty'
}
stage_ok() { # N RUN STAGE [DETAIL-REGEX]
        local re="^run $2 +$3 +ok"
        [ -n "${4:-}" ] && re+=" .*$4"
        status "$1" | grep -Eq "$re" || fail "agent $1 run $2: stage $3 not ok${4:+ with '$4'}: $(status "$1")"
}

log "control plane: two agents"
for n in "${CPS[@]}"; do cp_conf "$n"; done
pids=()
for n in "${CPS[@]}"; do run_agent "$n" & pids+=($!); done
for i in 0 1; do wait "${pids[$i]}" || fail "control-plane agent ${CPS[$i]} failed: $(status "${CPS[$i]}")"; done
for n in "${CPS[@]}"; do
        stage_ok "$n" 1 certificates
        stage_ok "$n" 1 keys "6 of 6 files written, bootstrap token id 07401b, kubelet client signer"
        stage_ok "$n" 1 etcd-servers "3 members of pool etcd: https://127\.0\.0\.11:$ETCD_CLIENT_PORT,https://127\.0\.0\.12:$ETCD_CLIENT_PORT,https://127\.0\.0\.13:$ETCD_CLIENT_PORT; "
        stage_ok "$n" 1 flags "flags written"
        stage_ok "$n" 1 units "kube-apiserver.service started \(exec"
        stage_ok "$n" 1 readyz "https://$(instance_ip "$n"):$KUBE_PORT/readyz ok"
        stage_ok "$n" 1 bootstrap "Secret bootstrap-token-07401b (created|kept), cluster-info (created|kept|signed) \(endpoint $ENDPOINT\), RBAC: [0-5] created, [0-5] kept"
        stage_ok "$n" 1 done
        R=$T/agent-$n
        env=$R/etc/default/kubernetes-bootagent
        grep -q "^KUBE_APISERVER_ARGS=.*--etcd-servers=https://127.0.0.11:$ETCD_CLIENT_PORT,https://127.0.0.12:$ETCD_CLIENT_PORT,https://127.0.0.13:$ETCD_CLIENT_PORT " "$env" ||
                fail "agent $n: --etcd-servers: $(cat "$env")"
        grep -q "^KUBE_APISERVER_ARGS=.*--encryption-provider-config=$R/etc/kubernetes/encryption-config.yaml" "$env" || fail "encryption flag"
        grep -q "^KUBE_CONTROLLER_MANAGER_ARGS=--kubeconfig=$R/etc/kubernetes/controller-manager.conf .*--cluster-signing-cert-file=$R/etc/kubernetes/pki/cluster-signing.crt" "$env" ||
                fail "controller-manager flags: $(cat "$env")"
        grep -q "^KUBE_SCHEDULER_ARGS=--kubeconfig=$R/etc/kubernetes/scheduler.conf " "$env" || fail "scheduler flags"
        [ "$(stat -c %a "$R/etc/kubernetes/pki/sa.key")" = 600 ] || fail "sa.key mode"
        [ "$(stat -c %a "$R/etc/kubernetes/encryption-config.yaml")" = 600 ] || fail "encryption config mode"
        [ "$(stat -c %a "$R/etc/kubernetes/pki/cluster-signing.key")" = 600 ] || fail "signing key mode"
        grep -q "secret: $ENC_KEY\$" "$R/etc/kubernetes/encryption-config.yaml" || fail "encryption key not in the EncryptionConfiguration"
        grep -q "^      - secretbox:$" "$R/etc/kubernetes/encryption-config.yaml" || fail "EncryptionConfiguration provider"
        cmp -s "$R/etc/kubernetes/pki/sa.key" "$K/sa.key" || fail "sa.key is not the key from KV"
        # the bundle trusts Vault's CA (the identities) and the kubelet client signer (the nodes)
        [ "$(grep -c 'BEGIN CERTIFICATE' "$R/etc/kubernetes/pki/client-ca.crt")" = 2 ] || fail "client CA bundle"
        openssl x509 -in "$R/etc/kubernetes/pki/apiserver.crt" -noout -ext subjectAltName | grep -q "IP Address:$(instance_ip "$n")" ||
                fail "apiserver certificate without the instance's address"
        grep -rq "f395accd246ae52d" "$R/agent.log" "$R/var/lib/bootagent/journal" && fail "the token was logged"
done
log "control plane: the stand-in started with the flags the agent wrote"
grep -q "kube-apiserver: ready" "$T/agent-21/var/lib/bootagent/kube-apiserver.service.log" || fail "apiserver 21 log"

# The real kubectl as the admin identity the agent made, through either member.
run=0
k() { # KUBECTL MEMBER ARGS...
        local kc=$1 m=$2
        shift 2
        run=$((run + 1))
        mkdir -p "$T/home.$run"
        HOME=$T/home.$run "$kc" --kubeconfig "$T/agent-$m/etc/kubernetes/admin.conf" --cache-dir "$T/home.$run/cache" \
                --request-timeout 20s "$@"
}
KC=${KUBECTLS[-1]}
[ "$(k "$KC" 21 get secrets -n kube-system -o json | jq '[.items[] | select(.type == "bootstrap.kubernetes.io/token")] | length')" = 1 ] ||
        fail "not exactly one bootstrap-token Secret: $(k "$KC" 21 get secrets -n kube-system)"
k "$KC" 22 get secret -n kube-system bootstrap-token-07401b -o json |
        jq -e '.data["token-secret"] | @base64d == "f395accd246ae52d"' >/dev/null || fail "bootstrap Secret: token secret"
k "$KC" 22 get secret -n kube-system bootstrap-token-07401b -o json |
        jq -e '.data["auth-extra-groups"] | @base64d == "system:bootstrappers:kubeadm:default-node-token"' >/dev/null ||
        fail "bootstrap Secret: extra group"
k "$KC" 21 get configmap -n kube-public cluster-info -o json >"$T/cluster-info.json" || fail "cluster-info"
jq -e '.data | has("kubeconfig") and has("jws-kubeconfig-07401b")' "$T/cluster-info.json" >/dev/null || fail "cluster-info keys"
jq -j .data.kubeconfig "$T/cluster-info.json" >"$T/ci.kubeconfig"
grep -q "server: $ENDPOINT\$" "$T/ci.kubeconfig" || fail "cluster-info server"
# the signature, recomputed with openssl (kubernetes-vault.md B.2)
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
h=$(printf '{"alg":"HS256","kid":"07401b"}' | b64url)
jws="$h..$(printf '%s.%s' "$h" "$(b64url <"$T/ci.kubeconfig")" | openssl dgst -sha256 -mac HMAC -macopt key:f395accd246ae52d -binary | b64url)"
[ "$(jq -r '.data["jws-kubeconfig-07401b"]' "$T/cluster-info.json")" = "$jws" ] || fail "cluster-info JWS does not verify"
for b in kubeadm:kubelet-bootstrap kubeadm:node-autoapprove-bootstrap kubeadm:node-autoapprove-certificate-rotation; do
        k "$KC" 21 get clusterrolebinding "$b" >/dev/null || fail "no ClusterRoleBinding $b: $(k "$KC" 21 get clusterrolebindings)"
done
k "$KC" 22 get rolebinding -n kube-public kubeadm:bootstrap-signer-clusterinfo -o json |
        jq -e '.subjects[0].name == "system:anonymous" and .roleRef.kind == "Role"' >/dev/null || fail "cluster-info RoleBinding"
# anonymous read of cluster-info, as nodes do first
curl -sf --cacert "$VAULT_CA" "$ENDPOINT/api/v1/namespaces/kube-public/configmaps/cluster-info" | jq -e .data.kubeconfig >/dev/null ||
        fail "anonymous cluster-info read"

# ---- nodes ----
node_conf() {
        local n=$1 R=$T/agent-$1
        mkdir -p "$R/etc/bootagent"
        cat >"$R/etc/bootagent/agent.conf" <<CONF
[agent]
role = node

[metadata]
url = http://169.254.169.254
socket = $(metadata_socket "$n")
deadline_ms = 5000

[vault]
address = http://vault.local:8200
socket = $(vault_socket "$n")
deadline_ms = 10000

[node]
discovery_deadline_ms = 20000
csr_deadline_ms = 30000
ready_deadline_ms = 30000

[units]
mode = exec
start = kubelet.service
exec_start = $KUBELET_STANDIN --kubeconfig \${KUBELET_KUBECONFIG} --node-name \${KUBELET_NODE_NAME} --heartbeat-ms 1000
CONF
}
log "nodes: n1 and n2 join"
for n in 41 42; do node_conf "$n"; done
pids=()
for n in 41 42; do run_agent "$n" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a node agent failed: $(status 41) $(status 42)"; done

# ---- a member whose etcd does not answer ----
log "control plane: an etcd pool that does not answer"
cp_conf 23 etcd-down 3000
rc=0
run_agent 23 || rc=$?
[ $rc -eq 1 ] || fail "agent 23 with its etcd down: exit $rc, expected 1"
reason=$(failed_reason 23 etcd-servers)
grep -Eq "^no etcd server within 3000 ms: no member of etcd pool 'etcd-down' \(https://127\.0\.0\.19:$ETCD_CLIENT_PORT\) answered; last: https://127\.0\.0\.19:$ETCD_CLIENT_PORT: .+" <<<"$reason" ||
        fail "etcd down: reason '$reason'; $(status 23)"
status 23 | grep -q 'outcome: failed' || fail "status 23 outcome: $(status 23)"
status 23 | grep -Fq "$reason" || fail "bootagent status does not show the reason: $(status 23)"
[ ! -e "$T/agent-23/etc/default/kubernetes-bootagent" ] || fail "etcd down: flags were written"
[ ! -e "$T/agent-23/var/lib/bootagent/kube-apiserver.service.pid" ] || fail "etcd down: a unit was started"
status 23 | grep -Eq '^run 1 +(flags|units|readyz|bootstrap) ' && fail "etcd down: stages after etcd-servers ran: $(status 23)"

# ---- crash recovery: the bootstrap objects gone, a new member killed after every stage ----
log "control plane: a third member stopped after each stage, from a cluster without bootstrap objects"
k "$KC" 21 delete secret -n kube-system bootstrap-token-07401b >/dev/null || fail "delete Secret"
k "$KC" 21 delete configmap -n kube-public cluster-info >/dev/null || fail "delete cluster-info"
k "$KC" 21 delete clusterrolebinding kubeadm:kubelet-bootstrap kubeadm:node-autoapprove-bootstrap \
        kubeadm:node-autoapprove-certificate-rotation >/dev/null || fail "delete bindings"
k "$KC" 21 delete rolebinding,role -n kube-public kubeadm:bootstrap-signer-clusterinfo >/dev/null || fail "delete RoleBinding, Role"
cp_conf 24
run_no=0
for stage in identity login secrets certificate-key certificate-signed certificates keys etcd-servers flags units \
        readyz bootstrap-secret bootstrap-cluster-info; do
        rc=0
        BOOTAGENT_ABORT_AFTER=$stage run_agent 24 || rc=$?
        run_no=$((run_no + 1))
        [ $rc -eq 99 ] || fail "abort after $stage: exit $rc, expected 99; $(status 24)"
        case $stage in
        keys | etcd-servers) [ ! -e "$T/agent-24/etc/default/kubernetes-bootagent" ] || fail "flags written before the flags stage" ;;
        esac
        [ "$(k "$KC" 22 get secrets -n kube-system -o json | jq '[.items[] | select(.type == "bootstrap.kubernetes.io/token")] | length')" -le 1 ] ||
                fail "a second bootstrap-token Secret after aborting at $stage"
done
run_agent 24 || fail "agent 24 after the aborts: $(status 24)"
run_no=$((run_no + 1))
stage_ok 24 "$run_no" bootstrap "Secret bootstrap-token-07401b kept, cluster-info kept \(endpoint $ENDPOINT\), RBAC: 5 created, 0 kept"
stage_ok 24 "$run_no" units "already running"
stage_ok 24 "$run_no" done
[ "$(k "$KC" 22 get secrets -n kube-system -o json | jq '[.items[] | select(.type == "bootstrap.kubernetes.io/token")] | length')" = 1 ] ||
        fail "not exactly one bootstrap-token Secret after the re-runs"
k "$KC" 22 get configmap -n kube-public cluster-info -o json | jq -e --arg jws "$jws" --rawfile kc "$T/ci.kubeconfig" \
        '.data.kubeconfig == $kc and .data["jws-kubeconfig-07401b"] == $jws' >/dev/null || fail "cluster-info differs after the re-runs"
# an unchanged re-run of a first member: everything kept
run_agent 21 || fail "re-run of agent 21: $(status 21)"
stage_ok 21 2 bootstrap "Secret bootstrap-token-07401b kept, cluster-info kept \(endpoint $ENDPOINT\), RBAC: 0 created, 5 kept"
stage_ok 21 2 flags "flags unchanged"

log "nodes: n3 joins through the re-made objects"
node_conf 43
run_agent 43 || fail "node n3 failed: $(status 43)"

# ---- the cluster as kubectl shows it ----
for kc in "${KUBECTLS[@]}"; do
        v=${kc##*kubectl.}
        for m in 21 22; do
                [ "$(k "$kc" "$m" get --raw /readyz --server "https://$(instance_ip "$m"):$KUBE_PORT")" = ok ] ||
                        fail "$v: /readyz through member $m"
        done
        nodes=$(k "$kc" 22 get nodes --no-headers)
        [ "$(awk '$2 == "Ready" {print $1}' <<<"$nodes" | sort | paste -sd' ')" = "n1 n2 n3" ] || fail "$v: nodes: $nodes"
        csrs=$(k "$kc" 21 get csr --no-headers)
        [ "$(grep -c 'system:bootstrap:07401b .*Approved,Issued$' <<<"$csrs")" = 3 ] || fail "$v: CSRs: $csrs"
        [ "$(wc -l <<<"$csrs")" = 3 ] || fail "$v: CSRs: $csrs"
done
log "ok"
