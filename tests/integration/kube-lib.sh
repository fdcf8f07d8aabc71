# Sourced by the integration tests that run `imgbuild kube-apiserver` (the Kubernetes API stand-in)
# on a real etcd and talk to it with the REAL kubectl: test-kube-apiserver.sh, test-pool-kube.sh.
#
# Before sourcing: KUBE_LIB_NAME (the temporary directory's prefix) and KUBE_LIB_PORTS ("LOW HIGH",
# the test's range in tests/integration/README.md). It checks the tools (exit 77 when one is
# missing), finds the kubectls (KUBECTLS: kubectl.1.27 and kubectl.1.33 beside the gcloud
# dispatcher, oldest first), makes $T and installs the EXIT trap that stops what it started (by
# PID) and prints the logs on failure. Then, in order:
#   kube_start_etcd            etcd on BASE (client) and BASE+1 (peer): ETCD_URL, ETCD_PID
#   kube_pki                   in $T: ca, apiserver (127.0.0.1), admin (system:masters), sa keys;
#                              leaf NAME SUBJECT EKU [SAN] makes more
#   kube_api_flags             KUBE_API_FLAGS: the stand-in's flags, port BASE+2 (API_PORT)
#   kube_start_api [FLAGS...]  start it (extra flags appended), wait for "ready": API_PID, API
#   kubeconfig FILE USER-YAML  a kubeconfig in $T for the stand-in
#   k KUBECTL CONF ARGS...     kubectl with $T/CONF, a fresh HOME and cache dir for every call
#   kube_wait_readyz CONF      until kubectl get --raw /readyz says ok (the system namespaces exist)
# shellcheck shell=bash

: "${IMGBUILD:?}" "${IMGBUILD_SOURCE_DIR:?}" "${KUBE_LIB_NAME:?}" "${KUBE_LIB_PORTS:?}"
for tool in etcd etcdctl openssl jq kubectl; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
KDIR=$(dirname "$(readlink -f "$(command -v kubectl)")")
KUBECTLS=()
for v in 1.27 1.33; do
    [ -x "$KDIR/kubectl.$v" ] && KUBECTLS+=("$KDIR/kubectl.$v")
done
[ ${#KUBECTLS[@]} -gt 0 ] || { echo "skipped: no kubectl.1.27 / kubectl.1.33 beside $KDIR/kubectl"; exit 77; }

T=$(mktemp -d "/tmp/$KUBE_LIB_NAME-XXXXXX")
ETCD_PID=
API_PID=
KUBE_LIB_LOGS=("$T/api.log" "$T/etcd.log")
# A test may define kube_lib_cleanup (run first, e.g. to stop its own background processes).
cleanup() {
    local rc=$?
    declare -F kube_lib_cleanup >/dev/null && kube_lib_cleanup
    # only the processes this test started, by PID (etcd may be stopped: continue it first)
    if [ -n "$API_PID" ]; then kill "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null; fi
    if [ -n "$ETCD_PID" ]; then
        kill -CONT "$ETCD_PID" 2>/dev/null
        kill "$ETCD_PID" 2>/dev/null
        wait "$ETCD_PID" 2>/dev/null
    fi
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        for f in "${KUBE_LIB_LOGS[@]}"; do
            [ -f "$f" ] && { echo "==== $f"; tail -n 40 "$f"; }
        done
    fi
    rm -rf "$T"
    exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "== $*"; }

# Three free ports BASE..BASE+2 inside the test's range.
pick_port() {
    local lo hi p
    read -r lo hi <<<"$KUBE_LIB_PORTS"
    while :; do
        p=$((lo + RANDOM % (hi - lo - 1)))
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
API=https://127.0.0.1:$API_PORT

kube_start_etcd() {
    etcd --name kube --data-dir "$T/etcd" --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "http://127.0.0.1:$((BASE + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 1))" \
        --initial-cluster "kube=http://127.0.0.1:$((BASE + 1))" --log-level warn >"$T/etcd.log" 2>&1 &
    ETCD_PID=$!
    local end=$((SECONDS + 60)) # (this and the waits below: far above what a loaded machine needs)
    while [ "$SECONDS" -lt "$end" ]; do
        ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" endpoint health >/dev/null 2>&1 && break
        sleep 0.1
    done
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD_URL" endpoint health >/dev/null 2>&1 || fail "etcd did not start"
}

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
leaf() { # name subject eku [san]
    ec "$T/$1.key"
    openssl req -new -key "$T/$1.key" -subj "$2" -out "$T/$1.csr" || fail "csr $1"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
        "$3" "${4:-}" >"$T/$1.ext"
    openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 -extfile "$T/$1.ext" \
        -out "$T/$1.pem" 2>/dev/null || fail "cert $1"
}
kube_pki() {
    ec "$T/ca.key"
    openssl req -x509 -new -key "$T/ca.key" -subj /CN=kubernetes-ca -days 2 -out "$T/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || fail "CA"
    leaf apiserver /CN=kube-apiserver serverAuth subjectAltName=IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default
    leaf admin "/O=system:masters/CN=kubernetes-admin" clientAuth
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/sa.key" 2>/dev/null
    openssl pkey -in "$T/sa.key" -pubout -out "$T/sa.pub"
}

# Relative file names: the flags are used from $T (flag validation prints them back).
kube_api_flags() {
    KUBE_API_FLAGS=(--etcd-servers "$ETCD_URL" --tls-cert-file apiserver.pem --tls-private-key-file apiserver.key
        --client-ca-file ca.pem --secure-port "$API_PORT" --bind-address 127.0.0.1
        --service-account-key-file sa.pub --service-account-signing-key-file sa.key
        --service-account-issuer https://kubernetes.default.svc.cluster.local
        --service-cluster-ip-range 10.96.0.0/12 --enable-bootstrap-token-auth --authorization-mode Node,RBAC
        --cluster-signing-cert-file ca.pem --cluster-signing-key-file ca.key
        --allow-privileged=true --v=2)
}

kube_start_api() {
    (cd "$T" && exec "$IMGBUILD" kube-apiserver "${KUBE_API_FLAGS[@]}" "$@") >"$T/api.log" 2>&1 &
    API_PID=$!
    local end=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$end" ]; do
        grep -q '^kube-apiserver: ready$' "$T/api.log" && break
        kill -0 "$API_PID" 2>/dev/null || fail "kube-apiserver exited"
        sleep 0.1
    done
    grep -q '^kube-apiserver: ready$' "$T/api.log" || fail "kube-apiserver not ready"
}

kubeconfig() { # FILE USER-YAML
    cat >"$T/$1" <<EOF
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

k() { # KUBECTL CONFIG ARGS...: a fresh HOME and cache dir for every call (also from a subshell)
    local kc=$1 conf=$2 home
    shift 2
    home=$(mktemp -d "$T/home.XXXXXX") || fail "mktemp"
    HOME=$home "$kc" --kubeconfig "$T/$conf" --cache-dir "$home/cache" --request-timeout 20s "$@"
}

kube_wait_readyz() { # CONF
    local end=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$end" ]; do
        [ "$(k "${KUBECTLS[0]}" "$1" get --raw /readyz 2>/dev/null)" = ok ] && break
        sleep 0.2
    done
}
