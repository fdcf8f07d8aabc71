#!/usr/bin/env bash
# The units `bootagent install-units` writes (embedded in the binary), no network:
#   - every role gets the agent's own units; drop-ins only for the role's unit: etcd.service.d/
#     for etcd, kubelet.service.d/ for node, none without --role or for a role without one;
#   - the node template's kubelet.service (the file recipes/node.recipe copies, at the path it
#     copies it to) with bootagent's drop-in passes `systemd-analyze verify --root` with no
#     message, and the drop-in's ExecStart replaces the unit's (`systemd-analyze cat-config`); a
#     drop-in with an unknown key does not pass (the check can fail).
# (test-agent-node runs the drop-in's ExecStart against the files the node role writes.)
set -uo pipefail
: "${IMGBUILD:?}" "${BOOTAGENT:?}" "${IMGBUILD_SOURCE_DIR:?}"
T=$(mktemp -d /tmp/test-agent-units-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

units() { # ROOT [--role ROLE]: the unit paths written, relative to ROOT/etc/systemd/system
    "$BOOTAGENT" install-units --root "$@" | sed "s|^$1/etc/systemd/system/||" | sort | tr '\n' ' '
}
own="bootagent-firstboot.service bootagent-leave.service bootagent-renew.service bootagent-renew.timer"
[ "$(units "$T/none")" = "$own " ] || fail "without --role: $(units "$T/none")"
[ "$(units "$T/etcd" --role etcd)" = "$own etcd.service.d/bootagent.conf " ] || fail "etcd: $(units "$T/etcd" --role etcd)"
[ "$(units "$T/node" --role node)" = "$own kubelet.service.d/bootagent.conf " ] || fail "node: $(units "$T/node" --role node)"
[ "$(units "$T/vault" --role vault)" = "$own " ] || fail "vault: $(units "$T/vault" --role vault)"

command -v systemd-analyze >/dev/null && command -v jq >/dev/null ||
    { echo "skipped: systemd-analyze or jq not installed (install-units checked)"; exit 77; }
# The node template as far as kubelet's unit goes: recipes/node.recipe's copy of kubelet.service,
# a kubelet executable where the unit runs it, and the host's targets (the unit's dependencies).
R=$T/node
copy=$("$IMGBUILD" inspect --json "$IMGBUILD_SOURCE_DIR/recipes/node.recipe" |
    jq -r '.steps[] | select(.kind == "copy" and (.args[1] | endswith("/kubelet.service"))) | .args | join(" ")')
read -r src dest _ <<<"$copy"
[ "$dest" = /etc/systemd/system/kubelet.service ] || fail "node.recipe copies kubelet.service to '$dest'"
grep -q "^run systemctl enable kubelet.service$" "$IMGBUILD_SOURCE_DIR/recipes/node.recipe" || fail "node.recipe does not enable kubelet"
install -m 0644 "$IMGBUILD_SOURCE_DIR/recipes/$src" "$R$dest"
install -d "$R/usr/local/bin" "$R/usr/lib/systemd/system"
printf '#!/bin/sh\n' >"$R/usr/local/bin/kubelet"
chmod 0755 "$R/usr/local/bin/kubelet"
cp /usr/lib/systemd/system/*.target "$R/usr/lib/systemd/system/" 2>/dev/null || cp /lib/systemd/system/*.target "$R/usr/lib/systemd/system/"
out=$(systemd-analyze verify --root="$R" kubelet.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
# the effective unit: bootagent's ExecStart replaces the base one, the environment file is read
exec_lines=$(SYSTEMD_PAGER= systemd-analyze cat-config --root="$R" systemd/system/kubelet.service | grep '^ExecStart=' | tr '\n' '|')
[ "$exec_lines" = "ExecStart=/usr/local/bin/kubelet|ExecStart=|ExecStart=/usr/local/bin/kubelet --kubeconfig=\${KUBELET_KUBECONFIG} --config=\${KUBELET_CONFIG} --hostname-override=\${KUBELET_NODE_NAME}|" ] ||
    fail "ExecStart lines of kubelet.service with the drop-in: $exec_lines"
# an unknown key in the drop-in is reported
echo "Bogus=1" >>"$R/etc/systemd/system/kubelet.service.d/bootagent.conf"
out=$(systemd-analyze verify --root="$R" kubelet.service 2>&1)
grep -q "Unknown key 'Bogus'" <<<"$out" || fail "a bad drop-in passed: $out"
echo ok
