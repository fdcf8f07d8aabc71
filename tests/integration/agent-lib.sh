# Shared helpers for the bootagent integration tests (sourced). They run `imgbuild serve` (the
# local cloud: metadata, Vault-compatible service, Exoscale-compatible API) and bootagents with
# `units = exec`, which start real etcd 3.4 processes on 127.0.0.11.. . Everything started here
# is stopped by agent_cleanup (install it with trap).

set -euo pipefail

: "${IMGBUILD:?}" "${BOOTAGENT:?}"
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "skip: etcd/etcdctl not installed"; exit 77; }
"$IMGBUILD" serve --help >/dev/null 2>&1 || { echo "skip: imgbuild serve not available"; exit 77; }

T=$(mktemp -d /tmp/agent-test.XXXXXX)
SERVE_PID=
# Ports below the ephemeral range (32768+). Each test that runs in parallel with others owns a
# range (see tests/integration/README.md) of PORT_BLOCKS (default 50) blocks of 100; a random
# block in it.
BASE=$(( ${PORT_RANGE_START:-20000} + (RANDOM % ${PORT_BLOCKS:-50}) * 100 ))
API_PORT=$((BASE))
ETCD_CLIENT_PORT=$((BASE + 79))
ETCD_PEER_PORT=$((BASE + 80))
POOL_ID=6d540f20-ac97-dd6a-5d67-cc11a5e224a5
NET_ID=8a1d3c52-0c4f-4c1b-9d0e-1f2e3d4c5b6a

instance_id() { printf '00000000-0000-4000-8000-%012d' "$1"; }
instance_ip() { echo "127.0.0.$((10 + $1))"; }
# Each instance's metadata and Vault are UNIX sockets of the local cloud (only this user can
# connect), as `imgbuild pool` sets them up; the cloud API stays on API_PORT.
metadata_socket() { echo "$T/state/sockets/m$1-metadata.sock"; }
vault_socket() { echo "$T/state/sockets/m$1-vault.sock"; }

source "$(dirname "${BASH_SOURCE[0]}")/agent-conf-lib.sh"

log() { echo "[$(date +%T.%3N)] $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

agent_cleanup() {
        local rc=$?
        set +e
        for pidfile in "$T"/agent-*/var/lib/bootagent/*.pid; do
                [ -f "$pidfile" ] || continue
                local pid; pid=$(cat "$pidfile")
                # The agent started each etcd as the leader of its own process group.
                kill -TERM -- "-$pid" 2>/dev/null
        done
        [ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
        sleep 0.3
        for pidfile in "$T"/agent-*/var/lib/bootagent/*.pid; do
                [ -f "$pidfile" ] && kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null
        done
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
                for f in "$T"/serve.log "$T"/agent-*/agent.log "$T"/agent-*/var/lib/bootagent/etcd.service.log; do
                        [ -f "$f" ] && { echo "==== $f"; tail -n 40 "$f"; }
                done
        fi
        rm -rf "$T"
        exit $rc
}

# write_cloud_json N...: the pool holds the listed instance numbers (all "running").
write_cloud_json() {
        local members=("$@") inst="" sep="" n
        for n in "${members[@]}"; do
                inst+="$sep{\"id\":\"$(instance_id "$n")\",\"name\":\"etcd-$n\",\"state\":\"running\",\"pool\":\"$POOL_ID\",
                  \"private_ip\":\"$(instance_ip "$n")\",\"public_ip\":\"$(instance_ip "$n")\",
                  \"security_groups\":[\"etcd\"],\"labels\":{\"role\":\"etcd\"},\"user_data\":\"\",
                  \"metadata_socket\":\"m$n-metadata.sock\",\"vault_socket\":\"m$n-vault.sock\"}"
                sep=","
        done
        cat > "$T/state/cloud.json.tmp" <<JSON
{
  "zone": "local", "api_port": $API_PORT,
  "api_key": "EXOtest0000000000000000000", "api_secret": "test-secret-not-real",
  "instances": [ $inst ],
  "pools": [ { "id": "$POOL_ID", "name": "etcd", "size": 3, "template": "etcd@1", "private_network": "$NET_ID" } ],
  "vault": {
    "roles": { "etcd": { "pool": "etcd", "security_group": "etcd", "policies": ["etcd"], "ttl": 3600 } },
    "policies": { "etcd": { "secret/data/etcd/*": ["read", "create", "update"],
                            "secret/data/bootagent/*": ["read"],
                            "pki/issue/etcd-peer": ["update"], "pki/sign/etcd-peer": ["update"] } },
    "pki_roles": { "etcd-peer": { "allowed_domains": ["etcd.local"], "allow_subdomains": true,
                                  "allow_ip_sans": true, "allow_any_name": true, "max_ttl": 86400 } },
    "kv": { "bootagent/cloud-api": { "api_key": "EXOtest0000000000000000000", "api_secret": "test-secret-not-real",
                                     "api_url": "http://127.0.0.1:$API_PORT/v2" },
            "etcd/shared": { "token": "shared-etcd-token" } }
  }
}
JSON
        mv "$T/state/cloud.json.tmp" "$T/state/cloud.json"
}

start_serve() {
        mkdir -p "$T/state"
        write_cloud_json "$@"
        rm -f "$T/serve.out" # a restarted serve: the old one said ready (the job truncates it late)
        "$IMGBUILD" serve --state-dir "$T/state" > "$T/serve.out" 2> "$T/serve.log" &
        SERVE_PID=$!
        local end=$((SECONDS + 60)) # far above what a loaded machine needs
        while [ "$SECONDS" -lt "$end" ]; do
                grep -q "serve: ready" "$T/serve.out" 2>/dev/null && return 0
                kill -0 "$SERVE_PID" 2>/dev/null || fail "imgbuild serve exited"
                sleep 0.1
        done
        fail "imgbuild serve not ready"
}

# wait_metadata N: the services re-read cloud.json; wait until instance N's metadata answers.
wait_metadata() {
        local end=$((SECONDS + 60)) # far above what a loaded machine needs
        while [ "$SECONDS" -lt "$end" ]; do
                curl -sf --unix-socket "$(metadata_socket "$1")" http://169.254.169.254/latest/meta-data/instance-id \
                        >/dev/null && return 0
                sleep 0.1
        done
        fail "metadata for instance $1 not served"
}

# write_agent_config N: agent.conf for test instance N ([pki] gets $PKI_EXTRA, if set).
write_agent_config() {
        AGENT_EXTRA="renew_fraction = 0.5" write_etcd_agent_conf "$T/agent-$1" "test instance $1" "$1" \
                "$(metadata_socket "$1")" "$(vault_socket "$1")" "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"
}

# write_cp_agent_conf N [ETCD_POOL [ETCD_DEADLINE_MS]]: agent.conf of control-plane instance N
#   (test-agent-control-plane, ci/bench-agent.sh): the certificates and kubeconfigs kubeadm makes,
#   [control-plane] for the endpoint ENDPOINT (https://IP:PORT; IP in the serving certificate) and
#   the apiserver on KUBE_PORT, etcd of pool ETCD_POOL (default etcd) on ETCD_CLIENT_PORT, units =
#   exec starting `imgbuild kube-apiserver` with the flags the agent writes.
write_cp_agent_conf() {
        local n=$1 pool=${2:-etcd} etcd_deadline=${3:-30000} R=$T/agent-$1
        local endpoint_ip=${ENDPOINT#https://}
        endpoint_ip=${endpoint_ip%:*}
        mkdir -p "$R/etc/bootagent"
        cat >"$R/etc/bootagent/agent.conf" <<CONF
[agent]
role = control-plane

[metadata]
url = http://169.254.169.254
socket = $(metadata_socket "$n")
deadline_ms = 5000

[vault]
address = http://vault.local:8200
socket = $(vault_socket "$n")
deadline_ms = 10000

[certificate apiserver]
role = kube-server
common_name = kube-apiserver
alt_names = kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local
# the service IP, the endpoint's address, the instance's own
ip_sans = 10.96.0.1, $endpoint_ip, \${local_ipv4}
ttl = 2h
cert_file = /etc/kubernetes/pki/apiserver.crt
key_file = /etc/kubernetes/pki/apiserver.key
ca_file = /etc/kubernetes/pki/ca.crt
restart = kube-apiserver.service

[certificate apiserver-etcd-client]
role = kube-masters
common_name = kube-apiserver-etcd-client
organization = system:masters
ttl = 2h
cert_file = /etc/kubernetes/pki/apiserver-etcd-client.crt
key_file = /etc/kubernetes/pki/apiserver-etcd-client.key
ca_file = /etc/kubernetes/pki/etcd/ca.crt
restart = kube-apiserver.service

[certificate apiserver-kubelet-client]
role = kube-masters
common_name = kube-apiserver-kubelet-client
organization = system:masters
ttl = 2h
cert_file = /etc/kubernetes/pki/apiserver-kubelet-client.crt
key_file = /etc/kubernetes/pki/apiserver-kubelet-client.key
ca_file = /etc/kubernetes/pki/ca.crt

[certificate front-proxy-client]
role = kube-client
common_name = front-proxy-client
ttl = 2h
cert_file = /etc/kubernetes/pki/front-proxy-client.crt
key_file = /etc/kubernetes/pki/front-proxy-client.key
ca_file = /etc/kubernetes/pki/front-proxy-ca.crt

[certificate admin]
role = kube-masters
common_name = kubernetes-admin
organization = system:masters
ttl = 2h
cert_file = /etc/kubernetes/pki/admin.crt
key_file = /etc/kubernetes/pki/admin.key
ca_file = /etc/kubernetes/pki/ca.crt

[certificate controller-manager]
role = kube-client
common_name = system:kube-controller-manager
ttl = 2h
cert_file = /etc/kubernetes/pki/controller-manager.crt
key_file = /etc/kubernetes/pki/controller-manager.key
ca_file = /etc/kubernetes/pki/ca.crt

[certificate scheduler]
role = kube-client
common_name = system:kube-scheduler
ttl = 2h
cert_file = /etc/kubernetes/pki/scheduler.crt
key_file = /etc/kubernetes/pki/scheduler.key
ca_file = /etc/kubernetes/pki/ca.crt

[kubeconfig admin]
file = /etc/kubernetes/admin.conf
certificate = admin
server = https://\${local_ipv4}:$KUBE_PORT

[kubeconfig controller-manager]
file = /etc/kubernetes/controller-manager.conf
certificate = controller-manager
server = https://\${local_ipv4}:$KUBE_PORT

[kubeconfig scheduler]
file = /etc/kubernetes/scheduler.conf
certificate = scheduler
server = https://\${local_ipv4}:$KUBE_PORT

[control-plane]
endpoint = $ENDPOINT
etcd_pool = $pool
etcd_port = $ETCD_CLIENT_PORT
secure_port = $KUBE_PORT
service_account_secret = kubernetes/service-account
encryption_secret = kubernetes/encryption
bootstrap_token_secret = kubernetes/bootstrap-token
cluster_signing_secret = kubernetes/cluster-signing
etcd_deadline_ms = $etcd_deadline
ready_deadline_ms = 60000

[units]
mode = exec
start = kube-apiserver.service
exec_start = $IMGBUILD kube-apiserver \${KUBE_APISERVER_ARGS} \${KUBE_CLUSTER_SIGNING_ARGS}
CONF
}

run_agent() {
        local n=$1; shift
        "$BOOTAGENT" firstboot --root "$T/agent-$n" "$@" >> "$T/agent-$n/agent.log" 2>&1
}

endpoint() { echo "https://$(instance_ip "$1"):$ETCD_CLIENT_PORT"; }

ctl() {
        local n=$1; shift
        local p="$T/agent-$n/etc/etcd/pki"
        ETCDCTL_API=3 etcdctl --cacert "$p/ca.crt" --cert "$p/etcd.crt" --key "$p/etcd.key" \
                --dial-timeout 3s --command-timeout 5s --endpoints "$(endpoint "$n")" "$@"
}

etcd_pid() { cat "$T/agent-$1/var/lib/bootagent/etcd.service.pid"; }
# Whether PID runs: a stopped etcd whose parent is gone may stay a zombie until PID 1 reaps it,
# and here PID 1 need not reap at all.
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }

# member_list N: "name peerurl learner?" lines, sorted.
member_lines() { ctl "$1" member list -w simple | awk -F', ' '{print $3, $4, $6}' | sort; }
