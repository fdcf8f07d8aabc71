#!/usr/bin/env bash
# Read-only smoke test of the Exoscale API client (lib/exoapi) against the REAL Exoscale API.
# It lists zones, private templates and instance types, and creates or changes nothing.
# Nothing else in CI talks to the cloud: every other test uses tests/fake-exoscale.
#
#   EXOSCALE_API_KEY=EXO... EXOSCALE_API_SECRET=... ci/cloud-smoke.sh [ZONE]
#
# ZONE defaults to $EXOSCALE_ZONE, then ch-gva-2. Without credentials it exits 77 (skipped).
# Builds exoapi-smoke in build/ if needed. Record what it verified in tests/fake-exoscale/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${EXOSCALE_API_KEY:-}" ] || [ -z "${EXOSCALE_API_SECRET:-}" ]; then
    echo "cloud-smoke: skipped: set EXOSCALE_API_KEY and EXOSCALE_API_SECRET (a read-only key is enough) to run it against the real API" >&2
    exit 77
fi
if [ -n "${EXOSCALE_API_ENDPOINT:-}" ]; then
    echo "cloud-smoke: EXOSCALE_API_ENDPOINT is set; unset it: this script is for the real API" >&2
    exit 2
fi
zone=${1:-${EXOSCALE_ZONE:-ch-gva-2}}

cmake -S . -B build >/dev/null
cmake --build build -j2 --target exoapi-smoke >/dev/null
echo "cloud-smoke: listing zones, private templates and instance types in $zone"
build/tests/exoapi-smoke "$zone"
echo "cloud-smoke: OK (signing, zone endpoint, error handling and list parsing work against the real API)"
