#!/usr/bin/env bash
# The real `imgbuild serve` binary driven with curl: cloud.json errors (exit 2 with the JSON
# path), metadata, Vault login/KV/cas/PKI (checked with the openssl CLI), the signed API,
# a cloud.json reload, an instance on UNIX sockets (private to this user: another user is
# refused where the TCP port answers it), a clean SIGTERM stop, and state kept across a restart.
set -uo pipefail

: "${IMGBUILD:?}" "${IMGBUILD_SOURCE_DIR:?}"
for tool in curl jq openssl; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
if ! "$IMGBUILD" serve --help >/dev/null 2>&1; then
    echo "skipped: $IMGBUILD has no serve command yet"
    exit 77
fi

# shellcheck source=serve-lib.sh
source "$IMGBUILD_SOURCE_DIR/tests/integration/serve-lib.sh"

dir=$(mktemp -d /tmp/test-serve-XXXXXX)
cleanup() {
    serve_stop
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    [ -f "$dir/serve.log" ] && { echo "--- serve.log" >&2; cat "$dir/serve.log" >&2; }
    exit 1
}

# expect WANT CMD...: run CMD (prints the HTTP status with -w) and compare.
expect_status() {
    local want=$1 got
    shift
    got=$("$@") || fail "curl failed: $*"
    [ "$got" = "$want" ] || fail "expected HTTP $want, got $got: $*"
}

read -r api meta1 vault1 meta2 vault2 meta3 vault3 <<<"$(serve_pick_ports 7)"
pool=6d540f20-ac97-dd6a-5d67-cc11a5e224a5
net=ab8fbe95-72d4-0703-fcae-6401540d86ff
key=EXOtestkey
secret=test-secret-not-real

instance() { # id name port_meta port_vault ip
    printf '{"id":"%s","name":"%s","state":"running","pool":"%s","private_ip":"%s","public_ip":"%s",
      "security_groups":["etcd"],"labels":{"role":"etcd"},"user_data":"hello %s\\n",
      "metadata_port":%s,"vault_port":%s}' "$1" "$2" "$pool" "$5" "$5" "$2" "$3" "$4"
}

socket_instance() { # id name ip: metadata and Vault on UNIX sockets DIR/sockets/<name>-{metadata,vault}.sock
    printf '{"id":"%s","name":"%s","state":"running","pool":"%s","private_ip":"%s","public_ip":"%s",
      "security_groups":["etcd"],"labels":{"role":"etcd"},"user_data":"",
      "metadata_socket":"%s-metadata.sock","vault_socket":"%s-vault.sock"}' "$1" "$2" "$pool" "$3" "$3" "$2" "$2"
}

write_cloud() { # instance JSON objects...
    local instances
    instances=$(IFS=,; echo "$*")
    cat >"$dir/cloud.json.tmp" <<EOF
{ "zone": "local", "api_port": $api, "api_key": "$key", "api_secret": "$secret",
  "instances": [ $instances ],
  "pools": [ { "id": "$pool", "name": "etcd", "size": 3, "template": "etcd@1", "private_network": "$net" } ],
  "vault": {
    "roles": { "etcd": { "pool": "etcd", "security_group": "etcd", "policies": ["etcd"], "ttl": 3600 } },
    "policies": { "etcd": { "secret/data/etcd/*": ["read", "create", "update"],
                            "secret/data/bootagent/*": ["read"],
                            "pki/issue/etcd-peer": ["update"], "pki/sign/etcd-peer": ["update"] } },
    "pki_roles": { "etcd-peer": { "allowed_domains": ["etcd.local"], "allow_subdomains": true,
                                  "allow_ip_sans": true, "max_ttl": 86400 } },
    "kv": { "bootagent/cloud-api": { "api_key": "$key", "api_secret": "$secret",
                                     "api_url": "http://127.0.0.1:$api/v2" } } } }
EOF
    mv "$dir/cloud.json.tmp" "$dir/cloud.json"
}

i1=$(instance i-1 etcd-1 "$meta1" "$vault1" 127.0.0.11)
i2=$(instance i-2 etcd-2 "$meta2" "$vault2" 127.0.0.12)

# --- cloud.json errors stop startup with exit 2 and name the JSON path
write_cloud "$i1" "$(instance i-1 dup "$meta2" "$vault2" 127.0.0.12)"
"$IMGBUILD" serve --state-dir "$dir" >"$dir/bad.out" 2>&1
status=$?
[ "$status" -eq 2 ] || fail "duplicate id: expected exit 2, got $status"
grep -q 'instances\[1\].id: duplicate id' "$dir/bad.out" || fail "no JSON path in: $(cat "$dir/bad.out")"
write_cloud "$i1" "$(instance i-2 etcd-2 "$meta2" "$vault2" 127.0.0.300)"
"$IMGBUILD" serve --state-dir "$dir" >"$dir/bad.out" 2>&1
[ $? -eq 2 ] && grep -q 'instances\[1\].private_ip: not an IP address' "$dir/bad.out" || fail "bad IP: $(cat "$dir/bad.out")"

write_cloud "$i1" "$i2"
serve_start "$dir" || fail "serve did not start"

# --- metadata
[ "$(curl -sf "http://127.0.0.1:$meta1/latest/meta-data/instance-id")" = i-1 ] || fail "instance-id"
[ "$(curl -sf "http://127.0.0.1:$meta2/latest/meta-data/local-ipv4")" = 127.0.0.12 ] || fail "local-ipv4"
[ "$(curl -sf "http://127.0.0.1:$meta1/latest/user-data")" = "hello etcd-1" ] || fail "user-data"
out=$(curl -sf "http://127.0.0.1:$meta1/latest/meta-data/") && grep -qx availability-zone <<<"$out" || fail "index"
expect_status 404 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$meta1/latest/meta-data/nope"

# --- Vault
v1="http://127.0.0.1:$vault1/v1"
v2="http://127.0.0.1:$vault2/v1"
expect_status 200 curl -s -o /dev/null -w '%{http_code}' "$v1/sys/health"
expect_status 403 curl -s -o "$dir/r.json" -w '%{http_code}' -X POST "$v1/auth/exoscale/login" -d '{"role":"etcd","instance":"i-2"}'
[ "$(jq -r '.errors[0]' "$dir/r.json")" = "permission denied" ] || fail "login denial body"
expect_status 400 curl -s -o /dev/null -w '%{http_code}' -X POST "$v1/auth/exoscale/login" -d '{"role":"nope","instance":"i-1"}'
expect_status 400 curl -s -o /dev/null -w '%{http_code}' -X POST "$v1/auth/exoscale/login" -d '{"role":"etcd"'
t1=$(curl -sf -X POST "$v1/auth/exoscale/login" -d '{"role":"etcd","instance":"i-1"}' | jq -r .auth.client_token)
t2=$(curl -sf -X PUT "$v2/auth/exoscale/login" -d '{"role":"etcd","instance":"i-2"}' | jq -r .auth.client_token)
[ -n "$t1" ] && [ "$t1" != null ] && [ -n "$t2" ] || fail "login"
grep -q -- "${t1#hvs.}" "$dir/serve.log" && fail "a token appears in the log"

[ "$(curl -sf -H "X-Vault-Token: $t1" "$v1/secret/data/bootagent/cloud-api" | jq -r .data.data.api_key)" = "$key" ] ||
    fail "seeded KV read"
expect_status 403 curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $t1" "$v2/secret/data/bootagent/cloud-api"
expect_status 403 curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $t1" "$v1/secret/data/elsewhere"

# seed election: two instances race with cas:0, exactly one wins
boot="secret/data/etcd/$pool/bootstrap"
curl -s -o "$dir/a.json" -w '%{http_code}' -H "X-Vault-Token: $t1" "$v1/$boot" -d '{"data":{"winner":"i-1"},"options":{"cas":0}}' >"$dir/a.code" &
pid_a=$!
curl -s -o "$dir/b.json" -w '%{http_code}' -H "X-Vault-Token: $t2" "$v2/$boot" -d '{"data":{"winner":"i-2"},"options":{"cas":0}}' >"$dir/b.code" &
pid_b=$!
wait "$pid_a" "$pid_b"
codes="$(cat "$dir/a.code") $(cat "$dir/b.code")"
case "$codes" in
"200 400") winner=i-1 ;;
"400 200") winner=i-2 ;;
*) fail "cas race: $codes" ;;
esac
[ "$(curl -sf -H "X-Vault-Token: $t2" "$v2/$boot" | jq -r .data.data.winner)" = "$winner" ] || fail "winner recorded"

# PKI issue: check the certificate with openssl against the CA from pki/ca/pem
curl -sf "$v1/pki/ca/pem" >"$dir/ca.pem" || fail "ca pem"
curl -sf -H "X-Vault-Token: $t1" "$v1/pki/issue/etcd-peer" \
    -d '{"common_name":"etcd-1.etcd.local","ip_sans":"127.0.0.11","ttl":"1h"}' >"$dir/issue.json" || fail "issue"
jq -r .data.certificate "$dir/issue.json" >"$dir/cert.pem"
jq -r .data.private_key "$dir/issue.json" >"$dir/key.pem"
openssl verify -CAfile "$dir/ca.pem" "$dir/cert.pem" >/dev/null || fail "cert does not verify against the CA"
out=$(openssl x509 -in "$dir/cert.pem" -noout -subject) && grep -q 'CN = etcd-1.etcd.local' <<<"$out" || fail "CN"
out=$(openssl x509 -in "$dir/cert.pem" -noout -ext subjectAltName) && grep -q 'IP Address:127.0.0.11' <<<"$out" || fail "IP SAN"
[ "$(openssl x509 -in "$dir/cert.pem" -noout -pubkey)" = "$(openssl pkey -in "$dir/key.pem" -pubout)" ] ||
    fail "private key does not match"
jq -e '(.data.expiration | type) == "number" and (.data.serial_number | test("^[0-9a-f]{2}(:[0-9a-f]{2})+$"))' \
    "$dir/issue.json" >/dev/null || fail "expiration/serial_number format"
expect_status 400 curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $t1" "$v1/pki/issue/etcd-peer" \
    -d '{"common_name":"evil.example.com"}'

# PKI sign with a CSR made by openssl
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/csr.key" \
    -subj /CN=etcd-2.etcd.local -addext subjectAltName=IP:127.0.0.12 -out "$dir/req.csr" 2>/dev/null || fail "openssl req"
jq -n --rawfile csr "$dir/req.csr" '{csr: $csr, ttl: "1h"}' >"$dir/sign.json"
curl -sf -H "X-Vault-Token: $t2" "$v2/pki/sign/etcd-peer" -d @"$dir/sign.json" | jq -r .data.certificate >"$dir/signed.pem" ||
    fail "sign"
openssl verify -CAfile "$dir/ca.pem" "$dir/signed.pem" >/dev/null || fail "signed cert does not verify"
[ "$(openssl x509 -in "$dir/signed.pem" -noout -pubkey)" = "$(openssl pkey -in "$dir/csr.key" -pubout)" ] ||
    fail "signed cert does not carry the CSR's key"

# --- Exoscale API with EXO2-HMAC-SHA256 signatures made here
# api_get PATH [QUERY_VALUES_IN_NAME_ORDER SIGNED_NAMES QUERY] [EXPIRES] [SECRET]
api_get() {
    local path=$1 values=${2:-} names=${3:-} query=${4:-} expires=${5:-$(($(date +%s) + 600))} sec=${6:-$secret}
    local sig header
    sig=$(printf '%s\n\n%s\n\n%s' "GET $path" "$values" "$expires" | openssl dgst -sha256 -hmac "$sec" -binary | base64 -w0)
    header="EXO2-HMAC-SHA256 credential=$key${names:+,signed-query-args=$names},expires=$expires,signature=$sig"
    curl -s -o "$dir/api.json" -w '%{http_code}' -H "Authorization: $header" "http://127.0.0.1:$api$path${query:+?$query}"
}
expect_status 200 api_get /v2/instance/i-1
[ "$(jq -r .manager.id "$dir/api.json")" = "$pool" ] || fail "manager.id"
expect_status 200 api_get /v2/instance "${pool}instance-pool" "manager-id;manager-type" "manager-id=$pool&manager-type=instance-pool"
[ "$(jq -r '[.instances[].id] | join(",")' "$dir/api.json")" = "i-1,i-2" ] || fail "pool instances"
expect_status 200 api_get "/v2/private-network/$net"
[ "$(jq -r '[.leases[] | .["instance-id"] + "=" + .ip] | join(",")' "$dir/api.json")" = "i-1=127.0.0.11,i-2=127.0.0.12" ] ||
    fail "leases"
expect_status 403 api_get /v2/instance/i-1 "" "" "" $(($(date +%s) - 5))
expect_status 403 api_get /v2/instance/i-1 "" "" "" "" wrong-secret
expect_status 404 api_get /v2/instance/nope

# --- reload: a third instance appears on new ports
write_cloud "$i1" "$i2" "$(instance i-3 etcd-3 "$meta3" "$vault3" 127.0.0.13)"
end=$((SECONDS + 60)) # far above what a loaded machine needs
until [ "$(curl -s "http://127.0.0.1:$meta3/latest/meta-data/instance-id")" = i-3 ] || [ "$SECONDS" -ge "$end" ]; do
    sleep 0.1
done
[ "$(curl -s "http://127.0.0.1:$meta3/latest/meta-data/instance-id")" = i-3 ] || fail "reload did not add i-3"
expect_status 200 curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$vault3/v1/auth/exoscale/login" \
    -d '{"role":"etcd","instance":"i-3"}'

# --- an instance on UNIX sockets: only this user can reach it
i3=$(instance i-3 etcd-3 "$meta3" "$vault3" 127.0.0.13)
i4=$(socket_instance i-4 etcd-4 127.0.0.14)
write_cloud "$i1" "$i2" "$i3" "$i4"
m4="$dir/sockets/etcd-4-metadata.sock"
s4="$dir/sockets/etcd-4-vault.sock"
for _ in $(seq 50); do
    [ -S "$s4" ] && break
    sleep 0.1
done
[ "$(curl -sf --unix-socket "$m4" http://x/latest/meta-data/instance-id)" = i-4 ] || fail "instance-id over the socket"
# The socket is the identity, as a port is: i-4's socket logs in i-4 only.
expect_status 403 curl -s -o /dev/null -w '%{http_code}' --unix-socket "$s4" -X POST http://x/v1/auth/exoscale/login \
    -d '{"role":"etcd","instance":"i-1"}'
t4=$(curl -sf --unix-socket "$s4" -X POST http://x/v1/auth/exoscale/login -d '{"role":"etcd","instance":"i-4"}' |
    jq -r .auth.client_token)
[ -n "$t4" ] && [ "$t4" != null ] || fail "login over the socket"
[ "$(stat -c %a "$dir/sockets")" = 700 ] || fail "sockets directory mode $(stat -c %a "$dir/sockets")"
[ "$(stat -c %a "$m4")" = 600 ] && [ "$(stat -c %a "$s4")" = 600 ] || fail "socket modes"
# Another user: the TCP port answers it, the sockets do not (the state directory opened up, so
# what stops it is the sockets' own directory and modes).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chmod 0755 "$dir"
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    [ "$(as_nobody curl -sf "http://127.0.0.1:$meta1/latest/meta-data/instance-id")" = i-1 ] ||
        fail "the TCP port did not answer another user (the test's premise)"
    as_nobody curl -sSv --unix-socket "$m4" http://x/latest/meta-data/instance-id >"$dir/nobody.out" 2>&1 &&
        fail "another user read i-4's metadata"
    grep -q "Permission denied" "$dir/nobody.out" || fail "not refused for permission: $(cat "$dir/nobody.out")"
    chmod 0755 "$dir/sockets"
    as_nobody curl -sSv --unix-socket "$s4" http://x/v1/sys/health >"$dir/nobody.out" 2>&1 &&
        fail "another user reached i-4's Vault through a 0600 socket"
    grep -q "Permission denied" "$dir/nobody.out" || fail "not refused for permission: $(cat "$dir/nobody.out")"
    chmod 0700 "$dir" "$dir/sockets"
else
    echo "test-serve: not root or no setpriv: the other-user checks are skipped"
fi
# Removed from cloud.json: its sockets are closed and their files gone.
write_cloud "$i1" "$i2" "$i3"
for _ in $(seq 50); do
    [ -e "$m4" ] || [ -e "$s4" ] || break
    sleep 0.1
done
[ -e "$m4" ] || [ -e "$s4" ] && fail "the removed instance's sockets are still there"
write_cloud "$i1" "$i2" "$i3" "$i4"

# --- clean stop, state kept across a restart
serve_stop
[ "$SERVE_STATUS" = 0 ] || fail "serve exited with $SERVE_STATUS on SIGTERM"
[ "$(stat -c %a "$dir/pki/ca.key")" = 600 ] || fail "ca.key mode"
[ "$(stat -c %a "$dir/vault.json")" = 600 ] || fail "vault.json mode"
grep -q -- "${t1#hvs.}" "$dir/vault.json" && fail "vault.json holds a plaintext token"
[ -e "$m4" ] && fail "a socket outlived serve"
serve_start "$dir" || fail "restart"
[ "$(curl -sf -H "X-Vault-Token: $t2" "$v2/$boot" | jq -r .data.data.winner)" = "$winner" ] || fail "KV or token lost on restart"
[ "$(curl -sf --unix-socket "$m4" http://x/latest/meta-data/instance-id)" = i-4 ] || fail "socket not back after restart"
cmp -s "$dir/ca.pem" <(curl -sf "$v1/pki/ca/pem") || fail "CA changed on restart"

echo "test-serve: ok"
