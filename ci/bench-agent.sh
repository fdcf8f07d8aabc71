#!/usr/bin/env bash
# bootagent benchmark: binary size, peak RSS of a first boot (/usr/bin/time -v) split into the
# agent's private memory (peak RssAnon: heap, stacks) and the pages of shared libraries it maps
# (peak RssFile: libcrypto, libc, libcurl and everything libcurl and libarchive link), and the
# agent's own time excluding waits (from its journal timeline), for a one-member etcd bootstrap
# against the local cloud (`imgbuild serve`) with a real etcd.
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
/usr/bin/time -v -o "$T/time.txt" "$BOOTAGENT" firstboot --root "$T/agent-1" > "$T/agent-1/agent.log" 2>&1 &
timer=$!
# Sample the agent's /proc status every 5 ms for the peaks of its private and file-backed pages.
anon=0 file=0
: > "$T/peak-smaps"
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
                                    "/proc/$agent/smaps" 2>/dev/null | sort -rn > "$T/peak-smaps.new" || true
                                [ -s "$T/peak-smaps.new" ] && mv "$T/peak-smaps.new" "$T/peak-smaps"
                        fi ;;
                esac
        done < "/proc/$agent/status" 2>/dev/null || true
        sleep 0.005
done
wait "$timer" || { cat "$T/agent-1/agent.log"; exit 1; }
json=$("$BOOTAGENT" status --root "$T/agent-1" --json)

size=$(stat -c %s "$BOOTAGENT")
stripped=$(strip -o "$T/bootagent.stripped" "$BOOTAGENT" && stat -c %s "$T/bootagent.stripped")
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$T/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$T/time.txt")
total=$(grep -o '"stage":"done"[^}]*' <<< "$json" | grep -o '"t_ms":[0-9]*' | cut -d: -f2)
waits=$(grep -o '"wait_ms":[0-9]*' <<< "$json" | cut -d: -f2 | awk '{s += $1} END {print s}')
echo "bootagent binary:        $size bytes ($stripped stripped)"
echo "peak RSS (firstboot):    $rss KiB (peaks sampled: private $anon KiB, shared library pages $file KiB)"
echo "wall clock:              $wall"
echo "agent timeline:          $total ms total, $waits ms waiting, $((total - waits)) ms excluding waits"
echo "mappings of 256 KiB or more at the peak of shared library pages:"
sed 's/^/  /' "$T/peak-smaps"
echo "stages:"
"$BOOTAGENT" status --root "$T/agent-1" | sed 's/^/  /'
