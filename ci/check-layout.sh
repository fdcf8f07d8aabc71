#!/bin/sh
# Checks the include direction docs/ARCHITECTURE.md describes: a file under builder/<folder>/
# includes only headers of its own folder, of lib/, or of a folder below it in this order;
# bootagent/ includes only bootagent/ and lib/; lib/ only lib/. A header name is looked up in the
# source folders (headers are unique across them). Prints each violation as file:line and exits
# 1 if there is any.
set -eu
cd "${1:-$(dirname "$0")/..}"

# Rank of each folder: a folder may include folders of a lower rank. Same rank, different folder
# (the two build providers) may not include each other.
ranks='lib 0
builder/progress 1
builder/recipe 2
builder/store 3
builder/build 4
builder/provider/qemu 5
builder/provider/exoscale 5
builder/provider 6
builder/cloud 7
builder/pool 8
builder/cli 9
builder 10
bootagent 1'

folder_of_header() {
        for d in $(printf '%s\n' "$ranks" | cut -d' ' -f1); do
                [ -f "$d/$1" ] && { echo "$d"; return; }
        done
}
rank_of() { printf '%s\n' "$ranks" | awk -v d="$1" '$1 == d { print $2 }'; }

for d in $(printf '%s\n' "$ranks" | cut -d' ' -f1); do
        r=$(rank_of "$d")
        for f in "$d"/*.c "$d"/*.h; do
                [ -f "$f" ] || continue
                grep -n '^#include "' "$f" | while IFS= read -r line; do
                        n=${line%%:*}
                        h=$(printf '%s\n' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
                        hd=$(folder_of_header "$h")
                        [ -n "$hd" ] || continue  # generated or system-local header
                        [ "$hd" = "$d" ] && continue
                        hr=$(rank_of "$hd")
                        ok=no
                        case "$d" in
                        lib) ;;
                        bootagent) [ "$hd" = lib ] && ok=yes ;;
                        *) case "$hd" in bootagent) ;; *) [ "$hr" -lt "$r" ] && ok=yes ;; esac ;;
                        esac
                        [ "$ok" = yes ] || echo "$f:$n: includes $hd/$h (not below $d)"
                done
        done
done | { grep . && exit 1 || exit 0; }
