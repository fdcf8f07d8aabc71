# Shared setup for VM tests: skip when the machine cannot build or boot images, and one image store
# for all of them so the base image is built once (override with IMGBUILD_E2E_CACHE_DIR).
# shellcheck shell=bash

skip() { echo "skipped: $*" >&2; exit 77; }

[ -n "${IMGBUILD:-}" ] && [ -x "$IMGBUILD" ] || skip "IMGBUILD not set (run through ctest)"
[ -n "${BOOTAGENT:-}" ] && [ -x "$BOOTAGENT" ] || skip "BOOTAGENT not set (run through ctest)"
[ "$(id -u)" -eq 0 ] || skip "building a base image needs root (mmdebstrap --mode=root)"
for tool in mmdebstrap mkfs.ext4 qemu-img qemu-system-x86_64; do
    command -v "$tool" >/dev/null || skip "$tool not installed"
done

# The baked-in bootagent must run in a plain Debian guest, which has no sanitizer runtimes: a
# sanitizer build can bake a plain build's binary (IMGBUILD_E2E_BOOTAGENT=path).
GUEST_BOOTAGENT=${IMGBUILD_E2E_BOOTAGENT:-$BOOTAGENT}
if libs=$(ldd "$GUEST_BOOTAGENT") && grep -q -e libasan -e libubsan <<<"$libs"; then
    skip "bootagent is a sanitizer build (set IMGBUILD_E2E_BOOTAGENT to a plain one)"
fi

CACHE_DIR=${IMGBUILD_E2E_CACHE_DIR:-$IMGBUILD_BINARY_DIR/e2e-cache}
IMAGE=$IMGBUILD_SOURCE_DIR/images/debian-12
[ -f "$IMAGE/image.conf" ] || skip "$IMAGE/image.conf missing"

ensure_base() {
    "$IMGBUILD" base --cache-dir "$CACHE_DIR" --bootagent "$GUEST_BOOTAGENT" "$IMAGE"
}
