#!/usr/bin/env bash
# bootagent benchmark, per role, medians over RUNS first boots (each on a fresh instance):
#   etcd: a one-member etcd bootstrap against the local cloud (`imgbuild serve`) with a real etcd;
#   node: a Kubernetes node join against `imgbuild kube-apiserver` (on a real etcd) with
#         tests/kubelet-standin as kubelet (units = exec), as tests/integration/test-agent-node.sh
#         sets it up, without [vault] (a node's join needs only its user-data); join time =
#         agent start -> the Node seen Ready (the ready stage's end);
#   control-plane: a first control-plane member against a one-member etcd pool (an etcd agent),
#         as tests/integration/test-agent-control-plane.sh sets it up (`imgbuild serve` with the KV
#         secrets and PKI roles, the agent.conf agent-lib.sh writes, units = exec starting
#         `imgbuild kube-apiserver` with the flags the agent writes); control-plane time = agent
#         start -> /readyz and the bootstrap objects (the bootstrap stage's end). Each run is a fresh
#         instance on an etcd emptied of the apiserver's objects, so every run creates them.
# Figures: peak RSS of the first boot (/usr/bin/time -v), split into the agent's private memory
# (peak RssAnon: heap, stacks) and the pages of shared libraries it maps (peak RssFile: libcrypto,
# libc, libcurl and everything they link), with the mappings of 256 KiB or more at that peak (last
# run); the agent's own time excluding waits (its journal timeline minus the stages' wait_ms: the
# retries' waits; a request's round trip counts as the agent's); its CPU time; wall clock. A
# benchmark prints figures; it asserts no timing.
# Usage: ci/bench-agent.sh [--runs N] [--role etcd|node|control-plane|all] [BUILD_DIR]   (defaults: 5, all, build)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
runs=5 roles=all
while [ $# -gt 0 ]; do
        case $1 in
        --runs) runs=$2; shift 2 ;;
        --role) roles=$2; shift 2 ;;
        -*) echo "usage: ci/bench-agent.sh [--runs N] [--role etcd|node|control-plane|all] [BUILD_DIR]"; exit 2 ;;
        *) break ;;
        esac
done
case $roles in all) roles="etcd node control-plane" ;; etcd | node | control-plane) ;; *) echo "bench-agent: unknown role $roles"; exit 2 ;; esac
build=${1:-$src/build}
export IMGBUILD=${IMGBUILD:-$build/builder/imgbuild} BOOTAGENT=${BOOTAGENT:-$build/bootagent/bootagent}
KUBELET_STANDIN=${KUBELET_STANDIN:-$build/tests/kubelet-standin}
[ -x "$BOOTAGENT" ] || { echo "bench-agent: build first ($BOOTAGENT missing)"; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench-agent: needs GNU time (Debian package time)"; exit 1; }

# agent-lib.sh: T, the local cloud (start_serve), and agent_cleanup, which stops every unit the
# agents under $T/agent-* started (etcd, the stand-in kubelets) and serve.
source "$src/tests/integration/agent-lib.sh"
KETCD_PID= API_PID=
bench_cleanup() {
        local rc=$?
        set +e
        [ -n "$API_PID" ] && { kill "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null; }
        [ -n "$KETCD_PID" ] && { kill "$KETCD_PID" 2>/dev/null; wait "$KETCD_PID" 2>/dev/null; }
        [ $rc -ne 0 ] && [ -f "$T/api.log" ] && { echo "==== $T/api.log"; tail -n 20 "$T/api.log"; }
        (exit $rc)
        agent_cleanup
}
trap bench_cleanup EXIT

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# measure ROOT OUT [STAGE]: one first boot of the agent in ROOT; appends "rss anon file wall_ms
# total_ms wait_ms stage_ms cpu_ms" to OUT.figures (stage_ms: the end of STAGE, default ready, 0 if
# none; cpu_ms: the agent's user + system time) and keeps the mappings at the peak of file pages in
# OUT.smaps.
measure() {
        local root=$1 out=$2 stage=${3:-ready} anon=0 file=0 timer agent t_start t_end json
        t_start=$(now_ms)
        /usr/bin/time -v -o "$out.time" "$BOOTAGENT" firstboot --root "$root" > "$root/agent.log" 2>&1 &
        timer=$!
        # Sample the agent's /proc status every 5 ms for the peaks of its private and file pages.
        : > "$out.smaps"
        while kill -0 "$timer" 2>/dev/null; do
                agent=$(pgrep -P "$timer" -x bootagent || true)
                [ -n "$agent" ] || { sleep 0.005; continue; }
                while read -r k v _; do
                        case $k in
                        RssAnon:) [ "$v" -gt "$anon" ] && anon=$v ;;
                        RssFile:)
                                # At each new peak, keep the mappings' sizes, to say where the pages are.
                                if [ "$v" -gt "$file" ]; then
                                        file=$v
                                        awk '/^[0-9a-f]+-/ {name = $6} /^Rss:/ {rss[name] += $2}
                                             END {for (n in rss) if (rss[n] >= 256) printf "%d KiB %s\n", rss[n], n}' \
                                            "/proc/$agent/smaps" 2>/dev/null | sort -rn > "$out.smaps.new" || true
                                        [ -s "$out.smaps.new" ] && mv "$out.smaps.new" "$out.smaps"
                                fi ;;
                        esac
                done 2>/dev/null < "/proc/$agent/status" || true
                sleep 0.005
        done
        wait "$timer" || { cat "$root/agent.log"; exit 1; }
        t_end=$(now_ms)
        json=$("$BOOTAGENT" status --root "$root" --json)
        local rss total waits stage_ms cpu
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out.time")
        cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {printf "%d", s * 1000}' "$out.time")
        total=$(jq '[.stages[] | select(.stage == "done")] | last | .t_ms' <<< "$json")
        waits=$(jq '[.stages[] | .wait_ms] | add' <<< "$json")
        stage_ms=$(jq --arg s "$stage" '[.stages[] | select(.stage == $s)] | last | .t_ms // 0' <<< "$json")
        echo "$rss $anon $file $((t_end - t_start)) $total $waits $stage_ms $cpu" >> "$out.figures"
        "$BOOTAGENT" status --root "$root" > "$out.status"
}

# report ROLE OUT: medians over the runs, every run's figures, the last run's peak mappings and stages.
report() {
        local role=$1 out=$2 col what=
        col() { awk -v c="$1" '{print $c}' "$out.figures" | median; }
        case $role in node) what="join time" ;; control-plane) what="control-plane time" ;; esac
        echo "== $role: medians over $(wc -l < "$out.figures") first boots"
        echo "peak RSS (firstboot):    $(col 1) KiB (peaks sampled: private $(col 2) KiB, shared library pages $(col 3) KiB)"
        echo "wall clock:              $(col 4) ms (agent start -> exit)"
        [ "$role" = node ] && echo "join time:               $(col 7) ms (agent start -> Node Ready, the ready stage's end)"
        [ "$role" = control-plane ] &&
                echo "control-plane time:      $(col 7) ms (agent start -> /readyz and the bootstrap objects, the bootstrap stage's end)"
        echo "agent timeline:          $(col 5) ms total, $(col 6) ms waiting, $(awk '{print $5 - $6}' "$out.figures" | median) ms excluding waits"
        echo "agent CPU:               $(col 8) ms (user + system; the timeline's time excluding waits also holds the requests' round trips)"
        echo "runs (peak RSS, private, shared library pages; wall clock, total, waiting, excluding waits${what:+, $what}; CPU):"
        awk -v stage="$what" \
                '{printf "  %s %s %s KiB; %s %s %s %s%s ms; %s ms\n", $1, $2, $3, $4, $5, $6, $5 - $6, stage != "" ? " " $7 : "", $8}' \
                "$out.figures"
        echo "mappings of 256 KiB or more at the peak of shared library pages (last run):"
        sed 's/^/  /' "$out.smaps"
        echo "stages (last run):"
        sed 's/^/  /' "$out.status"
}

# ---- etcd: a fresh local cloud and agent per run ----
bench_etcd() {
        local i
        for i in $(seq "$runs"); do
                start_serve 1
                write_agent_config 1
                measure "$T/agent-1" "$T/etcd"
                kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
                SERVE_PID=
                # etcd (its process group) must be gone before the next run binds its ports
                local pid
                pid=$(cat "$T/agent-1/var/lib/bootagent/etcd.service.pid")
                kill -TERM -- "-$pid" 2>/dev/null || true
                for _ in $(seq 100); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
                rm -rf "$T/agent-1" "$T/state"
        done
        report etcd "$T/etcd"
}

# ---- node: the cluster side once (etcd, the API stand-in, tokens, cluster-info), one instance
# and stand-in kubelet per run ----
bench_node() {
        for tool in etcd openssl jq curl; do
                command -v "$tool" > /dev/null || { echo "bench-agent: node: needs $tool"; exit 1; }
        done
        [ -x "$KUBELET_STANDIN" ] || { echo "bench-agent: build first ($KUBELET_STANDIN missing)"; exit 1; }
        local k=$T/kube base i
        mkdir -p "$k"
        # Ports: test-agent-node's range 1100-2999 (tests/integration/README.md), blocks of 40;
        # benchmarks and tests do not run together. The instances' metadata and Vault are sockets.
        for _ in $(seq 50); do
                base=$((1100 + (RANDOM % 47) * 40))
                (exec 3<> "/dev/tcp/127.0.0.1/$base") 2> /dev/null || (exec 3<> "/dev/tcp/127.0.0.1/$((base + 2))") 2> /dev/null ||
                        (exec 3<> "/dev/tcp/127.0.0.1/$((base + 3))") 2> /dev/null || break
        done
        local etcd_url=http://127.0.0.1:$base api_port=$((base + 2)) exo_port=$((base + 3))
        local endpoint=https://127.0.0.1:$api_port
        etcd --name kube --data-dir "$k/etcd" --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
                --listen-peer-urls "http://127.0.0.1:$((base + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((base + 1))" \
                --initial-cluster "kube=http://127.0.0.1:$((base + 1))" --log-level warn > "$k/etcd.log" 2>&1 &
        KETCD_PID=$!
        (
                cd "$k"
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2> /dev/null
                openssl req -x509 -new -key ca.key -subj /CN=ca -days 2 -out ca.pem \
                        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2> /dev/null
                for leaf in "apiserver /CN=kube-apiserver serverAuth subjectAltName=IP:127.0.0.1" \
                        "admin /O=system:masters/CN=kubernetes-admin clientAuth"; do
                        set -- $leaf
                        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2> /dev/null
                        openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
                        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
                                "$3" "${4:-}" > "$1.ext"
                        openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" \
                                -out "$1.pem" 2> /dev/null
                done
                openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2> /dev/null
                openssl pkey -in sa.key -pubout -out sa.pub
        )
        local pin
        pin="sha256:$(openssl x509 -in "$k/ca.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -r | cut -d' ' -f1)"
        for _ in $(seq 100); do curl -sf "$etcd_url/health" > /dev/null && break; sleep 0.1; done
        (cd "$k" && exec "$IMGBUILD" kube-apiserver --etcd-servers "$etcd_url" --tls-cert-file apiserver.pem \
                --tls-private-key-file apiserver.key --client-ca-file ca.pem --secure-port "$api_port" --bind-address 127.0.0.1 \
                --service-account-key-file sa.pub --service-account-signing-key-file sa.key \
                --service-account-issuer https://kubernetes.default.svc.cluster.local --enable-bootstrap-token-auth \
                --authorization-mode Node,RBAC --cluster-signing-cert-file ca.pem --cluster-signing-key-file ca.key) > "$T/api.log" 2>&1 &
        API_PID=$!
        for _ in $(seq 100); do grep -q '^kube-apiserver: ready$' "$T/api.log" && break; sleep 0.1; done
        grep -q '^kube-apiserver: ready$' "$T/api.log" || fail "kube-apiserver not ready"
        # The cluster side of a join as kubeadm init leaves it (test-agent-node.sh does it with kubectl).
        post() { # PATH JSON
                curl -sf --cacert "$k/ca.pem" --cert "$k/admin.pem" --key "$k/admin.key" -H 'Content-Type: application/json' \
                        -X POST --data-binary "$2" "$endpoint$1" > /dev/null || fail "POST $1"
        }
        local token=07401b.f395accd246ae52d
        post /api/v1/namespaces/kube-system/secrets '{"apiVersion":"v1","kind":"Secret",
                "metadata":{"name":"bootstrap-token-07401b","namespace":"kube-system"},"type":"bootstrap.kubernetes.io/token",
                "stringData":{"token-id":"07401b","token-secret":"f395accd246ae52d","usage-bootstrap-authentication":"true",
                "usage-bootstrap-signing":"true","auth-extra-groups":"system:bootstrappers:kubeadm:default-node-token"}}'
        cat > "$k/cluster-info.kubeconfig" << EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$k/ca.pem")
    server: $endpoint
  name: ""
contexts: null
current-context: ""
kind: Config
preferences: {}
users: null
EOF
        b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
        local h p jws
        h=$(printf '{"alg":"HS256","kid":"07401b"}' | b64url)
        p=$(b64url < "$k/cluster-info.kubeconfig")
        jws="$h..$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -mac HMAC -macopt key:f395accd246ae52d -binary | b64url)"
        post /api/v1/namespaces/kube-public/configmaps "$(jq -n --rawfile kc "$k/cluster-info.kubeconfig" --arg jws "$jws" \
                '{apiVersion: "v1", kind: "ConfigMap", metadata: {name: "cluster-info", namespace: "kube-public"},
                  data: {kubeconfig: $kc, "jws-kubeconfig-07401b": $jws}}')"
        post /apis/rbac.authorization.k8s.io/v1/clusterrolebindings '{"apiVersion":"rbac.authorization.k8s.io/v1",
                "kind":"ClusterRoleBinding","metadata":{"name":"kubeadm-node-autoapprove-bootstrap"},
                "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole",
                           "name":"system:certificates.k8s.io:certificatesigningrequests:nodeclient"},
                "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group",
                             "name":"system:bootstrappers:kubeadm:default-node-token"}]}'

        # the local cloud: instance i has the user-data of node n<i>
        local inst="" sep=""
        for i in $(seq "$runs"); do
                inst+="$sep{\"id\":\"$(instance_id "$i")\",\"name\":\"node-$i\",\"state\":\"running\",\"pool\":\"p1\",
                  \"private_ip\":\"127.0.0.1\",\"public_ip\":\"127.0.0.1\",\"security_groups\":[\"nodes\"],\"labels\":{},
                  \"user_data\":\"kube_token=$token\\nkube_endpoint=$endpoint\\nkube_ca_pin=$pin\\nnode_name=n$i\\n\",
                  \"metadata_socket\":\"m$i-metadata.sock\",\"vault_socket\":\"m$i-vault.sock\"}"
                sep=,
        done
        mkdir -p "$T/state"
        cat > "$T/state/cloud.json" << JSON
{
  "zone": "local", "api_port": $exo_port,
  "api_key": "EXOtest0000000000000000000", "api_secret": "test-secret-not-real",
  "instances": [ $inst ],
  "pools": [ { "id": "p1", "name": "nodes", "size": $runs, "template": "node@1" } ],
  "vault": {
    "roles": { "node": { "pool": "nodes", "security_group": "nodes", "policies": ["node"], "ttl": 3600 } },
    "policies": { "node": { "secret/data/node/*": ["read"] } }
  }
}
JSON
        "$IMGBUILD" serve --state-dir "$T/state" > "$T/serve.out" 2> "$T/serve.log" &
        SERVE_PID=$!
        for _ in $(seq 600); do grep -q "serve: ready" "$T/serve.out" && break; sleep 0.1; done
        grep -q "serve: ready" "$T/serve.out" || fail "imgbuild serve not ready"

        for i in $(seq "$runs"); do
                local root=$T/agent-node-$i
                wait_metadata "$i"
                mkdir -p "$root/etc/bootagent"
                cat > "$root/etc/bootagent/agent.conf" << CONF
[agent]
role = node

[metadata]
url = http://169.254.169.254
socket = $(metadata_socket "$i")

# no [vault]: the node joins with its user-data alone

[node]
ready_deadline_ms = 60000

[units]
mode = exec
start = kubelet.service
exec_start = $KUBELET_STANDIN --kubeconfig \${KUBELET_KUBECONFIG} --node-name \${KUBELET_NODE_NAME} --heartbeat-ms 1000
CONF
                measure "$root" "$T/node"
                # the stand-in kubelet is stopped now: the next run measures alone
                kill -TERM -- "-$(cat "$root/var/lib/bootagent/kubelet.service.pid")" 2>/dev/null || true
        done
        report node "$T/node"
        # the cluster side stopped too: a later role measures alone and starts its own local cloud
        kill "$API_PID" "$KETCD_PID" 2> /dev/null || true
        wait "$API_PID" "$KETCD_PID" 2> /dev/null || true
        API_PID= KETCD_PID=
        kill -TERM "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
        SERVE_PID=
        rm -rf "$T/state"
}

# ---- control-plane: the local cloud and a one-member etcd pool (an etcd agent) once; per run a
# fresh control-plane instance on an etcd without the apiserver's objects ----
bench_control_plane() {
        for tool in etcdctl openssl jq curl; do
                command -v "$tool" > /dev/null || { echo "bench-agent: control-plane: needs $tool"; exit 1; }
        done
        # Ports: test-agent-control-plane's range 27500-29499 (tests/integration/README.md), its
        # layout (agent-lib.sh's blocks of 100, the apiservers on BASE + 43); benchmarks and tests do
        # not run together. The instances' metadata and Vault are sockets.
        for _ in $(seq 50); do
                BASE=$((27500 + (RANDOM % 20) * 100))
                (exec 3<> "/dev/tcp/127.0.0.1/$BASE") 2> /dev/null || break
        done
        API_PORT=$BASE ETCD_CLIENT_PORT=$((BASE + 79)) ETCD_PEER_PORT=$((BASE + 80))
        KUBE_PORT=$((BASE + 43))
        local K=$T/keys i n pid enc token=07401b.f395accd246ae52d cp_pool=7e3a1c00-0000-4000-8000-00000000c0c0
        # what the platform keeps in Vault KV, made with openssl as the test does
        mkdir -p "$K"
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/sa.key" 2> /dev/null
        openssl pkey -in "$K/sa.key" -pubout -out "$K/sa.pub"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/signing.key" 2> /dev/null
        openssl req -x509 -new -key "$K/signing.key" -subj "/CN=kubelet-client-signer" -days 2 -out "$K/signing.crt" \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2> /dev/null
        enc=$(head -c 32 /dev/urandom | base64 -w0)
        # the local cloud: etcd instance 1 (pool etcd), control-plane instances 21.. (pool cp), one a run
        mkdir -p "$T/state"
        jq -n --arg api "$API_PORT" --arg etcd_pool "$POOL_ID" --arg etcd_net "$NET_ID" --arg cp_pool "$cp_pool" --argjson runs "$runs" \
                --rawfile sa_key "$K/sa.key" --rawfile sa_pub "$K/sa.pub" --arg enc "$enc" \
                --rawfile sign_crt "$K/signing.crt" --rawfile sign_key "$K/signing.key" --arg token "$token" '
        def inst($n; $name; $pool; $sg): {id: ("00000000-0000-4000-8000-" + ("000000000000" + ($n|tostring))[-12:]),
                name: $name, state: "running", pool: $pool, private_ip: ("127.0.0." + ((10 + $n)|tostring)),
                public_ip: ("127.0.0." + ((10 + $n)|tostring)), security_groups: [$sg], labels: {}, user_data: "",
                metadata_socket: ("m\($n)-metadata.sock"), vault_socket: ("m\($n)-vault.sock")};
        {zone: "local", api_port: ($api|tonumber), api_key: "EXOtest0000000000000000000", api_secret: "test-secret-not-real",
         instances: ([inst(1; "etcd-1"; $etcd_pool; "etcd")] + [range(21; 21 + $runs) | inst(.; "cp-\(.)"; $cp_pool; "cp")]),
         pools: [{id: $etcd_pool, name: "etcd", size: 1, template: "etcd@1", private_network: $etcd_net},
                 {id: $cp_pool, name: "cp", size: $runs, template: "control-plane@1"}],
         vault: {
           roles: {etcd: {pool: "etcd", security_group: "etcd", policies: ["etcd"], ttl: 3600},
                   "control-plane": {pool: "cp", security_group: "cp", policies: ["cp"], ttl: 3600}},
           policies: {etcd: {"secret/data/etcd/*": ["read", "create", "update"], "secret/data/bootagent/*": ["read"],
                             "pki/issue/etcd-peer": ["update"], "pki/sign/etcd-peer": ["update"]},
                      cp: {"secret/data/kubernetes/*": ["read"], "secret/data/bootagent/*": ["read"],
                           "pki/sign/kube-server": ["update"], "pki/sign/kube-masters": ["update"],
                           "pki/sign/kube-client": ["update"]}},
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
                "kubernetes/cluster-signing": {cert: $sign_crt, key: $sign_key}}}}' > "$T/state/cloud.json"
        rm -f "$T/serve.out"
        "$IMGBUILD" serve --state-dir "$T/state" > "$T/serve.out" 2> "$T/serve.log" &
        SERVE_PID=$!
        for _ in $(seq 600); do grep -q "serve: ready" "$T/serve.out" 2> /dev/null && break; sleep 0.1; done
        grep -q "serve: ready" "$T/serve.out" || fail "imgbuild serve not ready"
        wait_metadata 1
        # the etcd pool: one etcd agent (not measured)
        write_agent_config 1
        run_agent 1 || fail "the etcd agent failed: $("$BOOTAGENT" status --root "$T/agent-1")"

        for i in $(seq "$runs"); do
                n=$((20 + i))
                wait_metadata "$n"
                # the endpoint is the member itself (its serving certificate names it)
                ENDPOINT=https://$(instance_ip "$n"):$KUBE_PORT
                write_cp_agent_conf "$n"
                measure "$T/agent-$n" "$T/control-plane" bootstrap
                # the apiserver stopped and its objects gone: the next run is a first member again
                pid=$(cat "$T/agent-$n/var/lib/bootagent/kube-apiserver.service.pid")
                kill -TERM -- "-$pid" 2> /dev/null || true
                for _ in $(seq 100); do kill -0 -- "-$pid" 2> /dev/null || break; sleep 0.1; done
                ctl 1 del --prefix /registry/ > /dev/null || fail "emptying etcd"
        done
        report control-plane "$T/control-plane"
}

size=$(stat -c %s "$BOOTAGENT")
stripped=$(strip -o "$T/bootagent.stripped" "$BOOTAGENT" && stat -c %s "$T/bootagent.stripped")
echo "bootagent binary:        $size bytes ($stripped stripped)"
for role in $roles; do
        "bench_${role//-/_}"
done
