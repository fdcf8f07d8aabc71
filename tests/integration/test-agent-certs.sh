#!/usr/bin/env bash
# Named certificates, a kubeconfig and an environment file ([certificate NAME], [kubeconfig NAME],
# [environment NAME]) against `imgbuild serve`: three certificates from two PKI roles (SANs with
# the instance's IP, O from the role), checked with openssl and kubectl; a re-run signs nothing;
# an agent stopped right after a sign (and one right after saving its key) and run again has
# exactly one certificate signed per name, for the key it saved; `bootagent renew` re-issues all
# three and records what it would restart.
PORT_RANGE_START=8500 PORT_BLOCKS=5 source "$(dirname "$0")/agent-lib.sh"
trap agent_cleanup EXIT
command -v openssl >/dev/null || { echo "skip: openssl not installed"; exit 77; }
KDIR=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent/kubectl)")")
KUBECTL=$KDIR/kubectl.1.33
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl || true)

ID=$(instance_id 1)
IP=$(instance_ip 1)
R=$T/agent-1
PKI=$R/etc/kubernetes/pki
STATE=$R/var/lib/bootagent

mkdir -p "$T/state"
cat > "$T/state/cloud.json" <<JSON
{
  "zone": "local", "api_port": $API_PORT,
  "api_key": "EXOtest0000000000000000000", "api_secret": "test-secret-not-real",
  "instances": [ {"id":"$ID","name":"cp-1","state":"running","pool":"$POOL_ID","private_ip":"$IP",
                  "public_ip":"$IP","security_groups":["cp"],"labels":{},"user_data":"",
                  "metadata_socket":"m1-metadata.sock","vault_socket":"m1-vault.sock"} ],
  "pools": [ { "id": "$POOL_ID", "name": "cp", "size": 1, "template": "cp@1", "private_network": "$NET_ID" } ],
  "vault": {
    "roles": { "control-plane": { "pool": "cp", "security_group": "cp", "policies": ["cp"], "ttl": 3600 } },
    "policies": { "cp": { "pki/sign/kube-server": ["update"], "pki/sign/kube-client": ["update"],
                          "pki/issue/kube-client": ["update"] } },
    "pki_roles": { "kube-server": { "allow_any_name": true, "allow_ip_sans": true, "max_ttl": 86400 },
                   "kube-client": { "allow_any_name": true, "allow_ip_sans": false,
                                    "organization": ["system:masters"], "max_ttl": 86400 } }
  }
}
JSON
"$IMGBUILD" serve --state-dir "$T/state" > "$T/serve.out" 2> "$T/serve.log" &
SERVE_PID=$!
end=$((SECONDS + 60)) # far above what a loaded machine needs
until grep -q "serve: ready" "$T/serve.out" 2>/dev/null; do
    kill -0 "$SERVE_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ] || fail "imgbuild serve not ready"
    sleep 0.1
done
wait_metadata 1

mkdir -p "$R/etc/bootagent"
cat > "$R/etc/bootagent/agent.conf" <<CONF
[agent]
role = control-plane
renew_fraction = 0.5
[metadata]
url = http://169.254.169.254
socket = $(metadata_socket 1)
deadline_ms = 5000
[vault]
address = http://vault.local:8200
socket = $(vault_socket 1)
deadline_ms = 10000

[certificate apiserver]
role = kube-server
common_name = kube-apiserver
alt_names = kubernetes, kubernetes.default, \${instance_id}.cp.local
ip_sans = \${local_ipv4}, 10.96.0.1
ttl = 2h
cert_file = /etc/kubernetes/pki/apiserver.crt
key_file = /etc/kubernetes/pki/apiserver.key
ca_file = /etc/kubernetes/pki/ca.crt
restart = kube-apiserver.service

[certificate admin]
role = kube-client
common_name = kubernetes-admin
organization = system:masters
ttl = 2h
cert_file = /etc/kubernetes/pki/admin.crt
key_file = /etc/kubernetes/pki/admin.key
ca_file = /etc/kubernetes/pki/ca.crt
mode = 0640
reload = kube-admin-watch.service

[certificate controller-manager]
role = kube-client
local_key = no
common_name = system:kube-controller-manager
ttl = 2h
cert_file = /etc/kubernetes/pki/controller-manager.crt
key_file = /etc/kubernetes/pki/controller-manager.key
ca_file = /etc/kubernetes/pki/ca.crt
restart = kube-controller-manager.service kube-apiserver.service

[kubeconfig admin]
file = /etc/kubernetes/admin.conf
certificate = admin
server = https://\${local_ipv4}:6443

[environment kube]
file = /etc/default/kube
ADVERTISE_ADDRESS = \${local_ipv4}
NODE_NAME = cp-\${instance_id}

[units]
mode = exec
start = kube.service
exec_start = sleep 600
CONF

# Certificates Vault made for this instance, by kind ("signed" for pki/sign, "issued" for
# pki/issue) and CN.
made() { grep -c "vault: $1 certificate .* for $2 (instance $ID)" "$T/serve.log" || true; }
serial() { openssl x509 -noout -serial -in "$PKI/$1.crt" | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/../&:/g; s/:$//'; }
run() { "$BOOTAGENT" firstboot --root "$R" "$@" >> "$R/agent.log" 2>&1; }

# Stopped right after saving the first key (before any sign request): nothing was signed, and
# the next run signs that same key.
rc=0; BOOTAGENT_ABORT_AFTER=certificate-key run || rc=$?
[ "$rc" -eq 99 ] || fail "abort after certificate-key: exit $rc, expected 99"
[ -f "$STATE/certificates/apiserver.key" ] || fail "the apiserver key was not saved first"
[ "$(stat -c %a "$STATE/certificates/apiserver.key")" = 600 ] || fail "saved key mode"
[ "$(made signed kube-apiserver)" -eq 0 ] || fail "signed before the key was saved"
cp "$STATE/certificates/apiserver.key" "$T/apiserver.key.saved"

# Stopped right after the first certificate is signed and saved (before it is installed): the
# next run installs that certificate and signs nothing twice.
rc=0; BOOTAGENT_ABORT_AFTER=certificate-signed run || rc=$?
[ "$rc" -eq 99 ] || fail "abort after certificate-signed: exit $rc, expected 99"
[ "$(made signed kube-apiserver)" -eq 1 ] || fail "apiserver: $(made signed kube-apiserver) signed, expected 1"
[ ! -e "$PKI/apiserver.crt" ] || fail "installed before the abort point"
first=$(grep -o "vault: signed certificate [0-9a-f:]* for kube-apiserver" "$T/serve.log" | awk '{print $4}')

run || fail "first boot failed"
for what in "signed kube-apiserver" "signed kubernetes-admin" "issued system:kube-controller-manager"; do
        # shellcheck disable=SC2086
        [ "$(made $what)" -eq 1 ] || fail "$what: $(made $what) certificates, expected exactly 1"
done
[ "$(made signed system:kube-controller-manager)" -eq 0 ] || fail "controller-manager signed (local_key = no)"
[ "$(serial apiserver)" = "$first" ] || fail "installed apiserver serial $(serial apiserver), signed $first"
cmp -s "$PKI/apiserver.key" "$T/apiserver.key.saved" || fail "the apiserver key is not the one saved before signing"
grep -q "installed serial $first, signed before a restart" "$R/agent.log" || fail "no word of the saved certificate"
[ -z "$(ls -A "$STATE/certificates")" ] || fail "saved copies left after installing: $(ls "$STATE/certificates")"

# What the certificates carry.
text=$(openssl x509 -noout -text -in "$PKI/apiserver.crt")
for san in "DNS:kubernetes" "DNS:kubernetes.default" "DNS:$ID.cp.local" "IP Address:$IP" "IP Address:10.96.0.1"; do
        grep -q "$san" <<< "$text" || fail "apiserver lacks $san"
done
grep -q "Subject: CN *= *kube-apiserver" <<< "$text" || fail "apiserver subject: $(grep Subject: <<< "$text")"
text=$(openssl x509 -noout -text -in "$PKI/admin.crt")
grep -q "Subject: O *= *system:masters, CN *= *kubernetes-admin" <<< "$text" || fail "admin subject: $(grep Subject: <<< "$text")"
openssl x509 -noout -subject -in "$PKI/controller-manager.crt" | grep -q "CN *= *system:kube-controller-manager" ||
        fail "controller-manager subject"
for c in apiserver admin controller-manager; do
        openssl verify -CAfile "$PKI/ca.crt" "$PKI/$c.crt" >/dev/null || fail "$c does not verify against ca.crt"
        [ "$(openssl x509 -noout -pubkey -in "$PKI/$c.crt")" = "$(openssl pkey -pubout -in "$PKI/$c.key")" ] ||
                fail "$c key does not match"
        [ "$(stat -c %a "$PKI/$c.crt")" = 644 ] || fail "$c.crt mode"
done
[ "$(stat -c %a "$PKI/apiserver.key")" = 600 ] || fail "apiserver.key mode"
[ "$(stat -c %a "$PKI/admin.key")" = 640 ] || fail "admin.key mode"

# The kubeconfig, read by kubectl (fresh HOME) when there is one.
[ "$(stat -c %a "$R/etc/kubernetes/admin.conf")" = 600 ] || fail "admin.conf mode"
if [ -n "$KUBECTL" ]; then
        view=$(HOME=$T/home "$KUBECTL" --kubeconfig "$R/etc/kubernetes/admin.conf" config view --raw -o json) ||
                fail "kubectl cannot read the kubeconfig"
else
        log "no kubectl: reading the kubeconfig with jq only"
        view=$(cat "$R/etc/kubernetes/admin.conf")
fi
[ "$(jq -r '."current-context"' <<< "$view")" = "admin@kubernetes" ] || fail "current-context"
[ "$(jq -r '.clusters[0].cluster.server' <<< "$view")" = "https://$IP:6443" ] || fail "server"
cmp -s <(jq -r '.clusters[0].cluster."certificate-authority-data"' <<< "$view" | base64 -d) "$PKI/ca.crt" || fail "CA data"
cmp -s <(jq -r '.users[0].user."client-certificate-data"' <<< "$view" | base64 -d) "$PKI/admin.crt" || fail "cert data"
cmp -s <(jq -r '.users[0].user."client-key-data"' <<< "$view" | base64 -d) "$PKI/admin.key" || fail "key data"

# The environment file.
grep -qx "ADVERTISE_ADDRESS=$IP" "$R/etc/default/kube" || fail "env: ADVERTISE_ADDRESS"
grep -qx "NODE_NAME=cp-$ID" "$R/etc/default/kube" || fail "env: NODE_NAME"
[ "$(stat -c %a "$R/etc/default/kube")" = 644 ] || fail "env file mode"

# A re-run signs nothing and keeps every serial.
before=$(for c in apiserver admin controller-manager; do serial $c; done)
run || fail "second run failed"
[ "$(grep -c "vault: \(signed\|issued\) certificate" "$T/serve.log")" -eq 3 ] || fail "the re-run made certificates"
[ "$(for c in apiserver admin controller-manager; do serial $c; done)" = "$before" ] || fail "serials changed"
status=$("$BOOTAGENT" status --root "$R") || fail "status failed"
grep -q "certificates .*3 certificates: 0 signed, 0 installed from a saved copy, 3 fresh" <<< "$status" ||
        fail "status: no fresh certificates stage"$'\n'"$status"
grep -q "certificates .*2 signed, 1 installed from a saved copy, 0 fresh; apiserver $first, admin " <<< "$status" ||
        fail "status: the resumed run does not name its serials"

# Renewal: every certificate past renew_fraction (0.001 of its lifetime: already) is re-issued,
# and the units they name are listed, not restarted (units = exec).
sed -i 's/^renew_fraction = .*/renew_fraction = 0.001/' "$R/etc/bootagent/agent.conf"
"$BOOTAGENT" renew --root "$R" >> "$R/agent.log" 2>&1 || fail "renew failed"
for what in "signed kube-apiserver" "signed kubernetes-admin" "issued system:kube-controller-manager"; do
        # shellcheck disable=SC2086
        [ "$(made $what)" -eq 2 ] || fail "renew: $what: $(made $what) certificates, expected 2"
done
after=$(for c in apiserver admin controller-manager; do serial $c; done)
[ -z "$(comm -12 <(sort <<< "$before") <(sort <<< "$after"))" ] || fail "renew kept a serial"
grep -q "units = exec: not restarted: \[kube-apiserver.service kube-controller-manager.service\], not reloaded: \[kube-admin-watch.service\]" \
        <(cat "$R/agent.log") || fail "renew: the units to restart are not named"
cmp -s <(jq -r '.users[0].user."client-certificate-data"' "$R/etc/kubernetes/admin.conf" | base64 -d) "$PKI/admin.crt" ||
        fail "renew: the kubeconfig still holds the old certificate"

# A damaged saved key (nothing was signed for it) is replaced, not sent to Vault or kept failing.
printf 'junk\n' > "$STATE/certificates/admin.key"
"$BOOTAGENT" renew --root "$R" >> "$R/agent.log" 2>&1 || fail "renew with a damaged saved key failed"
grep -q "\[certificate admin\]: the saved key .*admin.key is unreadable; making a new one" "$R/agent.log" ||
        fail "no word of the damaged saved key"
[ "$(made signed kubernetes-admin)" -eq 3 ] || fail "admin after the damaged key: $(made signed kubernetes-admin) signed, expected 3"
[ "$(openssl x509 -noout -pubkey -in "$PKI/admin.crt")" = "$(openssl pkey -pubout -in "$PKI/admin.key")" ] ||
        fail "admin key does not match after the damaged saved key"

# The unnamed [pki] certificate goes the same way: stopped right after its sign, the next run
# installs the saved one (with the instance's IP) and signs nothing again.
sed -i 's/^renew_fraction = .*/renew_fraction = 0.5/' "$R/etc/bootagent/agent.conf"
cat >> "$R/etc/bootagent/agent.conf" <<CONF
[pki]
role = kube-server
common_name = node-1.cp.local
local_key = yes
cert_file = /etc/node/pki/node.crt
key_file = /etc/node/pki/node.key
ca_file = /etc/node/pki/ca.crt
CONF
rc=0; BOOTAGENT_ABORT_AFTER=certificate-signed run || rc=$?
[ "$rc" -eq 99 ] || fail "[pki] abort after certificate-signed: exit $rc, expected 99"
[ -f "$STATE/certificates/[pki].crt" ] || fail "[pki]: no saved certificate"
[ ! -e "$R/etc/node/pki/node.crt" ] || fail "[pki] installed before the abort point"
run || fail "run after the [pki] abort failed"
[ "$(made signed node-1.cp.local)" -eq 1 ] || fail "[pki]: $(made signed node-1.cp.local) signed, expected 1"
pki_serial=$(grep -o "vault: signed certificate [0-9a-f:]* for node-1.cp.local" "$T/serve.log" | awk '{print $4}')
grep -q "stage pki: ok .*issued serial $pki_serial" "$R/agent.log" || fail "[pki]: the journal does not name serial $pki_serial"
openssl x509 -noout -text -in "$R/etc/node/pki/node.crt" | grep -q "IP Address:$IP" || fail "[pki] lacks the instance IP"
[ "$(openssl x509 -noout -pubkey -in "$R/etc/node/pki/node.crt")" = "$(openssl pkey -pubout -in "$R/etc/node/pki/node.key")" ] ||
        fail "[pki] key does not match"
log "PASS"
