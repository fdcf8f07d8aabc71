#!/usr/bin/env bash
# bootagent benchmark: binary size, peak RSS of a first boot (/usr/bin/time -v), and the agent's
# own time excluding waits (from its journal timeline), for a one-member etcd bootstrap against
# the local cloud (`imgbuild serve`) with a real etcd.
# Usage: ci/bench-agent.sh [BUILD_DIR]   (default: build)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
export IMGBUILD=${IMGBUILD:-$build/builder/imgbuild} BOOTAGENT=${BOOTAGENT:-$build/bootagent/bootagent}
[ -x "$BOOTAGENT" ] || { echo "bench-agent: build first ($BOOTAGENT missing)"; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench-agent: needs GNU time (Debian package time)"; exit 1; }

source "$src/tests/integration/agent-lib.sh"
trap agent_cleanup EXIT

start_serve 1
write_agent_config 1
/usr/bin/time -v -o "$T/time.txt" "$BOOTAGENT" firstboot --root "$T/agent-1" > "$T/agent-1/agent.log" 2>&1 \
        || { cat "$T/agent-1/agent.log"; exit 1; }
json=$("$BOOTAGENT" status --root "$T/agent-1" --json)

size=$(stat -c %s "$BOOTAGENT")
stripped=$(strip -o "$T/bootagent.stripped" "$BOOTAGENT" && stat -c %s "$T/bootagent.stripped")
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$T/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$T/time.txt")
total=$(grep -o '"stage":"done"[^}]*' <<< "$json" | grep -o '"t_ms":[0-9]*' | cut -d: -f2)
waits=$(grep -o '"wait_ms":[0-9]*' <<< "$json" | cut -d: -f2 | awk '{s += $1} END {print s}')
echo "bootagent binary:        $size bytes ($stripped stripped)"
echo "peak RSS (firstboot):    $rss KiB"
echo "wall clock:              $wall"
echo "agent timeline:          $total ms total, $waits ms waiting, $((total - waits)) ms excluding waits"
echo "stages:"
"$BOOTAGENT" status --root "$T/agent-1" | sed 's/^/  /'
