#!/usr/bin/env bash
# Install everything imgbuild needs to build, test and run, from Debian 12 packages.
# Idempotent: safe to re-run. Needs root (or sudo).
set -euo pipefail

packages=(
    # build
    build-essential cmake pkg-config clang libclang-rt-14-dev
    # libraries
    libcurl4-openssl-dev libarchive-dev libssl-dev libcbor-dev libsystemd-dev libjansson-dev uuid-dev
    libmicrohttpd-dev libgnutls28-dev
    # runtime tools: VMs and base images
    qemu-system-x86 qemu-utils mmdebstrap e2fsprogs
    # local pools: each VM reaches its own metadata / Vault port through a guestfwd command
    socat
    # tests and benchmarks: real etcd, HTTP and JSON tools, GNU time
    etcd-server etcd-client curl jq openssl python3 time
    # cloud builds talk to the instance over OpenSSH; their test runs a loopback sshd whose
    # "instance" is a systemd-nspawn container
    openssh-client openssh-server systemd-container
)
# A Vault client nobody here wrote (node-vault, from the npm registry) checks the Vault stand-in:
# Debian's nodejs and npm, unless node and npm are already there from elsewhere (e.g.
# nodesource's nodejs carries its own npm, which Debian's npm package would conflict with).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
# etcd-server's package starts a system etcd on 127.0.0.1:2379; tests start their own. So does
# openssh-server with an sshd on port 22: stopped only when this script installed it (a machine
# that had one may be reached through it).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${sudo[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
    case " ${missing[*]} " in
        *" openssh-server "*) "${sudo[@]}" systemctl disable --now ssh >/dev/null 2>&1 || true ;;
    esac
fi
