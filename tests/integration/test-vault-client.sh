#!/usr/bin/env bash
# A Vault client nobody here wrote against the Vault stand-in: node-vault from the npm registry
# (cached, so reruns do not download it again) drives `imgbuild serve` through login on the
# Exoscale auth route, token lookup/renew/revoke, KV v2 with check-and-set, patch, list and
# delete, PKI issue and sys/health (tests/integration/vault-client.js asserts the replies).
# Skipped (77) on a developer's machine when node/npm are missing or the registry cannot be
# reached; in CI (CI=true, as CI services set it) that is a failure: ci/install-deps.sh installs
# nodejs and npm, so the real-client check always runs there.
set -uo pipefail

: "${IMGBUILD:?}" "${IMGBUILD_SOURCE_DIR:?}"
NODE_VAULT_VERSION=0.12.0

# skip REASON: exit 77, or fail in CI
skip() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: $* (CI=true: the real-client check must run in CI; ci/install-deps.sh installs nodejs and npm)" >&2
        exit 1
    fi
    echo "skipped: $* (run ci/install-deps.sh, or install Debian's nodejs and npm, to run this test)"
    exit 77
}

for tool in node npm; do
    command -v "$tool" >/dev/null || skip "$tool not installed"
done

# shellcheck source=serve-lib.sh
source "$IMGBUILD_SOURCE_DIR/tests/integration/serve-lib.sh"

dir=$(mktemp -d /tmp/test-vault-client-XXXXXX)
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

# --- node-vault, installed once into a cache directory (a version per directory)
cache_root=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/imgbuild-test
if ! mkdir -p "$cache_root" 2>/dev/null; then
    cache_root=${IMGBUILD_BINARY_DIR:-$dir}/test-cache
    mkdir -p "$cache_root" || fail "cannot create a cache directory"
fi
modules=$cache_root/node-vault-$NODE_VAULT_VERSION
if [ ! -f "$modules/node_modules/node-vault/package.json" ]; then
    staging=$(mktemp -d "$cache_root/.node-vault-XXXXXX")
    if ! timeout 300 npm install --prefix "$staging" --no-audit --no-fund --no-save --loglevel=error \
        "node-vault@$NODE_VAULT_VERSION" >"$dir/npm.log" 2>&1; then
        rm -rf "$staging"
        if ! timeout 30 npm ping >/dev/null 2>&1; then
            skip "the npm registry is unreachable"
        fi
        cat "$dir/npm.log" >&2
        fail "npm install node-vault@$NODE_VAULT_VERSION failed although the registry answers"
    fi
    # Publish the finished install in one step, so a killed run leaves no half tree behind.
    rm -rf "$modules"
    mv "$staging" "$modules" || fail "cannot move node-vault into $modules"
fi

# --- imgbuild serve with two instances
read -r api meta1 vault1 meta2 vault2 <<<"$(serve_pick_ports 5 7000 1000)"
pool=6d540f20-ac97-dd6a-5d67-cc11a5e224a5
instance() { # id name port_meta port_vault ip
    printf '{"id":"%s","name":"%s","state":"running","pool":"%s","private_ip":"%s","public_ip":"%s",
      "security_groups":["etcd"],"labels":{},"metadata_port":%s,"vault_port":%s}' \
        "$1" "$2" "$pool" "$5" "$5" "$3" "$4"
}
cat >"$dir/cloud.json" <<EOF
{ "zone": "local", "api_port": $api, "api_key": "EXOtestkey", "api_secret": "test-secret-not-real",
  "instances": [ $(instance i-1 etcd-1 "$meta1" "$vault1" 127.0.0.11),
                 $(instance i-2 etcd-2 "$meta2" "$vault2" 127.0.0.12) ],
  "pools": [ { "id": "$pool", "name": "etcd", "size": 2, "template": "etcd@1" } ],
  "vault": {
    "roles": { "etcd": { "pool": "etcd", "security_group": "etcd", "policies": ["etcd"], "ttl": 3600 } },
    "policies": { "etcd": { "secret/data/etcd/*": ["read", "create", "update"],
                            "secret/data/bootagent/*": ["read"],
                            "secret/data/scratch/*": ["read", "create", "update", "patch", "delete"],
                            "secret/metadata/scratch/*": ["list", "delete"],
                            "pki/issue/etcd-peer": ["update"] } },
    "pki_roles": { "etcd-peer": { "allowed_domains": ["etcd.local"], "allow_subdomains": true,
                                  "allow_ip_sans": true, "max_ttl": 86400 } },
    "kv": { "bootagent/cloud-api": { "api_key": "EXOtestkey", "api_secret": "test-secret-not-real" } } } }
EOF
serve_start "$dir" || fail "imgbuild serve did not start"

NODE_PATH=$modules/node_modules VAULT1=http://127.0.0.1:$vault1 VAULT2=http://127.0.0.1:$vault2 \
    CA_PEM=$dir/pki/ca.pem timeout 120 node "$IMGBUILD_SOURCE_DIR/tests/integration/vault-client.js" ||
    fail "node-vault checks failed"

serve_stop
[ "$SERVE_STATUS" = 0 ] || fail "imgbuild serve exited with $SERVE_STATUS on SIGTERM"
echo "PASS"
