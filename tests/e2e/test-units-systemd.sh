# bootagent's sd-bus unit control against a real systemd: copy the test-units-systemd binary into
# a booted base VM (systemd is PID 1 there) and run it. On the host it skips, since the host's
# PID 1 is not systemd. The base image carries the libraries bootagent links, which are the ones
# this test binary needs too.
set -euo pipefail
. "$(dirname "$0")/lib-vm.sh"

test_bin=$IMGBUILD_BINARY_DIR/tests/test-units-systemd
[ -x "$test_bin" ] || skip "$test_bin not built"
if libs=$(ldd "$test_bin") && grep -q -e libasan -e libubsan <<<"$libs"; then
    skip "test-units-systemd is a sanitizer build (the guest has no sanitizer runtimes)"
fi

ensure_base
"$IMGBUILD" vm-exec --cache-dir "$CACHE_DIR" --bootagent "$GUEST_BOOTAGENT" --timeout 600 \
    --put "$test_bin:/usr/local/libexec" "$IMAGE" -- /usr/local/libexec/test-units-systemd
echo "ok"
