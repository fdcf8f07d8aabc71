# agent.conf for a host "machine" of the integration tests: an etcd member booting bootagent with
# units = exec against a local cloud on loopback (sourced by agent-lib.sh and exo-member-hook.sh).

# write_etcd_agent_conf ROOT WHAT NAME METADATA VAULT CLIENT_PORT PEER_PORT
#   writes ROOT/etc/bootagent/agent.conf ("bootagent config for WHAT" in its first line) for the
#   member etcd-NAME.etcd.local. METADATA and VAULT are each a port on 127.0.0.1 or the absolute
#   path of a UNIX socket. Optional, from the environment: AGENT_EXTRA (more [agent] lines),
#   METADATA_DEADLINE_MS (default 5000), VAULT_DEADLINE_MS (10000), PKI_TTL (2h), PKI_EXTRA (more
#   [pki] lines).
write_etcd_agent_conf() {
        local root=$1 what=$2 name=$3 metadata=$4 vault=$5 client_port=$6 peer_port=$7
        local metadata_lines vault_lines
        # Through a socket, the URL gives only the Host header and the path.
        case $metadata in
        /*) metadata_lines="url = http://169.254.169.254"$'\n'"socket = $metadata" ;;
        *) metadata_lines="url = http://127.0.0.1:$metadata" ;;
        esac
        case $vault in
        /*) vault_lines="address = http://vault.local:8200"$'\n'"socket = $vault" ;;
        *) vault_lines="address = http://127.0.0.1:$vault" ;;
        esac
        mkdir -p "$root/etc/bootagent"
        cat > "$root/etc/bootagent/agent.conf" <<CONF
# bootagent config for $what
[agent]
role = etcd
${AGENT_EXTRA:-}

[metadata]
$metadata_lines
deadline_ms = ${METADATA_DEADLINE_MS:-5000}

[vault]
$vault_lines
role = etcd
deadline_ms = ${VAULT_DEADLINE_MS:-10000}

[secret]
path = etcd/shared
field = token
file = /etc/etcd/shared-token
mode = 0640

[pki]
role = etcd-peer
common_name = etcd-$name.etcd.local
alt_names = etcd-$name.etcd.local
# etcd checks a peer's certificate against its source address, which is 127.0.0.1 on loopback.
ip_sans = 127.0.0.1
ttl = ${PKI_TTL:-2h}
cert_file = /etc/etcd/pki/etcd.crt
key_file = /etc/etcd/pki/etcd.key
ca_file = /etc/etcd/pki/ca.crt
${PKI_EXTRA:-}

[etcd]
client_port = $client_port
peer_port = $peer_port
data_dir = /var/lib/etcd
env_file = /etc/default/etcd-bootagent
deadline_ms = 60000

[units]
mode = exec
start = etcd.service
exec_start = etcd --heartbeat-interval 100 --election-timeout 1000 --log-level warn
CONF
}
